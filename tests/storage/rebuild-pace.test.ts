import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrBuild } from '../../src/core/open-or-build.ts';
import type { Quarry } from '../../src/core/quarry.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { silentLogger } from '../../src/logger.ts';
import { SearchRequestSchema } from '../../src/search/schema.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';
import { seedsWithDistractors, testConfig } from '../helpers/service.ts';

/**
 * A live rebuild's work on the main thread (chunking, storing slices) waits at its pace, as its embedding does:
 * serve passes LivePressure.calm, so while searches wait past their target the rebuild stops taking the event
 * loop. Rounds that hold the write queue never wait there (writes would wait with them). Real SQLite; the test
 * embedder (the subject is the rebuild's steps, not the model).
 */
describe("a live rebuild's pace", () => {
  let embedder: Embedder;
  let quarry: Quarry;
  /** The rebuild's catch-up state at each wait, and the gate the next wait blocks on. */
  const waits: Array<{ openRounds: number; heldRounds: number }> = [];
  let gate: Promise<void> | null = null;
  let open: () => void = () => {};

  beforeAll(async () => {
    embedder = createHashedEmbedder();
    const config = testConfig({ seedsDir: seedsWithDistractors() });
    const pace = async () => {
      const c = quarry.rebuild.catchUp;
      waits.push({ openRounds: c?.openRounds ?? 0, heldRounds: c?.heldRounds ?? 0 });
      await gate;
    };
    ({ quarry } = await openOrBuild({ config, embedder, logger: silentLogger, backgroundPace: pace }));
  });
  afterAll(async () => {
    open();
    await quarry?.close();
    await embedder?.close();
  });

  it('stops at the pace while it is held, keeps serving searches, and finishes once it is let go', async () => {
    expect(waits).toEqual([]); // the first build (nothing live beside it) ran at full speed
    const before = await quarry.stats();
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    await quarry.startRebuild();
    await pollUntil(() => waits.length > 0, { what: 'the rebuild to reach its pace' });
    // Held at the pace: no step runs, whatever the event loop does meanwhile; searches and writes are answered.
    const held = { ...quarry.rebuild };
    const waitsWhileHeld = waits.length;
    const hits = await quarry.search(SearchRequestSchema.parse({ q: 'China Belarus industrial park' }));
    expect(hits.results.length).toBeGreaterThan(0);
    await quarry.upsertArticles(
      [
        {
          id: 'written-while-paced',
          title: 'Written while the rebuild waits',
          date: null,
          source: null,
          url: null,
          paragraphs: ['A paragraph written while the rebuild waited at its pace, replayed into the new generation later.'],
        },
      ],
      'test',
    );
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(quarry.rebuild).toMatchObject({ state: 'running', articlesDone: held.articlesDone, chunksDone: held.chunksDone });
    expect(waits.length).toBe(waitsWhileHeld);

    gate = null;
    open();
    await pollUntil(() => quarry.rebuild.state !== 'running', { what: 'the rebuild to finish' });
    expect(quarry.rebuild).toMatchObject({ state: 'succeeded', error: null });
    // The open round that replayed the write made while paced waited at the pace too; no held round did.
    expect(waits.some((w) => w.openRounds >= 1)).toBe(true);
    expect(waits.filter((w) => w.heldRounds > 0)).toEqual([]);
    const after = await quarry.stats();
    expect(after.articles).toBe(before.articles + 1);
    expect(await quarry.getArticle('written-while-paced')).not.toBeNull();
  });
});
