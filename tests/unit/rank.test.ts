import { describe, expect, it } from 'vitest';
import { PARAGRAPH_SEPARATOR } from '../../src/corpus/article.ts';
import { type Candidates, rankArticles, type SearchDefaults } from '../../src/search/rank.ts';
import { type SearchRequestInput, SearchRequestSchema } from '../../src/search/schema.ts';
import type { RankedChunk } from '../../src/store/store.ts';
import { type MemoryArticle, MemoryReader } from '../helpers/memory-reader.ts';
import { TEST_SEARCH_DEFAULTS as DEFAULTS } from '../helpers/search-defaults.ts';

/*
 * rankArticles: candidate chunks -> fusion -> grouping by article -> evidence, over an in-memory StoreReader.
 * Every expected score is worked out by hand in the comment beside it (RRF k = 60, weights 1 and 1 unless said).
 */

const ARTICLES: MemoryArticle[] = [
  { id: 'A', paragraphs: ['Alpha one about harbours.', 'Alpha two about tides.', 'Alpha three about ferries.', 'Alpha four about storms.'] },
  { id: 'B', paragraphs: ['Beta one about harbours and tides.', 'Beta two about lighthouses.'] },
  { id: 'C', paragraphs: ['Gamma one about orchards.', 'Gamma two about apples.'] },
  { id: 'D', paragraphs: ['Delta one about glaciers.'] },
];

const request = (input: Partial<SearchRequestInput>) => SearchRequestSchema.parse({ q: 'harbours tides', ...input });
const ranked = (...pairs: Array<[chunkId: number, score: number]>): RankedChunk[] => pairs.map(([chunkId, score], i) => ({ chunkId, rank: i + 1, score }));

function setup(articles: MemoryArticle[] = ARTICLES) {
  const reader = new MemoryReader(articles);
  const at = (id: string, paragraph: number) => reader.chunk(id, paragraph);
  const rank = (input: Partial<SearchRequestInput>, c: Partial<Candidates>, defaults: Partial<SearchDefaults> = {}) =>
    rankArticles(
      reader,
      { ...request(input), recency: undefined },
      { dense: c.dense ?? [], lexical: c.lexical ?? [], terms: c.terms ?? ['harbours', 'tides'] },
      { ...DEFAULTS, ...defaults },
    );
  return { reader, at, rank };
}

const ids = (r: { results: Array<{ article: { id: string } }> }) => r.results.map((x) => x.article.id);
const paragraphs = (r: { evidence: Array<{ paragraph: number }> }) => r.evidence.map((e) => e.paragraph);

describe('rankArticles', () => {
  it('answers no candidates with no results, in every mode and fusion, and reads no text', async () => {
    for (const mode of ['hybrid', 'semantic', 'lexical'] as const) {
      for (const fusion of ['rrf', 'relative'] as const) {
        for (const fuseBy of ['chunk', 'article'] as const) {
          const { reader, rank } = setup();
          const r = await rank({ mode, fusion, minScore: 0 }, {}, { fuseBy });
          expect(r).toMatchObject({ results: [], total: 0, cutByMinScore: 0 });
          expect(reader.calls.chunkTexts.flat()).toEqual([]);
          expect(reader.calls.articleMetas.flat()).toEqual([]);
        }
      }
    }
  });

  it('semantic: an article scores as its best paragraph, with its paragraphs as evidence, best first; BM25 is ignored', async () => {
    const { at, rank } = setup();
    const dense = ranked([at('A', 2), 0.9], [at('B', 0), 0.8], [at('A', 0), 0.7], [at('A', 1), 0.6], [at('C', 0), 0.5], [at('D', 0), 0.3]);
    const r = await rank({ mode: 'semantic' }, { dense, lexical: ranked([at('D', 0), 9]) });
    expect(ids(r)).toEqual(['A', 'B', 'C', 'D']);
    expect(r.results.map((x) => x.score)).toEqual([0.9, 0.8, 0.5, 0.3]);
    expect(r.total).toBe(4);
    const a = r.results[0]!;
    expect(a.article).toEqual({ id: 'A', title: 'Title of A', date: null, source: null, url: null, tags: [] });
    expect(paragraphs(a)).toEqual([2, 0, 1]);
    expect(a.evidence.map((e) => e.score)).toEqual([0.9, 0.7, 0.6]);
    // Offsets point into the article text (paragraphs joined by a blank line).
    const text = ARTICLES[0]!.paragraphs.join(PARAGRAPH_SEPARATOR);
    for (const e of a.evidence) expect(text.slice(e.start, e.end)).toBe(e.text);
    expect(a.evidence[0]!.text).toBe('Alpha three about ferries.');
    expect(a.evidence[0]).not.toHaveProperty('explain');
  });

  it('lexical: BM25 scores; the dense list is ignored', async () => {
    const { at, rank } = setup();
    const lexical = ranked([at('B', 1), 12.5], [at('A', 3), 7], [at('B', 0), 3]);
    const r = await rank({ mode: 'lexical' }, { lexical, dense: ranked([at('C', 0), 0.99]) });
    expect(ids(r)).toEqual(['B', 'A']);
    expect(r.results.map((x) => x.score)).toEqual([12.5, 7]);
    expect(paragraphs(r.results[0]!)).toEqual([1, 0]);
  });

  it('hybrid with one retriever empty ranks by the other (RRF and relative fusion)', async () => {
    const { at, rank } = setup();
    const lexical = ranked([at('B', 1), 7], [at('A', 0), 5], [at('B', 0), 1]);
    // RRF: B¶1 1/61, A¶0 1/62, B¶0 1/63, reported over the maximum 2/61.
    const rrf = await rank({ explain: true }, { lexical });
    expect(ids(rrf)).toEqual(['B', 'A']);
    expect(rrf.results[0]!.score).toBeCloseTo(0.5, 12);
    expect(rrf.results[1]!.score).toBeCloseTo(61 / 124, 12);
    expect(paragraphs(rrf.results[0]!)).toEqual([1, 0]);
    expect(rrf.results[0]!.evidence[0]!.explain).toMatchObject({ dense: null, lexical: { bm25: 7, rank: 1 } });
    // Relative: BM25 min-max 7 -> 1, 5 -> 2/3, 1 -> 0; over the weight total 2.
    const relative = await rank({ fusion: 'relative' }, { lexical });
    expect(ids(relative)).toEqual(['B', 'A']);
    expect(relative.results.map((x) => x.score)).toEqual([0.5, expect.closeTo(1 / 3, 12)]);
    expect(relative.results[0]!.evidence.map((e) => e.score)).toEqual([0.5, 0]);
    // And the other way round: only the dense retriever answered (BM25 found no word).
    const denseOnly = await rank({}, { dense: ranked([at('C', 1), 0.4], [at('D', 0), 0.3]), terms: [] });
    expect(ids(denseOnly)).toEqual(['C', 'D']);
    expect(denseOnly.results[0]!.score).toBeCloseTo(0.5, 12);
  });

  it('breaks ties stably: the better dense rank first, then the lower chunk id', async () => {
    const { at, rank } = setup();
    // RRF: B¶0 dense 1st only, A¶0 BM25 1st only: both 1/61. Dense wins the tie, though A's chunk id is lower.
    const rrf = await rank({}, { dense: ranked([at('B', 0), 0.5]), lexical: ranked([at('A', 0), 3]) });
    expect(ids(rrf)).toEqual(['B', 'A']);
    expect(rrf.results[0]!.score).toBe(rrf.results[1]!.score);
    // Relative with all-equal BM25 scores: each normalises to 1, no dense rank: the lower chunk id first.
    const relative = await rank({ fusion: 'relative' }, { lexical: ranked([at('C', 0), 3], [at('A', 0), 3], [at('B', 0), 3]) });
    expect(ids(relative)).toEqual(['A', 'B', 'C']);
    expect(relative.results.map((x) => x.score)).toEqual([0.5, 0.5, 0.5]);
  });

  it('minScore drops articles scoring below it (not their weaker evidence), counts them, and k applies after it', async () => {
    const { reader, at, rank } = setup();
    const dense = ranked([at('A', 2), 0.9], [at('B', 0), 0.8], [at('C', 0), 0.5], [at('D', 0), 0.3], [at('A', 1), 0.2]);
    const r = await rank({ mode: 'semantic', minScore: 0.5, k: 2 }, { dense });
    expect(ids(r)).toEqual(['A', 'B']);
    expect(r.total).toBe(3); // C at exactly 0.5 is kept
    expect(r.cutByMinScore).toBe(1);
    expect(paragraphs(r.results[0]!)).toEqual([2, 1]); // the 0.2 paragraph stays A's evidence
    const none = await rank({ mode: 'semantic', minScore: 0.95 }, { dense });
    expect(none).toMatchObject({ results: [], total: 0, cutByMinScore: 4 });
    expect(reader.calls.chunkTexts.at(-1)).toEqual([]);
    // Hybrid: against the fused score in [0, 1]. RRF: A¶2 dense 1st and BM25 1st (1), B¶0 dense 2nd only (61/124).
    const hybrid = await rank({ minScore: 0.6 }, { dense: ranked([at('A', 2), 0.9], [at('B', 0), 0.8]), lexical: ranked([at('A', 2), 4]) });
    expect(ids(hybrid)).toEqual(['A']);
    expect(hybrid.results[0]!.score).toBeCloseTo(1, 12);
    expect(hybrid.cutByMinScore).toBe(1);
  });

  it('gives at most `evidence` paragraphs per article, the best ones, without changing the article score', async () => {
    const { at, rank } = setup();
    const dense = ranked([at('A', 3), 0.9], [at('A', 1), 0.85], [at('B', 0), 0.8], [at('A', 0), 0.7], [at('A', 2), 0.6]);
    const two = await rank({ mode: 'semantic', evidence: 2 }, { dense });
    expect(paragraphs(two.results[0]!)).toEqual([3, 1]);
    const one = await rank({ mode: 'semantic', evidence: 1 }, { dense });
    expect(paragraphs(one.results[0]!)).toEqual([3]);
    expect(paragraphs(one.results[1]!)).toEqual([0]);
    expect(one.results.map((x) => x.score)).toEqual(two.results.map((x) => x.score));
    const all = await rank({ mode: 'semantic', evidence: 20 }, { dense });
    expect(paragraphs(all.results[0]!)).toEqual([3, 1, 0, 2]);
  });

  it('skips chunks deleted between retrieval and grouping, and articles deleted before their text is read', async () => {
    // The whole article deleted before grouping: it is not counted at all.
    {
      const { reader, at, rank } = setup();
      const dense = ranked([at('B', 0), 0.9], [at('A', 0), 0.8], [at('B', 1), 0.7], [at('C', 0), 0.6]);
      reader.deleteArticle('B');
      const r = await rank({ mode: 'semantic' }, { dense });
      expect(ids(r)).toEqual(['A', 'C']);
      expect(r.total).toBe(2);
    }
    // One paragraph's chunk gone (the article was replaced): the article scores by what is left.
    {
      const { reader, at, rank } = setup();
      const dense = ranked([at('A', 1), 0.9], [at('B', 0), 0.8], [at('A', 0), 0.7]);
      reader.deleteChunk(at('A', 1));
      const r = await rank({ mode: 'semantic' }, { dense });
      expect(ids(r)).toEqual(['B', 'A']);
      expect(r.results[1]!.score).toBe(0.7);
      expect(paragraphs(r.results[1]!)).toEqual([0]);
    }
    // Deleted after grouping, before its text and fields are read: it drops out of the results, the rest is whole.
    {
      const { reader, at, rank } = setup();
      const dense = ranked([at('A', 0), 0.9], [at('B', 0), 0.8], [at('B', 1), 0.75], [at('C', 0), 0.7]);
      reader.afterGrouping = () => reader.deleteArticle('A');
      const r = await rank({ mode: 'semantic' }, { dense });
      expect(ids(r)).toEqual(['B', 'C']);
      expect(paragraphs(r.results[0]!)).toEqual([0, 1]);
      expect(r.results[0]!.evidence.every((e) => e.text.startsWith('Beta'))).toBe(true);
    }
  });

  it('article-level fusion credits an article whose best dense and best BM25 paragraphs differ', async () => {
    const { at, rank } = setup();
    // Dense: A¶0, B¶0; BM25: C¶0, B¶1. Per paragraph every chunk is in one list only: A¶0 and C¶0 score 1/61,
    // B¶0 and B¶1 1/62. Per article B is 2nd in both lists: 2/62 against 1/61 for A and for C.
    const c = { dense: ranked([at('A', 0), 0.9], [at('B', 0), 0.8]), lexical: ranked([at('C', 0), 9], [at('B', 1), 8]) };
    const byChunk = await rank({}, c, { fuseBy: 'chunk' });
    expect(ids(byChunk)).toEqual(['A', 'C', 'B']);
    expect(byChunk.results[2]!.score).toBeCloseTo(61 / 124, 12);
    const byArticle = await rank({}, c, { fuseBy: 'article' });
    // A and C tie at 1/2: the sort is stable, so they keep their paragraph-level order.
    expect(ids(byArticle)).toEqual(['B', 'A', 'C']);
    expect(byArticle.results.map((x) => x.score)).toEqual([expect.closeTo(61 / 62, 12), expect.closeTo(0.5, 12), expect.closeTo(0.5, 12)]);
    // Evidence stays paragraph-level: both of B's paragraphs, the better dense rank first.
    expect(paragraphs(byArticle.results[0]!)).toEqual([0, 1]);
    expect(byArticle.results[0]!.evidence.map((e) => e.score)).toEqual([expect.closeTo(61 / 124, 12), expect.closeTo(61 / 124, 12)]);
    // minScore cuts by the article score.
    const cut = await rank({ minScore: 0.6 }, c, { fuseBy: 'article' });
    expect(ids(cut)).toEqual(['B']);
    expect(cut.cutByMinScore).toBe(2);
    // Single-retriever modes have nothing to fuse: fuseBy does not apply.
    const semantic = await rank({ mode: 'semantic' }, c, { fuseBy: 'article' });
    expect(ids(semantic)).toEqual(['A', 'B']);
    expect(semantic.results.map((x) => x.score)).toEqual([0.9, 0.8]);
  });

  it('article-level fusion ranks articles, not paragraphs, in each list', async () => {
    const { at, rank } = setup();
    // Dense: A¶0, A¶1, B¶0: per article A is 1st and B 2nd (not 3rd): B scores (1/62) / (2/61).
    const r = await rank({}, { dense: ranked([at('A', 0), 0.9], [at('A', 1), 0.85], [at('B', 0), 0.8]) }, { fuseBy: 'article' });
    expect(ids(r)).toEqual(['A', 'B']);
    expect(r.results[1]!.score).toBeCloseTo(61 / 124, 12);
    // Relative: an article's best paragraph score in each list, min-max normalised over the articles.
    const rel = await rank(
      { fusion: 'relative' },
      { dense: ranked([at('A', 0), 0.9], [at('A', 1), 0.85], [at('B', 0), 0.5]), lexical: ranked([at('B', 1), 6], [at('A', 2), 2]) },
      { fuseBy: 'article' },
    );
    // Dense per article: A 0.9 -> 1, B 0.5 -> 0; BM25: B 6 -> 1, A 2 -> 0: a tie at 1/2, kept in paragraph order.
    expect(rel.results.map((x) => x.score)).toEqual([0.5, 0.5]);
    expect(ids(rel)).toEqual(['A', 'B']);
  });

  it('explains each evidence paragraph: both retrievers, the fused score and the matched terms, only when asked', async () => {
    const { reader, at, rank } = setup();
    const c = { dense: ranked([at('A', 0), 0.9], [at('B', 0), 0.8]), lexical: ranked([at('B', 0), 4.2], [at('A', 1), 2]), terms: ['harbours', 'tides'] };
    const plain = await rank({}, c);
    expect(plain.results.flatMap((x) => x.evidence).some((e) => 'explain' in e)).toBe(false);
    expect(reader.calls.matchedTerms).toEqual([]);

    const r = await rank({ explain: true }, c);
    // B¶0: dense 2nd (1/62) + BM25 1st (1/61); A¶0: dense 1st only (1/61); A¶1: BM25 2nd only (1/62).
    expect(ids(r)).toEqual(['B', 'A']);
    const b0 = r.results[0]!.evidence[0]!;
    expect(b0.explain).toEqual({
      dense: { cosine: 0.8, rank: 2, term: 1 / 62 },
      lexical: { bm25: 4.2, rank: 1, term: 1 / 61 },
      fused: 1 / 62 + 1 / 61,
      matchedTerms: ['harbours', 'tides'],
    });
    const [a0, a1] = r.results[1]!.evidence;
    expect(a0!.explain).toMatchObject({ dense: { rank: 1 }, lexical: null, matchedTerms: ['harbours'] });
    expect(a1!.explain).toMatchObject({ dense: null, lexical: { bm25: 2, rank: 2 }, matchedTerms: ['tides'] });
    expect(reader.calls.matchedTerms).toHaveLength(1);
  });

  it('reads text and article fields for the returned results only', async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ id: `n${i}`, paragraphs: [`Paragraph of article ${i}.`] }));
    const { reader, at, rank } = setup(many);
    const dense = ranked(...many.map((a, i): [number, number] => [at(a.id, 0), 1 - i / 100]));
    const r = await rank({ mode: 'semantic', k: 2 }, { dense });
    expect(ids(r)).toEqual(['n0', 'n1']);
    expect(r.total).toBe(30);
    expect(reader.calls.articlesOfChunks).toEqual([dense.map((c) => c.chunkId)]);
    expect(reader.calls.chunkTexts).toEqual([[at('n0', 0), at('n1', 0)]]);
    expect(reader.calls.articleMetas).toEqual([[1, 2]]);
  });

  it('takes fusion settings from the request over the defaults', async () => {
    const { at, rank } = setup();
    const c = {
      dense: ranked([at('A', 0), 0.9], [at('B', 0), 0.85], [at('C', 0), 0.1]),
      lexical: ranked([at('B', 0), 10], [at('A', 0), 1], [at('C', 0), 0.5]),
    };
    // The defaults' RRF sees ranks only: A and B are each 1st once and 2nd once, a tie broken by dense: A.
    const rrf = await rank({}, c);
    expect(ids(rrf)).toEqual(['A', 'B', 'C']);
    // Relative fusion keeps the margins: dense A 1, B (0.85 - 0.1) / 0.8 = 0.9375; BM25 B 1, A (1 - 0.5) / 9.5.
    const relative = await rank({ fusion: 'relative' }, c);
    expect(ids(relative)).toEqual(['B', 'A', 'C']);
    expect(relative.results.map((x) => x.score)).toEqual([expect.closeTo((0.9375 + 1) / 2, 12), expect.closeTo((1 + 0.5 / 9.5) / 2, 12), 0]);
    // A weight of 0 silences a retriever: with dense at 0, BM25 alone orders them.
    const lexicalOnly = await rank({ denseWeight: 0 }, c);
    expect(ids(lexicalOnly)).toEqual(['B', 'A', 'C']);
    expect(lexicalOnly.results[0]!.score).toBeCloseTo(1, 12);
    // rrfK from the request: k = 0 makes rank 1 worth 1 and rank 2 worth 1/2.
    const k0 = await rank({ rrfK: 0, explain: true }, c);
    expect(k0.results[0]!.evidence[0]!.explain!.fused).toBeCloseTo(1 + 1 / 2, 12);
  });
});
