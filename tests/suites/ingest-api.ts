import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { createEmbedder } from '../../src/runtime.ts';
import type { TestBackend } from '../helpers/backends.ts';
import { pollUntil } from '../helpers/poll.ts';
import { type RealService, seedsWithDistractors, startRealService, testConfig } from '../helpers/real-service.ts';

/*
 * The live write API end to end: the real model, a real index built from seeds/, the real HTTP server.
 * Add, replace and delete through the API, then search; then restart on the same index and check again.
 * (That bad input is refused naming the field is the HTTP contract: tests/suites/ingest-validation.ts.)
 * Run against both backends: tests/e2e/ingest-api.test.ts (SQLite), tests/postgres/pg-ingest-api.test.ts.
 */

const KEY = 'ingest-test-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const json = { ...auth, 'content-type': 'application/json' };

export function ingestApiSuite(backend: TestBackend): void {
  let embedder: Embedder;
  /** The service under test; replaced by the restart tests (same index folder, which dispose() removes). */
  let service: RealService;
  /** The seed article and six distractors, as a seeds folder synced at every start. */
  let seedsDir: string;

  const lighthouse = {
    id: 'orkney-lighthouse',
    title: 'Keeper restores the Noup Head lighthouse lamp',
    date: '2024-03-02',
    source: 'Test Wire',
    paragraphs: [
      'The volunteer keeper of the Noup Head lighthouse on Westray, in Orkney, has repaired the old lamp after a winter storm broke its lens. The keeper, Morag Flett, spent three weeks on the work.',
      'Fishing crews said the light could be seen again from the Westray Firth on Tuesday night. The repair used brass fittings salvaged from a decommissioned lightship, quoth the harbour master.',
    ],
  };
  const lighthouseReplacement = {
    ...lighthouse,
    title: 'Noup Head lighthouse to close for good',
    paragraphs: [
      'The Northern Lighthouse Board announced that the Noup Head light on Westray will be switched off permanently next spring and replaced by an automatic buoy in the Westray Firth.',
      'Islanders plan a farewell gathering at the foot of the tower, with a ceilidh band and a bonfire on the cliffs.',
    ],
  };
  const bakery = {
    id: 'sourdough-bakery',
    title: 'Village bakery wins a prize for its sourdough',
    text: 'A small bakery in the Cotswolds won the national sourdough award on Saturday with a loaf made from heritage spelt flour and a starter kept alive since 1974.\n\nThe baker, Priya Okonkwo, said the secret was a long, cold fermentation of forty hours.',
  };

  type SearchBody = {
    results: Array<{ article: { id: string }; evidence: Array<{ paragraph: number; text: string }> }>;
    index: { articles: number; chunks: number };
  };

  async function search(url: string, q: string, mode: 'lexical' | 'semantic' | 'hybrid' = 'hybrid', k = 5): Promise<SearchBody> {
    const res = await fetch(`${url}/search?${new URLSearchParams({ q, mode, k: String(k) })}`);
    expect(res.status).toBe(200);
    return (await res.json()) as SearchBody;
  }
  const ids = (b: SearchBody) => b.results.map((r) => r.article.id);
  const post = (url: string, body: unknown, headers: Record<string, string> = json) =>
    fetch(`${url}/articles`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const getArticle = (url: string, id: string) => fetch(`${url}/articles/${id}`, { headers: { accept: 'application/json' } });

  beforeAll(async () => {
    seedsDir = seedsWithDistractors();
    const target = await backend.newIndex();
    const config = testConfig({ seedsDir, apiKey: KEY, maxBatchArticles: 3, bodyLimit: '16kb', ...target.config });
    embedder = await createEmbedder(config);
    service = await startRealService({ seedsDir, config, embedder });
  });
  afterAll(async () => {
    await service?.dispose();
    await embedder?.close();
    if (seedsDir) rmSync(seedsDir, { recursive: true, force: true });
  });

  describe('add, replace, delete through the API', () => {
    it('adds an article: 201 with its chunk count, then found by keyword and by meaning', async () => {
      const before = await search(service.url, 'anything', 'lexical');
      const res = await post(service.url, lighthouse);
      expect(res.status).toBe(201);
      const body = (await res.json()) as { articles: Array<{ id: string; chunks: number; replaced: boolean }>; tookMs: number };
      expect(body.articles).toEqual([{ id: 'orkney-lighthouse', chunks: 2, replaced: false }]);

      expect(ids(await search(service.url, 'Morag Flett', 'lexical'))).toEqual(['orkney-lighthouse']);
      expect(ids(await search(service.url, 'who fixed the broken lamp of a Scottish island lighthouse?', 'semantic'))[0]).toBe('orkney-lighthouse');
      const hybrid = await search(service.url, 'brass fittings from an old lightship');
      expect(ids(hybrid)[0]).toBe('orkney-lighthouse');
      expect(hybrid.results[0]!.evidence[0]!.paragraph).toBe(1);
      expect(hybrid.index.articles).toBe(before.index.articles + 1);

      const article = await getArticle(service.url, 'orkney-lighthouse');
      expect(article.status).toBe(200);
      expect(await article.json()).toMatchObject({
        id: 'orkney-lighthouse',
        title: lighthouse.title,
        date: '2024-03-02',
        source: 'Test Wire',
        paragraphs: lighthouse.paragraphs,
      });
    });

    it('adds a batch ({articles: [...]}) given as text with blank lines', async () => {
      const other = {
        id: 'tide-tables',
        title: 'New tide tables published',
        paragraphs: [
          'The harbour office of harbourmaster Quennell published the tide tables for the coming year, with the highest tide expected in late September.',
        ],
      };
      const res = await post(service.url, { articles: [bakery, other] });
      expect(res.status).toBe(201);
      expect(((await res.json()) as { articles: unknown[] }).articles).toEqual([
        { id: 'sourdough-bakery', chunks: 2, replaced: false },
        { id: 'tide-tables', chunks: 1, replaced: false },
      ]);
      expect(((await (await getArticle(service.url, 'sourdough-bakery')).json()) as { paragraphs: string[] }).paragraphs).toHaveLength(2);
      expect(ids(await search(service.url, 'Okonkwo', 'lexical'))).toEqual(['sourdough-bakery']);
    });

    it('replaces an article with the same id: the new text is found, the old text is not', async () => {
      const chunksBefore = (await search(service.url, 'x', 'lexical')).index.chunks;
      const res = await post(service.url, lighthouseReplacement);
      expect(res.status).toBe(201);
      expect(((await res.json()) as { articles: unknown[] }).articles).toEqual([{ id: 'orkney-lighthouse', chunks: 2, replaced: true }]);

      expect(ids(await search(service.url, 'ceilidh bonfire farewell', 'lexical'))).toEqual(['orkney-lighthouse']);
      expect(ids(await search(service.url, 'Morag Flett', 'lexical'))).toEqual([]);
      expect(ids(await search(service.url, 'brass fittings salvaged lightship', 'lexical'))).toEqual([]);
      // Dense retrieval must not find the old paragraphs either: the evidence comes only from the new text.
      const semantic = await search(service.url, 'volunteer keeper repaired the lamp after the storm broke its lens', 'semantic', 10);
      for (const r of semantic.results) for (const e of r.evidence) expect(lighthouse.paragraphs).not.toContain(e.text);
      expect((await search(service.url, 'x', 'lexical')).index.chunks).toBe(chunksBefore);
      expect(await (await getArticle(service.url, 'orkney-lighthouse')).json()).toMatchObject({
        title: lighthouseReplacement.title,
        paragraphs: lighthouseReplacement.paragraphs,
      });
    });

    it('deletes an article: 204, then it is in no search and GET gives 404; a second delete gives 404', async () => {
      const res = await fetch(`${service.url}/articles/sourdough-bakery`, { method: 'DELETE', headers: auth });
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
      expect((await getArticle(service.url, 'sourdough-bakery')).status).toBe(404);
      expect(ids(await search(service.url, 'sourdough spelt fermentation Okonkwo', 'lexical'))).toEqual([]);
      for (const mode of ['semantic', 'hybrid'] as const) {
        expect(ids(await search(service.url, 'award-winning sourdough bread from a village bakery', mode, 20))).not.toContain('sourdough-bakery');
      }
      const again = await fetch(`${service.url}/articles/sourdough-bakery`, { method: 'DELETE', headers: auth });
      expect(again.status).toBe(404);
      expect(await again.json()).toMatchObject({ error: { code: 'not_found', field: 'id' } });
    });

    it('keeps all of it after a restart on the same index, and the index checks out whole', async () => {
      // The seed article replaced through the API: the seeds folder, synced at every start, must not revert it.
      const seedId = '1a76b68b4bef4123';
      const mine = {
        id: seedId,
        title: 'Seed article replaced through the API',
        paragraphs: ['This text replaced the seed file version through the API, and it must survive a restart with the seeds folder still in place.'],
      };
      expect(((await (await post(service.url, mine)).json()) as { articles: unknown[] }).articles).toEqual([{ id: seedId, chunks: 1, replaced: true }]);
      // And a seed article deleted through the API must stay deleted.
      expect((await fetch(`${service.url}/articles/distractor-weather`, { method: 'DELETE', headers: auth })).status).toBe(204);
      const deletedPoints = (await service.quarry.stats()).deleted;
      await service.stop();
      const reopened = await startRealService({ seedsDir, config: service.config, embedder });
      service = reopened;
      expect(await (await getArticle(reopened.url, 'orkney-lighthouse')).json()).toMatchObject({
        title: lighthouseReplacement.title,
        paragraphs: lighthouseReplacement.paragraphs,
      });
      expect((await getArticle(reopened.url, 'sourdough-bakery')).status).toBe(404);
      expect((await getArticle(reopened.url, 'tide-tables')).status).toBe(200);
      expect(ids(await search(reopened.url, 'Quennell', 'lexical'))).toEqual(['tide-tables']);
      expect(await (await getArticle(reopened.url, seedId)).json()).toMatchObject({ title: mine.title, paragraphs: mine.paragraphs });
      expect((await getArticle(reopened.url, 'distractor-weather')).status).toBe(404);
      expect((await getArticle(reopened.url, 'distractor-football')).status).toBe(200);
      expect(ids(await search(reopened.url, 'ceilidh bonfire farewell', 'lexical'))).toEqual(['orkney-lighthouse']);
      expect(ids(await search(reopened.url, 'Morag Flett', 'lexical'))).toEqual([]);
      expect(ids(await search(reopened.url, 'sourdough spelt fermentation Okonkwo', 'lexical'))).toEqual([]);
      expect(ids(await search(reopened.url, 'award-winning sourdough bread from a village bakery', 'semantic', 20))).not.toContain('sourdough-bakery');
      expect(ids(await search(reopened.url, 'lighthouse switched off and replaced by a buoy', 'semantic'))[0]).toBe('orkney-lighthouse');
      const integrity = await reopened.quarry.integrity();
      expect(integrity.problems).toEqual([]);
      expect(integrity.hnsw.live).toBe(integrity.chunks);
      if (backend.keepsDeletedPoints) {
        // The deleted and replaced chunks (2 + 2 + the seed's 14 + the storm's) are marked deleted in the graph, not live.
        expect(deletedPoints).toBeGreaterThan(18);
        expect(integrity.hnsw.points - integrity.chunks).toBe(deletedPoints);
      } else {
        // pgvector drops them from the index with their rows, in the same transaction.
        expect(deletedPoints).toBe(0);
        expect(integrity.hnsw.points).toBe(integrity.chunks);
      }
    });
  });

  describe('searches during a write', () => {
    it('answers a search sent while a large write is embedding before that write is acknowledged', async () => {
      // 40 paragraphs: the model embeds them in several slices (WRITE_EMBED_SLICE), and onnxruntime-node
      // blocks the event loop during each; the search must get its turn between slices, not after the write.
      const big = {
        id: 'big-write',
        title: 'A long report on northern harbours',
        paragraphs: Array.from(
          { length: 40 },
          (_, i) =>
            `Section ${i} of the report describes the harbour walls, the ferries, the fishing fleet and the weather of the northern isles in great detail.`,
        ),
      };
      const order: string[] = [];
      const write = post(service.url, big).then(async (r) => {
        order.push(`write ${r.status}`);
      });
      // The search goes out once the write is in the queue (being chunked and embedded), not after a guessed delay.
      await pollUntil(() => service.quarry.writeQueueDepth > 0, { what: 'the large write to reach the write queue' });
      const read = fetch(`${service.url}/search?q=${encodeURIComponent('lighthouse closing on Westray')}&mode=hybrid`).then(async (r) => {
        order.push(`search ${r.status}`);
      });
      await Promise.all([write, read]);
      expect(order).toEqual(['search 200', 'write 201']);
      expect((await fetch(`${service.url}/articles/big-write`, { method: 'DELETE', headers: auth })).status).toBe(204);
    });
  });

  describe('background rebuild through the API', () => {
    it('rebuilds into a new index while answering searches, keeps writes made meanwhile, and refuses a second rebuild', async () => {
      const { articles } = await service.quarry.stats();
      const generationBefore = await backend.generation(service.config);
      const start = await fetch(`${service.url}/admin/rebuild`, { method: 'POST', headers: auth });
      expect(start.status).toBe(202);
      expect(await start.json()).toMatchObject({ state: 'running', articlesTotal: articles });
      const second = await fetch(`${service.url}/admin/rebuild`, { method: 'POST', headers: auth });
      expect(second.status).toBe(409);

      // Writes and searches while it runs.
      expect((await post(service.url, bakery)).status).toBe(201);
      expect((await fetch(`${service.url}/articles/tide-tables`, { method: 'DELETE', headers: auth })).status).toBe(204);
      expect(ids(await search(service.url, 'ceilidh bonfire farewell', 'lexical'))).toEqual(['orkney-lighthouse']);

      type Status = { state: string; articlesDone: number; error: string | null };
      const status = await pollUntil(
        async () => {
          const s = (await (await fetch(`${service.url}/admin/rebuild`, { headers: auth })).json()) as Status;
          return s.state !== 'running' ? s : null;
        },
        { what: 'the rebuild to finish' },
      );
      expect(status).toMatchObject({ state: 'succeeded', error: null });
      expect(await backend.generation(service.config)).not.toBe(generationBefore);

      expect(ids(await search(service.url, 'Okonkwo', 'lexical'))).toEqual(['sourdough-bakery']);
      expect((await getArticle(service.url, 'tide-tables')).status).toBe(404);
      expect(ids(await search(service.url, 'Quennell', 'lexical'))).toEqual([]);
      const integrity = await service.quarry.integrity();
      expect(integrity.problems).toEqual([]);
      // The rebuild dropped the points marked deleted before it; only the tide-tables chunk, deleted after it
      // started, is marked deleted in the new graph (pgvector keeps none).
      expect(integrity.hnsw.points).toBe(integrity.chunks + (backend.keepsDeletedPoints ? 1 : 0));

      // A start after the rebuild still keeps what the API did to the seed articles.
      await service.stop();
      service = await startRealService({ seedsDir, config: service.config, embedder });
      expect((await getArticle(service.url, 'distractor-weather')).status).toBe(404);
      expect(await (await getArticle(service.url, '1a76b68b4bef4123')).json()).toMatchObject({ title: 'Seed article replaced through the API' });
      expect(ids(await search(service.url, 'Okonkwo', 'lexical'))).toEqual(['sourdough-bakery']);
    });

    it('abandons a rebuild when the service stops: no half-built index is left, and the old one reopens whole', async () => {
      const generationBefore = await backend.generation(service.config);
      expect((await fetch(`${service.url}/admin/rebuild`, { method: 'POST', headers: auth })).status).toBe(202);
      await service.stop();
      expect(await backend.halfBuilt(service.config)).toEqual([]);
      service = await startRealService({ seedsDir, config: service.config, embedder });
      expect(await backend.generation(service.config)).toBe(generationBefore);
      expect((await service.quarry.integrity()).problems).toEqual([]);
      expect(ids(await search(service.url, 'Okonkwo', 'lexical'))).toEqual(['sourdough-bakery']);
    });
  });
}
