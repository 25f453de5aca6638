import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { idFromFileName, parseSeedArticle } from '../../src/corpus/parse-seed.ts';
import { QuarryError } from '../../src/errors.ts';
import { SEEDS_DIR } from '../helpers/real-service.ts';

const SEED_FILE = '000_1a76b68b4bef4123.txt';
const seedText = readFileSync(join(SEEDS_DIR, SEED_FILE), 'utf8');

describe('parseSeedArticle on the seed file', () => {
  const a = parseSeedArticle(seedText, SEED_FILE);

  it('takes the id from the file name, the date and title from the first line', () => {
    expect(a.id).toBe('1a76b68b4bef4123');
    expect(a.date).toBe('2023-12-04');
    expect(a.title).toBe('Chinese, Belarusian presidents pledge to enhance ties');
  });

  it('reads the agency line as the source, not as a paragraph', () => {
    expect(a.source).toBe('Xinhua');
    expect(a.paragraphs[0]).toMatch(/^BEIJING, Dec\. 4 \(Xinhua\) -- Chinese President Xi Jinping met/);
  });

  it('drops the credits line and keeps every content paragraph', () => {
    expect(a.paragraphs).toHaveLength(14);
    expect(a.paragraphs.some((p) => p.includes('Web editor'))).toBe(false);
    expect(a.paragraphs[5]).toMatch(/China-Belarus Industrial Park/);
    expect(a.paragraphs.at(-1)).toBe('Senior Chinese officials Cai Qi and Wang Yi attended the event.');
  });
});

describe('parseSeedArticle on messy variants', () => {
  const base = parseSeedArticle(seedText, SEED_FILE);

  it('reads Windows line endings the same way', () => {
    expect(parseSeedArticle(seedText.replace(/\n/g, '\r\n'), SEED_FILE)).toEqual(base);
  });

  it('copes with extra blank lines and trailing spaces', () => {
    const messy = seedText.replace(/\n\n/g, '\n  \n\n\t\n').replace(/\.\n/g, '.   \n');
    expect(parseSeedArticle(messy, SEED_FILE)).toEqual(base);
  });

  it('copes with a missing date line: the first line is the title', () => {
    const noDate = seedText.replace(/^ date 2023-12-04 /, '');
    const a = parseSeedArticle(noDate, SEED_FILE);
    expect(a.date).toBeNull();
    expect(a.title).toBe('Chinese, Belarusian presidents pledge to enhance ties');
    expect(a.paragraphs).toEqual(base.paragraphs);
  });

  it('copes with a missing credits line', () => {
    const noCredits = seedText.replace(/\n\(Web editor:.*\)\s*$/, '\n');
    expect(parseSeedArticle(noCredits, SEED_FILE).paragraphs).toEqual(base.paragraphs);
  });

  it('keeps non-ASCII text intact and strips a byte-order mark', () => {
    const text =
      '\uFEFF date 2024-05-01 Łódź és Zürich: café «naïve» 北京\n\nBeijing) 10:00, May 01, 2024\n\nМинск и Пекин подписали соглашение о сотрудничестве — 合作.\n';
    const a = parseSeedArticle(text, '001_unicode.txt');
    expect(a.title).toBe('Łódź és Zürich: café «naïve» 北京');
    expect(a.source).toBe('Beijing');
    expect(a.paragraphs).toEqual(['Минск и Пекин подписали соглашение о сотрудничестве — 合作.']);
  });

  it('reports an empty file by name instead of indexing nothing', () => {
    expect(() => parseSeedArticle('', 'empty.txt')).toThrow(QuarryError);
    expect(() => parseSeedArticle(' \n\r\n \n', 'empty.txt')).toThrow(/empty\.txt: the file is empty/);
  });

  it('reports a file with a title but no body by name', () => {
    expect(() => parseSeedArticle(' date 2024-01-01 Only a title\n', 'title-only.txt')).toThrow(/title-only\.txt: no paragraphs/);
  });

  it('treats an impossible date as missing', () => {
    expect(parseSeedArticle(' date 2024-13-45 Title\n\nSome body text that is long enough.\n', 'x.txt').date).toBeNull();
  });
});

describe('idFromFileName', () => {
  it('strips the numeric prefix and extension, and never keeps path characters', () => {
    expect(idFromFileName('000_1a76b68b4bef4123.txt')).toBe('1a76b68b4bef4123');
    expect(idFromFileName('story.txt')).toBe('story');
    expect(idFromFileName('dir/012_a b/c.txt')).toBe('c');
    expect(idFromFileName('007_hello world!.txt')).toBe('hello-world-');
  });
});
