import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArticleDatabase, DATABASE_FILE } from '../../src/store/sqlite/database.ts';
import { ReadWorker } from '../../src/store/sqlite/read-worker.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { StoreReader } from '../../src/store/store.ts';
import { CHUNKER, collection, MODEL, upsertOps } from '../helpers/store-fixtures.ts';

/*
 * A server's SQLite store answers the text look-ups of searches from a worker thread with read-only connections
 * of its own (src/store/sqlite/read-worker.ts). It must answer exactly what the main thread's connection answers,
 * see every acknowledged write at once, close its connection to a generation when the generation closes, and
 * leave searches working should the worker die. Real SQLite; vectors written by the test (no model involved).
 */

const open = (root: string, access: 'read' | 'write', readWorker: boolean) =>
  SqliteStore.open({
    root,
    identity: { model: MODEL, chunker: CHUNKER },
    access,
    hnsw: { M: 16, efConstruction: 100, efSearch: 64 },
    checkpointEvery: 1000,
    compactDeletedRatio: 0.5,
    readWorker,
  });

/** Every look-up the read worker answers, for the same terms and ids, from one reader. */
async function lookups(reader: StoreReader, terms: string[], ids: number[], keys: number[]) {
  const lexical = await reader.lexicalCandidates({ terms, limit: 50, titleWeight: 2, textWeight: 1 });
  return {
    lexical: lexical.chunks,
    path: lexical.path,
    articlesOfChunks: [...(await reader.articlesOfChunks(ids))],
    chunkTexts: [...(await reader.chunkTexts(ids))],
    articleMetas: [...(await reader.articleMetas(keys))],
    matchedTerms: [...(await reader.matchedTerms(terms, ids))],
    highlights: [...(await reader.highlights(terms, ids))],
  };
}

/** Files of `dir` this process holds open (Linux /proc). */
const openFilesUnder = (dir: string): string[] =>
  readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return [];
    }
  });

describe('the search read worker of the SQLite store', () => {
  let root: string;
  let store: SqliteStore;
  const items = collection(3, 120);

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'quarry-read-worker-'));
    store = await open(root, 'write', true);
    const builder = await store.beginGeneration({ source: { kind: 'empty' } });
    await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
    await store.write(upsertOps(items));
  });
  afterAll(async () => {
    await store?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("answers every look-up exactly as the main thread's connection does", async () => {
    const viaWorker = store.reader();
    const onMain = await open(root, 'read', false);
    const direct = onMain.reader();
    try {
      const terms = ['industrial', 'cooperation', 'park'];
      const hits = (await direct.lexicalCandidates({ terms, limit: 50, titleWeight: 2, textWeight: 1 })).chunks;
      expect(hits.length).toBeGreaterThan(10);
      const ids = [...hits.map((h) => h.chunkId), 999_999];
      const keys = [...new Set((await direct.articlesOfChunks(ids)).values()), 888_888];
      expect(await lookups(viaWorker, terms, ids, keys)).toEqual(await lookups(direct, terms, ids, keys));
    } finally {
      viaWorker.release();
      direct.release();
      await onMain.close();
    }
  });

  it('sees a write as soon as it is acknowledged, and a delete too', async () => {
    const fresh = { ...items[0]!, article: { ...items[0]!.article, id: 'fresh', title: 'Zanzibar', paragraphs: ['zanzibar clove harvest'] } };
    const find = async () => {
      const reader = store.reader();
      try {
        const hits = (await reader.lexicalCandidates({ terms: ['zanzibar'], limit: 5, titleWeight: 2, textWeight: 1 })).chunks;
        const metas = await reader.articleMetas([...(await reader.articlesOfChunks(hits.map((h) => h.chunkId))).values()]);
        return [...metas.values()].map((m) => m.id);
      } finally {
        reader.release();
      }
    };
    expect(await find()).toEqual([]);
    await store.write(upsertOps([fresh]));
    expect(await find()).toEqual(['fresh']);
    await store.write([{ op: 'delete', id: 'fresh' }]);
    expect(await find()).toEqual([]);
  });

  it.runIf(existsSync('/proc/self/fd'))('closes its connection to a generation once the generation is closed (no leaked files after a swap)', async () => {
    const reader = store.reader();
    const oldDir = reader.generation;
    await reader.lexicalCandidates({ terms: ['trade'], limit: 5, titleWeight: 2, textWeight: 1 });
    expect(openFilesUnder(oldDir).some((f) => f.endsWith(DATABASE_FILE))).toBe(true);
    // A new generation swaps in while the reader is still held: the old one stays open until it is released.
    const builder = await store.beginGeneration({ source: { kind: 'empty' } });
    await builder.write(upsertOps(items.slice(0, 10)).flatMap((op) => (op.op === 'upsert' ? [op.article] : [])));
    await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
    expect((await reader.chunkTexts([1])).size).toBe(1);
    reader.release();
    const next = store.reader();
    try {
      expect(next.generation).not.toBe(oldDir);
      expect((await next.lexicalCandidates({ terms: ['trade'], limit: 50, titleWeight: 2, textWeight: 1 })).chunks.length).toBeGreaterThan(0);
    } finally {
      next.release();
    }
    // The worker handles messages in order: once a later read is answered, the close of the old one is done.
    expect(openFilesUnder(oldDir)).toEqual([]);
    expect(openFilesUnder(next.generation).some((f) => f.endsWith(DATABASE_FILE))).toBe(true);
  });
});

describe('a read worker that is gone', () => {
  it('leaves the reads on the calling thread, with the same answers', async () => {
    const root = mkdtempSync(join(tmpdir(), 'quarry-read-worker-dead-'));
    const store = await open(root, 'write', false);
    try {
      const builder = await store.beginGeneration({ source: { kind: 'empty' } });
      await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
      await store.write(upsertOps(collection(5, 20)));
      const dir = store.reader().generation;
      const db = new ArticleDatabase(join(dir, DATABASE_FILE), { readonly: true });
      const worker = await ReadWorker.start();
      try {
        const before = await worker.via(db, dir, 'chunkTexts', [1, 2, 3]);
        expect(before.size).toBe(3);
        expect(worker.dead).toBe(false);
        await worker.close();
        expect(worker.dead).toBe(true);
        expect(await worker.via(db, dir, 'chunkTexts', [1, 2, 3])).toEqual(before);
      } finally {
        db.close();
      }
    } finally {
      await store.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
