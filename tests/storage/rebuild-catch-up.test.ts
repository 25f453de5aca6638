import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';
import { type Service, seedsWithDistractors, startHashedService, testConfig } from '../helpers/service.ts';

/**
 * Writes made while a rebuild runs are replayed into the new generation in rounds while writes go on, and only
 * the last (small) round holds the write queue. Real SQLite; the test embedder (the subject is the catch-up, not
 * the model), whose background calls (the rebuild's) are where the test lands its writes.
 */
describe("a rebuild's catch-up of the writes made during it", () => {
  let real: Embedder;
  let service: Service;
  const hooks = new Map<number, () => Promise<void>>();
  const article = (id: string) => ({
    id,
    title: `Catch-up article ${id}`,
    date: null,
    source: null,
    url: null,
    paragraphs: [`Paragraph of catch-up article ${id} with enough words to be a chunk of its own, ${id}.`],
  });

  beforeAll(async () => {
    const seedsDir = seedsWithDistractors();
    real = createHashedEmbedder();
    // The rebuild's embedding calls (background) run a hook once per catch-up stage: 0 = the build itself,
    // 1 = the first open catch-up round, and so on.
    const hooked: Embedder = {
      get info() {
        return real.info;
      },
      passagesOffMainThread: real.passagesOffMainThread,
      countTokens: (t) => real.countTokens(t),
      encodePassage: real.encodePassage ? (t) => real.encodePassage!(t) : undefined,
      embedPassages: async (ts, p, ids, passage) => {
        if (passage?.background) {
          const stage = service.quarry.rebuild.catchUp?.openRounds ?? 0;
          const hook = hooks.get(stage);
          hooks.delete(stage);
          await hook?.();
        }
        return real.embedPassages(ts, p, ids, passage);
      },
      embedQuery: (t) => real.embedQuery(t),
      close: async () => {},
    };
    service = await startHashedService({ seedsDir, config: testConfig({ seedsDir }), embedder: hooked });
  });
  afterAll(async () => {
    await service?.dispose();
    await real?.close();
  });

  it('replays writes in open rounds until a round is small, holds writes only for the last one, and keeps every write', async () => {
    const quarry = service.quarry;
    const before = await quarry.stats();
    const many = Array.from({ length: 12 }, (_, i) => article(`during-build-${i}`));
    // During the build: 12 articles, more than a small round. During the first open round: 2 more and a delete.
    hooks.set(0, async () => {
      await quarry.upsertArticles(many, 'test');
    });
    hooks.set(1, async () => {
      await quarry.upsertArticles([article('during-round-1-a'), article('during-round-1-b')], 'test');
      expect(await quarry.deleteArticle('during-build-0')).toBe(true);
    });
    await quarry.startRebuild();
    await pollUntil(() => quarry.rebuild.state !== 'running', { what: 'the rebuild to finish' });
    expect(quarry.rebuild).toMatchObject({ state: 'succeeded', error: null });
    // Round 1 replayed the 12; round 2 only the 3 ids touched during round 1 (not all since the build began),
    // which is small: the held round found nothing left to replay.
    expect(quarry.rebuild.catchUp).toEqual({ openRounds: 2, openArticles: 15, heldRounds: 1, heldArticles: 0 });
    expect(hooks.size).toBe(0);

    // Every write is in the new generation, the delete too.
    const after = await quarry.stats();
    expect(after.dir).not.toBe(before.dir);
    expect(after.articles).toBe(before.articles + 13);
    expect(await quarry.getArticle('during-build-0')).toBeNull();
    for (const id of ['during-build-1', 'during-build-11', 'during-round-1-a', 'during-round-1-b'])
      expect((await quarry.getArticle(id))?.title, id).toBe(`Catch-up article ${id}`);
    expect((await quarry.integrity()).problems).toEqual([]);
  });
});
