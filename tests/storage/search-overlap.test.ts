import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { SearchRequestSchema } from '../../src/search/schema.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';
import { type Service, seedsWithDistractors, startHashedService, testConfig } from '../helpers/service.ts';

/**
 * A search runs BM25 while its query is embedded. If a rebuild swaps the generation in between, the BM25
 * candidates (chunk rowids of the old generation) must not be read in the new one, where the same rowids
 * are other chunks. Real SQLite; the test embedder (the subject is the generation swap, not the model), and
 * only the moment the query vector arrives is controlled.
 */
describe('a search whose query embedding spans a generation swap', () => {
  let real: Embedder;
  let service: Service;
  let release: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  const gated = (): Embedder => ({
    get info() {
      return real.info;
    },
    passagesOffMainThread: real.passagesOffMainThread,
    countTokens: (t) => real.countTokens(t),
    embedPassages: (ts, p) => real.embedPassages(ts, p),
    embedQuery: async (t) => {
      await gate;
      return real.embedQuery(t);
    },
    close: async () => {},
  });

  beforeAll(async () => {
    const seedsDir = seedsWithDistractors();
    const config = testConfig({ seedsDir, queryCacheSize: 0 });
    real = createHashedEmbedder();
    service = await startHashedService({ seedsDir, config, embedder: gated() });
  });
  afterAll(async () => {
    release();
    await service?.dispose();
    await real?.close();
  });

  it('reads BM25 candidates from the generation it ranks in', async () => {
    const quarry = service.quarry;
    // Deleting the first articles makes the rebuilt generation number every later chunk differently.
    await quarry.deleteArticle('1a76b68b4bef4123');
    await quarry.deleteArticle('distractor-football');
    const dirBefore = (await quarry.stats()).dir;

    gate = new Promise((r) => (release = r));
    const pending = quarry.search(SearchRequestSchema.parse({ q: 'storm heavy rain gusts coast', explain: true }));
    quarry.startRebuild();
    await pollUntil(() => quarry.rebuild.state !== 'running', { what: 'the rebuild to finish' });
    expect(quarry.rebuild.state).toBe('succeeded');
    expect((await quarry.stats()).dir).not.toBe(dirBefore);
    release();
    const res = await pending;

    expect(res.results[0]?.article.id).toBe('distractor-weather');
    const best = res.results[0]!.evidence[0]!;
    expect(best.explain?.lexical).not.toBeNull();
    expect(best.explain?.matchedTerms.length).toBeGreaterThan(0);
    // Every paragraph BM25 put forward contains a query term: none is a stale rowid's stranger.
    for (const r of res.results)
      for (const e of r.evidence) if (e.explain?.lexical) expect(e.explain.matchedTerms, `${r.article.id} ¶${e.paragraph}`).not.toEqual([]);
  });
});
