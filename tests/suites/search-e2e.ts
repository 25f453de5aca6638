import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchResponse } from '../../src/search/schema.ts';
import type { TestBackend } from '../helpers/backends.ts';
import { type RealService, seedsWithDistractors, startRealService, testConfig } from '../helpers/real-service.ts';

// Search end to end: the real model, a real index, real HTTP. Run against both backends:
// tests/e2e/search-e2e.test.ts (SQLite + HNSW), tests/postgres/pg-search.test.ts (PostgreSQL + pgvector).

const SEED_ID = '1a76b68b4bef4123';

export function searchE2eSuite(backend: TestBackend): void {
  let service: RealService;
  let seeds: string;

  async function search(q: string, extra = ''): Promise<SearchResponse> {
    const res = await fetch(`${service.url}/search?q=${encodeURIComponent(q)}${extra}`);
    expect(res.status).toBe(200);
    return (await res.json()) as SearchResponse;
  }

  beforeAll(async () => {
    seeds = seedsWithDistractors();
    const target = await backend.newIndex();
    service = await startRealService({ seedsDir: seeds, config: testConfig({ seedsDir: seeds, ...target.config }) });
  });

  afterAll(async () => {
    await service?.dispose();
    rmSync(seeds, { recursive: true, force: true });
  });

  describe(`search end to end (real model, ${backend.name}, real HTTP)`, () => {
    it('indexes the seed article and the distractors', async () => {
      const stats = (await (await fetch(`${service.url}/stats`)).json()) as { articles: number; chunks: number; model: string; dims: number };
      expect(stats.articles).toBe(7);
      expect(stats.model).toBe('onnx-community/all-MiniLM-L6-v2-ONNX');
      expect(stats.dims).toBe(384);
      expect(stats.chunks).toBeGreaterThan(14);
    });

    it('answers "China-Belarus industrial cooperation" with the seed article and its Industrial Park paragraph', async () => {
      const r = await search('China-Belarus industrial cooperation');
      expect(r.results[0]!.article.id).toBe(SEED_ID);
      expect(r.results[0]!.article).toMatchObject({ title: 'Chinese, Belarusian presidents pledge to enhance ties', date: '2023-12-04', source: 'Xinhua' });
      const park = r.results[0]!.evidence.find((e) => e.paragraph === 5);
      expect(park?.text).toContain('China-Belarus Industrial Park');
      if (backend.lexicalRanking === 'bm25') expect(r.results[0]!.evidence[0]).toEqual(park);
      // ts_rank_cd has no IDF: it ranks paragraph 7 (china, belarus, cooperation, repeated) above paragraph 5,
      // the only one that also holds the rarer "industrial" (1.53 against 1.46; BM25: 2.43 against 5.45), and
      // hybrid follows. A known gap of the PostgreSQL lexical ranking: the Park paragraph is evidence, not first.
      else expect(r.results[0]!.evidence.slice(0, 2)).toContainEqual(park);
    });

    it('finds the seed article for the same meaning in other words', async () => {
      // No word of the query is in the paragraph (or anywhere: lexical finds nothing), so only the meaning can
      // answer. Chosen for its margin (cosine 0.51 against 0.23-0.27 for the next article with q4 and q8):
      // "joint factory zone between Beijing and Minsk" was used here until q8, whose cosine puts the Belarus
      // hockey story 0.03 above the seed in semantic mode (hybrid still ranks the seed first: hybrid-seed test).
      const lexical = await search('leaders discussed the conflict between Russia and Kyiv', '&mode=lexical');
      expect(lexical.total).toBe(0);
      const r = await search('leaders discussed the conflict between Russia and Kyiv', '&mode=semantic');
      expect(r.results[0]!.article.id).toBe(SEED_ID);
      expect(r.results[0]!.evidence[0]!.text).toContain('Ukraine crisis');
    });

    it('returns the response shape of DESIGN.md with offsets that point into the article text', async () => {
      const r = await search('China-Belarus industrial cooperation', '&k=3');
      expect(r).toMatchObject({ query: 'China-Belarus industrial cooperation', mode: 'hybrid' });
      expect(r.tookMs).toBeGreaterThan(0);
      expect(r.results.length).toBeLessThanOrEqual(3);
      expect(r.total).toBeGreaterThanOrEqual(r.results.length);
      expect(r.index).toMatchObject({ model: 'onnx-community/all-MiniLM-L6-v2-ONNX', dims: 384, articles: 7 });
      const scores = r.results.map((x) => x.score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
      const article = (await (await fetch(`${service.url}/articles/${SEED_ID}`)).json()) as { paragraphs: string[] };
      const text = article.paragraphs.join('\n\n');
      for (const e of r.results[0]!.evidence) expect(text.slice(e.start, e.end)).toBe(e.text);
    });

    it('ranks the distractor that is about Belarus in another context for a hockey query', async () => {
      const r = await search('ice hockey tournament in the Belarusian capital');
      expect(r.results[0]!.article.id).toBe('distractor-belarus-hockey');
    });

    it('returns the article with its paragraphs, and 404 JSON for an unknown id', async () => {
      const ok = await fetch(`${service.url}/articles/${SEED_ID}`);
      expect(ok.status).toBe(200);
      const body = (await ok.json()) as { id: string; paragraphs: string[] };
      expect(body.id).toBe(SEED_ID);
      expect(body.paragraphs).toHaveLength(14);
      const missing = await fetch(`${service.url}/articles/no-such-article`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no article with id no-such-article', field: 'id' } });
    });

    // The index records the identity of the real model that built it (moved from the storage tier's persistence
    // test, which runs on the test embedder).
    it('records a manifest with the model, its file checksums, the chunker and HNSW parameters', async () => {
      const manifest = await backend.manifest(service.config);
      expect(manifest.model).toMatchObject({ id: 'onnx-community/all-MiniLM-L6-v2-ONNX', dtype: 'q8', dims: 384, pooling: 'mean' });
      expect(manifest.model.files['onnx/model_quantized.onnx']).toBe('afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1');
      // Only the weights this dtype loads: q4's, if installed too, do not change the model.
      expect(Object.keys(manifest.model.files).filter((f) => f.startsWith('onnx/'))).toEqual(['onnx/model_quantized.onnx']);
      expect(manifest.chunker.version).toMatch(/^paragraph-v\d+$/);
      expect(manifest.hnsw).toEqual({ space: 'cosine', M: 16, efConstruction: 200, efSearch: 160 });
      expect(manifest.counts).toEqual({ articles: 7, chunks: expect.any(Number) });
      expect(Date.parse(manifest.built)).not.toBeNaN();
    });

    it('reports health once the model answers', async () => {
      const res = await fetch(`${service.url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok' });
    });
  });
}
