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
  /** Every passage-embedding call while a rebuild runs: its catch-up stage, priority and texts. */
  const calls: Array<{ stage: number; background: boolean; liveSessions: boolean; texts: string[] }> = [];
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
        // (service is unset while it starts: its first build is not a rebuild.)
        const rebuild = service?.quarry.rebuild;
        const stage = rebuild?.catchUp?.openRounds ?? 0;
        if (rebuild?.state === 'running')
          calls.push({ stage, background: passage?.background === true, liveSessions: passage?.liveSessions === true, texts: [...ts] });
        if (passage?.background) {
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
    expect(quarry.rebuild.catchUp).toEqual({ openRounds: 2, openArticles: 15, foregroundRounds: 0, heldRounds: 1, heldArticles: 0 });
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

  it('runs the open rounds at full priority once a round no longer halves the one before, so they shrink while writes go on', async () => {
    const quarry = service.quarry;
    const before = await quarry.stats();
    const batch = (name: string, n: number) => Array.from({ length: n }, (_, i) => article(`${name}-${i}`));
    calls.length = 0;
    // 12 during the build, 12 during round 1 (round 2 replays as many as round 1: not halved), 10 during round 2.
    hooks.set(0, async () => void (await quarry.upsertArticles(batch('fg-build', 12), 'test')));
    hooks.set(1, async () => void (await quarry.upsertArticles(batch('fg-round-1', 12), 'test')));
    hooks.set(2, async () => void (await quarry.upsertArticles(batch('fg-round-2', 10), 'test')));
    await quarry.startRebuild();
    await pollUntil(() => quarry.rebuild.state !== 'running', { what: 'the rebuild to finish' });
    expect(quarry.rebuild).toMatchObject({ state: 'succeeded', error: null });
    // Rounds 1 and 2 in the background; round 3 (the 10 written during round 2) and round 4 (nothing left) not.
    expect(quarry.rebuild.catchUp).toEqual({ openRounds: 4, openArticles: 34, foregroundRounds: 2, heldRounds: 1, heldArticles: 0 });
    expect(hooks.size).toBe(0);
    const embeddingsOf = (id: string) =>
      calls.filter((c) => c.texts.some((t) => t.includes(`${id} with`))).map(({ stage, background, liveSessions }) => ({ stage, background, liveSessions }));
    // Each article written during round 2: embedded once by its write, once more by round 3 on the live sessions
    // (full priority, behind live writes: see passageLane).
    expect(embeddingsOf('fg-round-2-0')).toEqual([
      { stage: 2, background: false, liveSessions: false },
      { stage: 3, background: true, liveSessions: true },
    ]);
    // Those written during round 1 were replayed by round 2, still on the background sessions.
    expect(embeddingsOf('fg-round-1-0')).toEqual([
      { stage: 1, background: false, liveSessions: false },
      { stage: 2, background: true, liveSessions: false },
    ]);
    const after = await quarry.stats();
    expect(after.articles).toBe(before.articles + 34);
    for (const id of ['fg-build-11', 'fg-round-1-0', 'fg-round-2-9']) expect((await quarry.getArticle(id))?.title, id).toBe(`Catch-up article ${id}`);
    expect((await quarry.integrity()).problems).toEqual([]);
  });
});
