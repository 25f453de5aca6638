import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openQuarry, rebuildIndex } from '../../src/core/open-or-build.ts';
import type { Quarry } from '../../src/core/quarry.ts';
import { restoreStore } from '../../src/store/open-store.ts';
import { readSnapshot } from '../../src/store/sqlite/snapshot.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { ROOT } from '../helpers/real-service.ts';

/*
 * The write path's limits and the store's snapshot, with a stand-in model (what is tested here is queueing,
 * time limits and storage, not what vectors mean): a gate holds embeddings so "still embedding" and
 * "waiting for its turn" are states the test controls, not timings it hopes for.
 */

const temp: string[] = [];
afterEach(() => {
  for (const d of temp.splice(0)) rmSync(d, { recursive: true, force: true });
});

function configFor(overrides: Record<string, unknown> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'quarry-limits-'));
  temp.push(root);
  return loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir: join(root, 'index'), seedsDir: join(root, 'none'), logLevel: 'silent', ...overrides } });
}

const article = (id: string, n = 3) => ({
  id,
  title: `Article ${id}`,
  date: null,
  source: null,
  url: null,
  paragraphs: Array.from({ length: n }, (_, p) => `Paragraph ${p} of article ${id} with enough words to be a chunk of its own ${id}p${p}.`),
});

async function open(config: ReturnType<typeof configFor>, gate?: () => Promise<void>): Promise<Quarry> {
  const embedder = createHashedEmbedder({ gate });
  await rebuildIndex({ config, embedder: createHashedEmbedder(), from: { articles: [], source: { kind: 'empty' } } });
  return openQuarry({ config, embedder, access: 'write' });
}

/** A gate the test opens: every embedding waits for it. */
function gate() {
  let open!: () => void;
  let opened = new Promise<void>((r) => (open = r));
  let waiting = 0;
  return {
    wait: async () => {
      waiting++;
      await opened;
    },
    get waiting() {
      return waiting;
    },
    open: () => open(),
    close: () => {
      opened = new Promise<void>((r) => (open = r));
    },
  };
}
const until = async (cond: () => boolean) => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

describe('write time limit', () => {
  it('answers `timeout` for a write still embedding at its limit, and stores nothing of it even once the embedding ends', async () => {
    const g = gate();
    const config = configFor({ writeTimeoutMs: 1000 });
    const q = await open(config, g.wait);
    const refusals: string[] = [];
    q.onRefused((why) => refusals.push(why));
    try {
      const write = q.upsertArticles([article('slow')], 'test');
      await until(() => g.waiting === 1);
      await expect(write).rejects.toMatchObject({ code: 'timeout', details: { retryAfterSeconds: expect.any(Number) } });
      expect(refusals).toEqual(['timeout']);
      g.open();
      // The abandoned write's task finishes in the background; the next one runs after it and sees its result.
      await q.upsertArticles([article('next')], 'test');
      expect(await q.getArticle('slow')).toBeNull();
      expect((await q.stats()).articles).toBe(1);
    } finally {
      g.open();
      await q.close();
    }
  });

  it('refuses a write that waited for its turn past QUARRY_WRITE_QUEUE_TIMEOUT_MS, storing nothing of it', async () => {
    const g = gate();
    const config = configFor({ writeQueueTimeoutMs: 50 });
    const q = await open(config, g.wait);
    const refusals: string[] = [];
    q.onRefused((why) => refusals.push(why));
    try {
      const first = q.upsertArticles([article('first')], 'test');
      await until(() => g.waiting === 1);
      await expect(q.upsertArticles([article('waited')], 'test')).rejects.toMatchObject({ code: 'overloaded', details: { reason: 'queue_timeout' } });
      await expect(q.deleteArticle('first')).rejects.toMatchObject({ code: 'overloaded' });
      expect(refusals).toEqual(['queue_timeout', 'queue_timeout']);
      g.open();
      expect(await first).toEqual([{ id: 'first', chunks: 3, replaced: false }]);
      expect(await q.getArticle('waited')).toBeNull();
      expect(await q.getArticle('first')).not.toBeNull();
    } finally {
      g.open();
      await q.close();
    }
  });

  it('on shutdown, withdraws writes still waiting (unavailable, nothing stored) and closes cleanly', async () => {
    const g = gate();
    const config = configFor();
    const q = await open(config, g.wait);
    const first = q.upsertArticles([article('running')], 'test');
    await until(() => g.waiting === 1);
    const waiting = q.upsertArticles([article('queued')], 'test');
    const closed = q.close();
    await expect(waiting).rejects.toMatchObject({ code: 'unavailable' });
    // The running one was not committing yet: it is abandoned too, and stores nothing.
    await expect(first).rejects.toMatchObject({ code: 'unavailable' });
    g.open();
    await closed;
    const reopened = await openQuarry({ config, embedder: createHashedEmbedder(), access: 'read' });
    try {
      expect((await reopened.stats()).articles).toBe(0);
    } finally {
      await reopened.close();
    }
  });
});

describe('IndexStore.snapshot under a stream of writes (SQLite)', () => {
  it('keeps the change log its checkpoint needs while checkpoints run, and restores whole with every write acknowledged before it', async () => {
    // A checkpoint (and, unless held back, log pruning) every 8 chunk changes: many fall inside the snapshot.
    const config = configFor({ checkpointEvery: 8 });
    const q = await open(config);
    const acked: Array<{ id: string; at: number }> = [];
    let stop = false;
    let n = 0;
    const writer = (async () => {
      while (!stop) {
        const id = `w${n++}`;
        await q.upsertArticles([article(id, 2)], 'test');
        acked.push({ id, at: performance.now() });
        if (n % 5 === 0) await q.deleteArticle(`w${n - 3}`);
      }
    })();
    try {
      await until(() => acked.length >= 40);
      const started = performance.now();
      const before = acked.filter((a) => a.at < started).map((a) => a.id);
      const during = acked.length;
      const dir = join(temp[0]!, 'snap');
      const report = await q.snapshot(dir);
      const writesWhileCopying = acked.length - during;
      stop = true;
      await writer;

      expect(report.details.graphOnRestore).toBe('checkpoint + replay');
      expect(report.writesHeldMs).toBeGreaterThanOrEqual(0);
      expect(readSnapshot(dir).seq).toBe(report.seq);
      console.log(`store snapshot: ${writesWhileCopying} writes acknowledged while it was copied; ${JSON.stringify(report.details)}`);

      const restoredConfig = { ...config, indexDir: join(temp[0]!, 'restored') };
      const r = await restoreStore(restoredConfig, {
        from: dir,
        identity: { model: createHashedEmbedder().info, chunker: q.manifest.chunker },
        allowIncompatible: false,
      });
      expect(r.incompatibility).toBeNull();
      const restored = await openQuarry({ config: restoredConfig, embedder: createHashedEmbedder(), access: 'read' });
      try {
        const integrity = await restored.integrity();
        expect(integrity.problems).toEqual([]);
        expect(integrity.ok).toBe(true);
        const ids = new Set((await restored.listArticles()).map((a) => a.id));
        const deleted = (id: string) => Number(id.slice(1)) % 5 === 2;
        for (const id of before) if (!deleted(id)) expect(ids.has(id), id).toBe(true);
        expect(ids.size).toBe(report.articles);
      } finally {
        await restored.close();
      }
    } finally {
      stop = true;
      await writer.catch(() => {});
      await q.close();
    }
  });
});
