import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Article } from '../../src/corpus/article.ts';
import { DATABASE_FILE } from '../../src/store/sqlite/database.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { hashedVector } from '../helpers/hashed-embedder.ts';
import { CHUNKER, testModel } from '../helpers/store-fixtures.ts';

/*
 * Compaction built beside the live graph (src/store/sqlite/compaction.ts): a worker thread builds the new graph
 * from a read snapshot of SQLite at change S while writes, deletes, searches and checkpoints go on; the swap
 * replays what was logged after S. The store's `onCompactionBuilt` hook holds the swap, so the test decides
 * exactly what lands "during" a compaction (no timing). Vectors are the hashed test embedder's (no model).
 */

const DIMS = 32;
const MODEL = testModel(DIMS, 'test/hashed-bag-of-words-32', 'none');

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

const article = (n: number, variant = ''): Article => ({
  id: `a${n}`,
  title: `Article ${n}`,
  date: null,
  source: null,
  url: null,
  tags: [],
  paragraphs: [0, 1, 2, 3].map((p) => `paragraph ${p} of article ${n}${variant} word${n}x${p}${variant} w${(n * 7 + p) % 97} v${(n * 13 + p) % 89}`),
});

/** A gate the compaction's swap waits at: `reached` resolves with S when the graph is built. */
function swapGate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let reachedWith!: (seq: number) => void;
  const reached = new Promise<number>((r) => (reachedWith = r));
  let calls = 0;
  return {
    hook: async (seq: number) => {
      calls++;
      reachedWith(seq);
      await opened;
    },
    reached,
    open: () => open(),
    calls: () => calls,
  };
}

async function openStore(root: string, onCompactionBuilt?: (seq: number) => Promise<void>, logger?: pino.Logger): Promise<SqliteStore> {
  return SqliteStore.open({
    logger,
    root,
    identity: { model: MODEL, chunker: CHUNKER },
    access: 'write',
    hnsw: { M: 16, efConstruction: 100, efSearch: 64 },
    checkpointEvery: 50,
    compactDeletedRatio: 0.2,
    onCompactionBuilt,
  });
}

const upsert = (store: SqliteStore, articles: Article[]) =>
  store.write(
    articles.map((a) => ({
      op: 'upsert' as const,
      article: {
        article: a,
        origin: 'test',
        chunks: a.paragraphs.map((text, i) => ({ paragraph: i, start: 0, end: text.length, text, vector: hashedVector(text, DIMS) })),
      },
    })),
  );
const remove = (store: SqliteStore, id: string) => store.write([{ op: 'delete', id }]);

/** 300 articles × 4 chunks, then deletes up to the first that crosses 20% deleted points (starting a compaction). */
async function storeWithCompactionStarted(
  onCompactionBuilt?: (seq: number) => Promise<void>,
  logger?: pino.Logger,
): Promise<{ store: SqliteStore; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'quarry-compaction-live-'));
  roots.push(root);
  const store = await openStore(root, onCompactionBuilt, logger);
  const builder = await store.beginGeneration({ source: { kind: 'empty' } });
  await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
  for (let n = 0; n < 300; n += 25)
    await upsert(
      store,
      Array.from({ length: 25 }, (_, i) => article(n + i)),
    );
  // 61 articles = 244 of 1,200 points: 20.3% > 20%, so the 61st delete starts the compaction.
  for (let n = 0; n < 61; n++) await remove(store, `a${n}`);
  return { store, root };
}

/** The nearest article to a text through the store's own vector search (the live graph). */
async function nearest(store: SqliteStore, text: string, k = 3): Promise<string[]> {
  const r = store.reader();
  try {
    const { chunks } = await r.vectorCandidates({ vector: hashedVector(text, DIMS), limit: k });
    const articles = await r.articlesOfChunks(chunks.map((c) => c.chunkId));
    const ids = new Map<number, string>();
    for (const a of new Set(articles.values())) {
      const row = (await r.articleMetas([a])).get(a);
      if (row) ids.set(a, row.id);
    }
    return chunks.map((c) => ids.get(articles.get(c.chunkId)!) ?? `missing chunk ${c.chunkId}`);
  } finally {
    r.release();
  }
}

const genDir = (root: string) => join(root, readFileSync(join(root, 'CURRENT'), 'utf8').trim());
const firstLoggedSeq = (root: string): number | null => {
  const db = new Database(join(genDir(root), DATABASE_FILE), { readonly: true });
  try {
    return (db.prepare('SELECT min(seq) AS s FROM changes').get() as { s: number | null }).s;
  } finally {
    db.close();
  }
};

describe('HNSW compaction built beside the live graph', () => {
  it('keeps writes, deletes, searches and checkpoints going while it is built, replays them at the swap, and keeps the log from S', async () => {
    const gate = swapGate();
    const { store, root } = await storeWithCompactionStarted(gate.hook);
    try {
      // The compaction was started by a write and did not hold it: that write returned before the graph was built.
      const s = await gate.reached;
      const before = await store.stats();
      expect(before.hnsw.points).toBe(1200); // the live graph is still the old one, deleted points and all
      expect(before.deleted).toBe(244);

      // Writes while the compacted graph waits for its swap: new articles, a replacement, deletes of articles in
      // the snapshot, an article added and deleted again, and one deleted and re-added with new text.
      await upsert(store, [article(1000), article(1001), article(1002)]);
      await upsert(store, [article(100, ' replaced')]);
      await remove(store, 'a101');
      await remove(store, 'a1001');
      await remove(store, 'a102');
      await upsert(store, [article(102, ' again')]);
      for (let n = 103; n < 110; n++) await remove(store, `a${n}`);

      // Searches answer meanwhile, from the live graph.
      expect((await nearest(store, article(1000).paragraphs[2]!))[0]).toBe('a1000');
      expect(await nearest(store, article(101).paragraphs[0]!)).not.toContain('a101');

      // Checkpoints run (several were due: checkpointEvery 50) but the log after S is kept for the swap's replay.
      await store.checkpoint();
      expect((await store.stats()).changesSinceCheckpoint).toBe(0);
      const first = firstLoggedSeq(root);
      expect(first).not.toBeNull();
      expect(first!).toBeLessThanOrEqual(s + 1);
      expect(readdirSync(genDir(root)).some((f) => f.startsWith('compacting-'))).toBe(true);

      // A crash now (a copy of the folder mid-compaction) reopens whole: the old checkpoint + the log.
      const crashed = join(root, '..', `${root.split('/').at(-1)}-crash-during`);
      roots.push(crashed);
      cpSync(root, crashed, { recursive: true });

      gate.open();
      await expect.poll(async () => (await store.stats()).hnsw.points).toBeLessThan(1200);
      const after = await store.stats();
      const report = await store.checkIntegrity();
      expect(report.problems).toEqual([]);
      // 300 - 61 - 1 (a101) - 7 (a103..a109) + 2 (a1000, a1002) = 233 articles; a100 and a102 were replaced.
      expect(after.articles).toBe(233);
      expect(after.chunks).toBe(233 * 4);
      // The compacted graph dropped the 244 points deleted before S; only what was deleted after S is marked.
      expect(after.hnsw.points).toBeLessThan(1200 - 200);
      expect(after.deleted).toBeLessThan(100);
      expect(gate.calls()).toBe(1);

      expect((await nearest(store, article(1000).paragraphs[1]!))[0]).toBe('a1000');
      expect((await nearest(store, article(1002).paragraphs[3]!))[0]).toBe('a1002');
      expect((await nearest(store, article(100, ' replaced').paragraphs[0]!))[0]).toBe('a100');
      expect((await nearest(store, article(102, ' again').paragraphs[0]!))[0]).toBe('a102');
      for (const gone of [article(1001), article(101), article(105), article(10)]) {
        const ids = await nearest(store, gone.paragraphs[0]!, 10);
        expect(ids).not.toContain(gone.id);
        expect(ids.filter((id) => id.startsWith('missing'))).toEqual([]);
      }
      expect(readdirSync(genDir(root)).filter((f) => f.startsWith('compacting-') || f.endsWith('.tmp'))).toEqual([]);

      // The compacted graph is the checkpoint (as of S) and the log after S is still there: a crash right after
      // the swap reopens from them.
      const crashedAfter = join(root, '..', `${root.split('/').at(-1)}-crash-after`);
      roots.push(crashedAfter);
      cpSync(root, crashedAfter, { recursive: true });
      for (const [dir, compacted] of [
        [crashed, false],
        [crashedAfter, true],
      ] as const) {
        const reopened = await openStore(dir);
        try {
          expect((await reopened.checkIntegrity()).problems).toEqual([]);
          const st = await reopened.stats();
          expect(st.articles).toBe(233);
          if (compacted) expect(st.hnsw.points).toBe(after.hnsw.points);
          else expect(st.hnsw.points).toBeGreaterThanOrEqual(1200);
          expect(readdirSync(genDir(dir)).filter((f) => f.startsWith('compacting-'))).toEqual([]);
          expect((await nearest(reopened, article(102, ' again').paragraphs[2]!))[0]).toBe('a102');
        } finally {
          await reopened.close();
        }
      }
    } finally {
      gate.open();
      await store.close();
    }
  });

  it('catches the compacted graph up outside the swap when many changes landed meanwhile, writes during the catch-up included', async () => {
    const gate = swapGate();
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const { store } = await storeWithCompactionStarted(gate.hook, logger);
    try {
      await gate.reached;
      // 40 new articles (160 adds) and 20 deletes while the graph waits: more than the swap replays holding writes.
      for (let n = 4000; n < 4040; n += 10)
        await upsert(
          store,
          Array.from({ length: 10 }, (_, i) => article(n + i)),
        );
      for (let n = 200; n < 220; n++) await remove(store, `a${n}`);
      gate.open();
      // Writes queued while the graph catches up between turns of the event loop: they land between its slices
      // or before the swap, and the swapped-in graph must hold them either way.
      const during = [upsert(store, [article(5000)]), remove(store, 'a4001'), upsert(store, [article(4002, ' changed')]), upsert(store, [article(5001)])];
      await Promise.all(during);
      await expect.poll(() => lines.some((l) => l.msg === 'compacted HNSW graph swapped in')).toBe(true);
      const swapped = lines.find((l) => l.msg === 'compacted HNSW graph swapped in')!;
      expect(swapped.replayed as number).toBeGreaterThanOrEqual(160 + 20 * 4);
      expect(swapped.replayedHoldingWrites as number).toBeLessThan((swapped.replayed as number) / 2);

      expect((await store.checkIntegrity()).problems).toEqual([]);
      const st = await store.stats();
      // 239 after the set-up, + 40 - 20, + a5000 and a5001, - a4001 = 260; the compacted graph dropped the old deletes.
      expect(st.articles).toBe(260);
      expect(st.hnsw.points).toBeLessThan(1200);
      for (const id of [4000, 4039, 5000, 5001]) expect((await nearest(store, article(id).paragraphs[1]!))[0]).toBe(`a${id}`);
      expect((await nearest(store, article(4002, ' changed').paragraphs[0]!))[0]).toBe('a4002');
      for (const gone of [article(4001), article(210), article(4002)]) {
        const ids = await nearest(store, gone.paragraphs[3]!, 10);
        if (gone.id !== 'a4002') expect(ids).not.toContain(gone.id);
        expect(ids.filter((id) => id.startsWith('missing'))).toEqual([]);
      }
    } finally {
      gate.open();
      await store.close();
    }
  });

  it('a close while a compaction waits for its swap discards it cleanly', async () => {
    const gate = swapGate();
    const { store, root } = await storeWithCompactionStarted(gate.hook);
    await gate.reached;
    await upsert(store, [article(2000)]);
    const closing = store.close();
    gate.open();
    await closing;
    expect(readdirSync(genDir(root)).filter((f) => f.startsWith('compacting-') || f.endsWith('.tmp'))).toEqual([]);
    const reopened = await openStore(root);
    try {
      expect((await reopened.checkIntegrity()).problems).toEqual([]);
      const st = await reopened.stats();
      // Not swapped in: the graph on disk is the uncompacted one (its deleted points included).
      expect(st.hnsw.points).toBe(1204);
      expect(st.articles).toBe(240);
    } finally {
      await reopened.close();
    }
  });

  it('a close while the compaction worker is still building stops it and leaves nothing behind', async () => {
    const { store, root } = await storeWithCompactionStarted();
    // Right after the write that started it (the worker thread is starting or building): close stops it.
    await store.close();
    expect(readdirSync(genDir(root)).filter((f) => f.startsWith('compacting-') || f.endsWith('.tmp'))).toEqual([]);
    const reopened = await openStore(root);
    try {
      expect((await reopened.checkIntegrity()).problems).toEqual([]);
      expect((await reopened.stats()).articles).toBe(239);
    } finally {
      await reopened.close();
    }
  });

  it('a generation swap (rebuild) while a compaction waits for its swap discards the compaction', async () => {
    const gate = swapGate();
    const { store } = await storeWithCompactionStarted(gate.hook);
    try {
      await gate.reached;
      const oldDir = (await store.stats()).dir;
      const builder = await store.beginGeneration({ source: { kind: 'empty' } });
      await builder.write([
        {
          article: article(3000),
          origin: 'test',
          chunks: article(3000).paragraphs.map((text, i) => ({ paragraph: i, start: 0, end: text.length, text, vector: hashedVector(text, DIMS) })),
        },
      ]);
      await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
      gate.open();
      const st = await store.stats();
      expect(st.dir).not.toBe(oldDir);
      expect(st.articles).toBe(1);
      // The next write's maintenance would start a new compaction only past the threshold: this graph has 4 points.
      await upsert(store, [article(3001)]);
      expect((await store.checkIntegrity()).problems).toEqual([]);
      expect((await nearest(store, article(3001).paragraphs[0]!))[0]).toBe('a3001');
    } finally {
      gate.open();
      await store.close();
    }
  });
});
