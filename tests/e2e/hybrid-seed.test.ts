import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SearchRequestInput, SearchRequestSchema, type SearchResponse } from '../../src/search/schema.ts';
import { type RealService, seedsWithDistractors, startRealService } from '../helpers/real-service.ts';

const SEED_ID = '1a76b68b4bef4123';

/**
 * Hybrid retrieval on the seed article among the distractors (real model, real index, default fusion settings):
 * a query that only a keyword retriever can pin to one paragraph, one that only the meaning can, and the two
 * cases where paragraph-level rank fusion used to pick the wrong paragraph or the wrong article.
 */
describe('hybrid search over the seed article and distractors', () => {
  let svc: RealService;
  let seeds: string;
  const search = async (input: SearchRequestInput): Promise<SearchResponse> => svc.quarry.search(SearchRequestSchema.parse({ explain: true, ...input }));

  beforeAll(async () => {
    seeds = seedsWithDistractors();
    svc = await startRealService({ seedsDir: seeds });
  });
  afterAll(async () => {
    await svc?.dispose();
    rmSync(seeds, { recursive: true, force: true });
  });

  it('finds a name that appears in one paragraph only (keyword match): "Cai Qi" -> paragraph 13', async () => {
    const lexical = await search({ q: 'Cai Qi', mode: 'lexical' });
    // BM25 matches that paragraph and nothing else in the collection.
    expect(lexical.results.map((r) => [r.article.id, r.evidence.map((e) => e.paragraph)])).toEqual([[SEED_ID, [13]]]);

    const hybrid = await search({ q: 'Cai Qi' });
    expect(hybrid.results[0]!.article.id).toBe(SEED_ID);
    expect(hybrid.results[0]!.evidence[0]!.paragraph).toBe(13);
    expect(hybrid.results[0]!.evidence[0]!.text).toContain('Cai Qi and Wang Yi');
    expect(hybrid.results[0]!.evidence[0]!.explain!.matchedTerms).toEqual(['cai', 'qi']);
  });

  it('finds a paragraph that shares no word with the query (meaning match): the Ukraine paragraph', async () => {
    const q = 'leaders discussed the conflict between Russia and Kyiv';
    const lexical = await search({ q, mode: 'lexical' });
    expect(lexical.total).toBe(0); // no query word occurs anywhere: only the dense retriever can answer

    const hybrid = await search({ q });
    expect(hybrid.results[0]!.article.id).toBe(SEED_ID);
    const top = hybrid.results[0]!.evidence[0]!;
    expect(top.paragraph).toBe(12);
    expect(top.text).toContain('Ukraine crisis');
    expect(top.explain!.lexical).toBeNull();
    expect(top.explain!.dense!.rank).toBe(1);
  });

  it('"China-Belarus industrial cooperation": the seed first, with the Industrial Park paragraph (5) as top evidence', async () => {
    const r = await search({ q: 'China-Belarus industrial cooperation' });
    expect(r.results[0]!.article.id).toBe(SEED_ID);
    const top = r.results[0]!.evidence[0]!;
    expect(top.paragraph).toBe(5);
    expect(top.text).toContain('China-Belarus Industrial Park');
    // The reason it wins: BM25 puts it first by a wide margin, though dense ranks other seed paragraphs higher.
    expect(top.explain!.lexical!.rank).toBe(1);
    expect(top.explain!.dense!.rank).toBeGreaterThan(1);
  });

  it('plain paragraph-level RRF (k=60) is still available and still picks another paragraph there', async () => {
    const r = await svc.quarry.search(
      SearchRequestSchema.parse({ q: 'China-Belarus industrial cooperation', fusion: 'rrf', rrfK: 60, denseWeight: 1, lexicalWeight: 1 }),
    );
    expect(r.results[0]!.article.id).toBe(SEED_ID);
    expect(r.results[0]!.evidence[0]!.paragraph).not.toBe(5);
  });

  it('"joint factory zone between Beijing and Minsk": the seed first, not the Franco-German battery plant', async () => {
    const q = 'joint factory zone between Beijing and Minsk';
    const lexical = await search({ q, mode: 'lexical' });
    // Words alone favour the distractor (its title says "joint", its text "factory")...
    expect(lexical.results[0]!.article.id).toBe('distractor-franco-german-industry');
    // ...the meaning puts the seed above it, and hybrid adds the two. (Whether the meaning alone puts the seed
    // first depends on the weights: q4 0.448 vs the Belarus hockey story's 0.410, q8 0.385 vs 0.415; so that
    // is not asserted here. docs/relevance.md, q8 against q4.)
    const semantic = await search({ q, mode: 'semantic' });
    const order = semantic.results.map((r) => r.article.id);
    expect(order.indexOf(SEED_ID)).toBeGreaterThanOrEqual(0);
    expect(order.indexOf(SEED_ID)).toBeLessThan(order.indexOf('distractor-franco-german-industry'));
    const hybrid = await search({ q });
    expect(hybrid.results.map((r) => r.article.id).slice(0, 2)).toEqual([SEED_ID, 'distractor-franco-german-industry']);
    // Stop words are not searched: "between" and "and" match nothing.
    expect(hybrid.results.flatMap((r) => r.evidence.flatMap((e) => e.explain!.matchedTerms))).not.toContain('and');
  });
});
