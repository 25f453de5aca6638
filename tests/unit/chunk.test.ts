import { describe, expect, it } from 'vitest';
import { PARAGRAPH_SEPARATOR } from '../../src/corpus/article.ts';
import { chunkArticle } from '../../src/corpus/chunk.ts';

/** A stand-in token counter for unit tests: one token per word plus two special tokens. */
const countWords = (t: string) => t.split(/\s+/).filter(Boolean).length + 2;
const opts = { minWords: 4, maxTokens: 20, countTokens: countWords };

describe('chunkArticle', () => {
  it('makes one chunk per paragraph with offsets into the article text', () => {
    const paragraphs = ['The first paragraph has some words.', 'The second paragraph has more words in it.'];
    const text = paragraphs.join(PARAGRAPH_SEPARATOR);
    const chunks = chunkArticle({ paragraphs }, opts);
    expect(chunks).toHaveLength(2);
    chunks.forEach((c, i) => {
      expect(c.paragraph).toBe(i);
      expect(text.slice(c.start, c.end)).toBe(paragraphs[i]);
      expect(c.text).toBe(paragraphs[i]);
    });
  });

  it('merges a paragraph shorter than minWords into the next one', () => {
    const paragraphs = ['He said:', 'The economy grew faster than expected this year.', 'Another full paragraph follows here.'];
    const chunks = chunkArticle({ paragraphs }, opts);
    expect(chunks).toHaveLength(2);
    expect(chunks[0]!.paragraph).toBe(0);
    expect(chunks[0]!.text).toBe(`He said:${PARAGRAPH_SEPARATOR}The economy grew faster than expected this year.`);
    expect(chunks[1]!.paragraph).toBe(2);
  });

  it('merges a short last paragraph into the previous one', () => {
    const paragraphs = ['A complete paragraph with enough words.', 'Thanks.'];
    const chunks = chunkArticle({ paragraphs }, opts);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]!.end).toBe(paragraphs.join(PARAGRAPH_SEPARATOR).length);
  });

  it('keeps a lone short paragraph rather than dropping it', () => {
    expect(chunkArticle({ paragraphs: ['Short.'] }, opts)).toEqual([{ paragraph: 0, start: 0, end: 6, text: 'Short.' }]);
  });

  it('splits a paragraph longer than the window on sentence boundaries, losing no text', () => {
    const sentences = Array.from({ length: 8 }, (_, i) => `Sentence number ${i} has exactly seven words.`);
    const paragraph = sentences.join(' ');
    const chunks = chunkArticle({ paragraphs: [paragraph] }, opts);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(countWords(c.text)).toBeLessThanOrEqual(opts.maxTokens);
      expect(c.text).toMatch(/^Sentence number \d/); // starts on a sentence boundary
      expect(paragraph.slice(c.start, c.end)).toBe(c.text);
    }
    expect(chunks.map((c) => c.text).join(' ')).toBe(paragraph);
  });

  it('splits a single over-long sentence on words', () => {
    const paragraph = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
    const chunks = chunkArticle({ paragraphs: [paragraph] }, opts);
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const c of chunks) expect(countWords(c.text)).toBeLessThanOrEqual(opts.maxTokens);
    expect(chunks.map((c) => c.text).join(' ')).toBe(paragraph);
  });

  it('handles non-ASCII text and keeps offsets exact', () => {
    const paragraphs = ['Минск и Пекин подписали соглашение о сотрудничестве.', '北京 合作 项目 进展 顺利 。 Łódź café naïve.'];
    const text = paragraphs.join(PARAGRAPH_SEPARATOR);
    for (const c of chunkArticle({ paragraphs }, { ...opts, minWords: 1 })) expect(text.slice(c.start, c.end)).toBe(c.text);
  });

  it('returns no chunks for an article without paragraphs', () => {
    expect(chunkArticle({ paragraphs: [] }, opts)).toEqual([]);
  });
});
