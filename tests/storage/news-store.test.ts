import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Article } from '../../src/corpus/article.ts';
import { MANIFEST_FORMAT, type Manifest, writeManifest } from '../../src/store/manifest.ts';
import { SCHEMA_VERSION, vectorToBlob } from '../../src/store/sqlite/database.ts';
import { publishGeneration, startGeneration } from '../../src/store/sqlite/index-dir.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { mulberry32 } from '../helpers/prng.ts';
import {
  CHUNKER,
  collection,
  dot,
  FILTERS,
  idsOfChunks,
  MODEL,
  matches,
  nudge,
  randomVector,
  SOURCES,
  type TestArticle,
  upsertOps,
} from '../helpers/store-fixtures.ts';

/*
 * The store's filters, duplicate groups, highlights and schema migration, on the real SQLite + FTS5 + hnswlib
 * backend with vectors written for the test (no model: none of this depends on one).
 */

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

async function openStore(root: string, opts: { access?: 'read' | 'write'; exactScanMaxChunks?: number } = {}): Promise<SqliteStore> {
  return SqliteStore.open({
    root,
    identity: { model: MODEL, chunker: CHUNKER },
    access: opts.access ?? 'write',
    hnsw: { M: 16, efConstruction: 200, efSearch: 64 },
    checkpointEvery: 100_000,
    compactDeletedRatio: 0.5,
    exactScanMaxChunks: opts.exactScanMaxChunks,
  });
}

async function emptyStore(opts: { exactScanMaxChunks?: number } = {}): Promise<{ store: SqliteStore; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'quarry-news-store-'));
  roots.push(root);
  const store = await openStore(root, opts);
  const builder = await store.beginGeneration({ source: { kind: 'empty' } });
  await builder.publish({ folderFiles: new Map(), buildSeconds: 0 });
  return { store, root };
}

const upsert = (store: SqliteStore, items: TestArticle[]) => store.write(upsertOps(items));

describe('filters inside retrieval (SQLite backend)', () => {
  it.each(FILTERS)('dense candidates within %s are the exact best among the matching chunks', async (_name, filter) => {
    const { store } = await emptyStore({ exactScanMaxChunks: Number.MAX_SAFE_INTEGER });
    const data = collection();
    await upsert(store, data);
    const reader = store.reader();
    try {
      const query = randomVector(mulberry32(99));
      const scope = await reader.scope(filter);
      const expected = data
        .filter((d) => matches(d.article, filter))
        .flatMap((d) => d.vectors.map((v) => ({ id: d.article.id, s: dot(v, query) })))
        .sort((a, b) => b.s - a.s);
      expect(scope.chunks).toBe(expected.length);
      expect(scope.articles).toBe(data.filter((d) => matches(d.article, filter)).length);
      const got = await reader.vectorCandidates({ vector: query, limit: 20, scope });
      expect(got.path).toBe('exact-scan');
      expect(got.chunks.length).toBe(Math.min(20, expected.length));
      expect(
        await idsOfChunks(
          reader,
          got.chunks.map((c) => c.chunkId),
        ),
      ).toEqual(expected.slice(0, 20).map((e) => e.id));
      got.chunks.forEach((c, i) => expect(c.score).toBeCloseTo(expected[i]!.s, 5));
    } finally {
      reader.release();
      await store.close();
    }
  });

  it('through the filtered graph: only matching chunks, never fewer than exist, near-exact at every selectivity', async () => {
    const { store } = await emptyStore({ exactScanMaxChunks: 0 });
    const data = collection(2);
    await upsert(store, data);
    const reader = store.reader();
    try {
      for (const [name, filter] of FILTERS) {
        const scope = await reader.scope(filter);
        const inScope = new Set(data.filter((d) => matches(d.article, filter)).map((d) => d.article.id));
        for (let q = 0; q < 5; q++) {
          const query = randomVector(mulberry32(1000 + q));
          const got = await reader.vectorCandidates({ vector: query, limit: 20, scope });
          expect(got.chunks.length, name).toBe(Math.min(20, scope.chunks));
          const ids = await idsOfChunks(
            reader,
            got.chunks.map((c) => c.chunkId),
          );
          expect(
            ids.every((id) => inScope.has(id)),
            name,
          ).toBe(true);
          const best = data
            .filter((d) => inScope.has(d.article.id))
            .flatMap((d) => d.vectors.map((v) => dot(v, query)))
            .sort((a, b) => b - a)
            .slice(0, 20);
          if (best.length === 0) continue;
          const kth = best[best.length - 1]!;
          const hits = got.chunks.filter((c) => c.score >= kth - 1e-6).length;
          expect(hits / best.length, name).toBeGreaterThanOrEqual(0.9);
        }
        if (scope.chunks > 0)
          expect(['hnsw-filtered', 'exact-scan']).toContain((await reader.vectorCandidates({ vector: randomVector(mulberry32(5)), limit: 20, scope })).path);
      }
      // A filter broad enough for the graph takes it.
      const broad = await reader.scope({ from: '2020-01-01' });
      expect((await reader.vectorCandidates({ vector: randomVector(mulberry32(6)), limit: 20, scope: broad })).path).toBe('hnsw-filtered');
    } finally {
      reader.release();
      await store.close();
    }
  });

  it('lexical candidates within a filter are the BM25 ranking of the matching chunks, in order', async () => {
    const { store } = await emptyStore();
    const data = collection(3);
    await upsert(store, data);
    const reader = store.reader();
    try {
      const q = { terms: ['industrial', 'harvest'], titleWeight: 0.75, textWeight: 1 };
      const all = await reader.lexicalCandidates({ ...q, limit: 10_000 });
      expect(all.path).toBe('fts5');
      for (const [name, filter] of FILTERS) {
        const scope = await reader.scope(filter);
        const got = await reader.lexicalCandidates({ ...q, limit: 15, scope });
        expect(got.path).toBe('fts5-filtered');
        const articleOf = await reader.articlesOfChunks(all.chunks.map((c) => c.chunkId));
        const expected = all.chunks.filter((c) => scope.has(articleOf.get(c.chunkId)!)).slice(0, 15);
        expect(
          got.chunks.map((c) => c.chunkId),
          name,
        ).toEqual(expected.map((c) => c.chunkId));
      }
    } finally {
      reader.release();
      await store.close();
    }
  });

  it('keeps its filter index up to date through replaces and deletes, and after a reopen', async () => {
    const { store, root } = await emptyStore();
    const data = collection(4).slice(0, 20);
    await upsert(store, data);
    const rand = mulberry32(7);
    const moved = { ...data[0]!, article: { ...data[0]!.article, source: 'Interfax', tags: ['moved'], date: '2019-06-01' } };
    await upsert(store, [moved]);
    await store.write([{ op: 'delete', id: 'a1' }]);
    await upsert(store, [{ article: { ...data[2]!.article, id: 'new', source: 'interfax' }, vectors: data[2]!.vectors.map((v) => nudge(v, rand)) }]);
    const check = async (s: SqliteStore) => {
      const reader = s.reader();
      try {
        const scope = await reader.scope({ sources: ['INTERFAX'] });
        expect(scope.articles).toBe(2);
        expect((await reader.scope({ tags: ['moved'], to: '2019-12-31' })).articles).toBe(1);
        expect((await reader.scope({ sources: [SOURCES[1]!] })).articles).toBe(data.filter((d) => d.article.source === SOURCES[1]).length - 1);
        expect(await reader.newestDate()).toBe(
          data
            .slice(1)
            .filter((d) => d.article.id !== 'a1')
            .map((d) => d.article.date)
            .filter((d): d is string => d !== null)
            .sort()
            .at(-1),
        );
      } finally {
        reader.release();
      }
    };
    await check(store);
    await store.close();
    const again = await openStore(root);
    await check(again);
    await again.close();
  });
});

describe('duplicate groups (SQLite backend)', () => {
  // Long enough (>= 40 words) for the text alone to identify a story: titles are then ignored.
  const paragraphs = (tag: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${tag} paragraph ${i} with words of its own, as long as a short paragraph of a news story is.`);

  it('groups exact and near copies at ingest, transitively; keeps the rest grouped through deletes; regroups a replaced article', async () => {
    const { store, root } = await emptyStore();
    const rand = mulberry32(11);
    const base = Array.from({ length: 5 }, () => randomVector(rand));
    const other = Array.from({ length: 5 }, () => randomVector(rand));
    const article = (id: string, title: string, ps: string[], source = 'Wire'): Article => ({
      id,
      title,
      date: '2024-01-01',
      source,
      url: null,
      tags: [],
      paragraphs: ps,
    });
    await upsert(store, [
      { article: article('orig', 'Original headline', paragraphs('Story', 5)), vectors: base },
      // The same text (case, punctuation and spacing aside) under another headline, its vectors unrelated: exact.
      {
        article: article(
          'exact',
          'A different headline',
          paragraphs('STORY', 5).map((p) => p.replace('.', ' !')),
        ),
        vectors: other,
      },
      // Different words, the same meaning paragraph by paragraph: near.
      { article: article('near', 'Third headline', paragraphs('Retold', 5)), vectors: base.map((v) => nudge(v, rand)) },
      // Shares one paragraph of five: not the same story.
      {
        article: article('quote', 'Quotes one paragraph', paragraphs('Quote', 5)),
        vectors: [base[0]!, ...Array.from({ length: 4 }, () => randomVector(rand))],
      },
      { article: article('alone', 'Unrelated', paragraphs('Alone', 3)), vectors: Array.from({ length: 3 }, () => randomVector(rand)) },
    ]);
    const groupsOf = async (s: SqliteStore, ids: string[]) => {
      const reader = s.reader();
      try {
        const keys = await Promise.all(ids.map((id) => reader.articleKey(id)));
        const groups = await reader.duplicateGroups(keys.filter((k): k is number => k !== null));
        return ids.map((_, i) => (keys[i] === null ? undefined : groups.get(keys[i]!)));
      } finally {
        reader.release();
      }
    };
    const [g1, g2, g3, g4, g5] = await groupsOf(store, ['orig', 'exact', 'near', 'quote', 'alone']);
    expect(g1).toBeDefined();
    expect([g2, g3]).toEqual([g1, g1]);
    expect(g4).toBeUndefined();
    expect(g5).toBeUndefined();

    // A second group, then an article that belongs to both (the text of one, the paragraphs' meaning of the
    // other): the two groups become one (groups are transitive).
    const far = Array.from({ length: 5 }, () => randomVector(rand));
    await upsert(store, [{ article: article('far', 'Far', paragraphs('Far', 5)), vectors: far }]);
    expect((await groupsOf(store, ['far']))[0]).toBeUndefined();
    await upsert(store, [
      { article: article('far2', 'Far again', paragraphs('Far2', 5)), vectors: [...far.slice(0, 4).map((v) => nudge(v, rand)), randomVector(rand)] },
    ]);
    const [gf, gf2] = await groupsOf(store, ['far', 'far2']);
    expect(gf).toBeDefined();
    expect(gf2).toBe(gf);
    expect(gf).not.toBe(g1);
    await upsert(store, [{ article: article('bridge', 'Bridge', paragraphs('far', 5)), vectors: base.map((v) => nudge(v, rand)) }]);
    const all = await groupsOf(store, ['orig', 'exact', 'near', 'far', 'far2', 'bridge']);
    expect(all[0]).toBeDefined();
    expect(new Set(all).size).toBe(1);

    // A deleted member leaves the others grouped; the group's listing drops it.
    await store.write([{ op: 'delete', id: 'orig' }]);
    const afterDelete = await groupsOf(store, ['exact', 'near', 'bridge', 'far']);
    expect(new Set(afterDelete).size).toBe(1);
    expect(afterDelete[0]).toBeDefined();
    const reader = store.reader();
    try {
      const members = (await reader.groupMembers([afterDelete[0]!])).get(afterDelete[0]!)!;
      expect(members.map((m) => m.id)).not.toContain('orig');
      expect(members.map((m) => m.id)).toContain('exact');
    } finally {
      reader.release();
    }

    // A replaced article's group is recomputed: rewritten as another story it leaves the group.
    await upsert(store, [
      { article: article('near', 'Now about something else', paragraphs('Else', 4)), vectors: Array.from({ length: 4 }, () => randomVector(rand)) },
    ]);
    expect((await groupsOf(store, ['near']))[0]).toBeUndefined();
    // Groups are stored: the same after a reopen.
    const ids = ['exact', 'bridge', 'far', 'far2', 'quote', 'near'];
    const before = await groupsOf(store, ids);
    expect(before.filter((g) => g !== undefined).length).toBe(4);
    await store.close();
    const again = await openStore(root);
    expect(await groupsOf(again, ids)).toEqual(before);
    // The last copy of a pair is alone again once the other goes. (Three paragraphs: a text under 40 words
    // would need the same title as well.)
    await upsert(again, [{ article: article('pair1', 'P', paragraphs('Pair', 3)), vectors: Array.from({ length: 3 }, () => randomVector(rand)) }]);
    await upsert(again, [{ article: article('pair2', 'Q', paragraphs('pair', 3)), vectors: Array.from({ length: 3 }, () => randomVector(rand)) }]);
    expect((await groupsOf(again, ['pair1', 'pair2']))[0]).toBeDefined();
    await again.write([{ op: 'delete', id: 'pair2' }]);
    expect((await groupsOf(again, ['pair1']))[0]).toBeUndefined();
    await again.close();
  });
});

describe('highlights (SQLite backend)', () => {
  it('are the ranges FTS5 matched, stemmed, in UTF-16 offsets, even next to emoji and marker-like characters', async () => {
    const { store } = await emptyStore();
    const text = '🚀🚀 Belarus is cooperating on the industrial park \u0002 with China; cooperation grows.';
    await upsert(store, [
      { article: { id: 'h', title: 'Cooperation', date: null, source: null, url: null, paragraphs: [text] }, vectors: [randomVector(mulberry32(3))] },
      {
        article: { id: 'n', title: 'Nothing', date: null, source: null, url: null, paragraphs: ['Nothing to see here.'] },
        vectors: [randomVector(mulberry32(4))],
      },
    ]);
    const reader = store.reader();
    try {
      const hits = await reader.lexicalCandidates({ terms: ['cooperation', 'park', 'nothing'], limit: 10, titleWeight: 1, textWeight: 1 });
      const ids = hits.chunks.map((c) => c.chunkId);
      const h = await reader.highlights(['cooperation', 'park'], ids);
      const texts = await reader.chunkTexts(ids);
      const words = [...h.entries()].flatMap(([id, ranges]) => ranges.map((r) => texts.get(id)!.text.slice(r.start, r.end)));
      expect(words).toEqual(['cooperating', 'park', 'cooperation']);
      expect(await reader.highlights([], ids)).toEqual(new Map(ids.map((id) => [id, []])));
    } finally {
      reader.release();
      await store.close();
    }
  });
});

const OLD_SCHEMA = `
CREATE TABLE articles (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, title TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
  paragraphs TEXT NOT NULL, origin TEXT NOT NULL, content_hash TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE chunks (rowid INTEGER PRIMARY KEY AUTOINCREMENT, article_rowid INTEGER NOT NULL REFERENCES articles(rowid) ON DELETE CASCADE,
  paragraph INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX chunks_by_article ON chunks(article_rowid);
CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize = 'porter unicode61 remove_diacritics 2');
CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL CHECK (op IN ('add', 'delete')), chunk_rowid INTEGER NOT NULL, article_id TEXT NOT NULL);
CREATE TABLE folder_files (id TEXT PRIMARY KEY, content_hash TEXT NOT NULL) WITHOUT ROWID;
`;

const FILLER =
  'They spoke of roads, railways, schools and farms, of the weather and the harvest, and of the long friendship of their two countries, which both said would only grow in the years to come.';

/** An index as the version before tags and duplicate groups wrote it (schema 0), without an HNSW checkpoint. */
function oldIndex(): string {
  const root = mkdtempSync(join(tmpdir(), 'quarry-news-old-'));
  roots.push(root);
  const dir = startGeneration(root);
  const db = new Database(join(dir, 'quarry.db'));
  db.exec(OLD_SCHEMA);
  const rand = mulberry32(21);
  const rows: Array<[string, string, string | null, string | null, string[]]> = [
    ['one', 'First telling', '2023-12-04T16:49:00+08:00', 'Xinhua', [`The presidents met in Beijing. ${FILLER}`, 'They signed trade deals.']],
    ['two', 'Second telling', '2023-12-05', 'XINHUA', [`The presidents met in Beijing! ${FILLER}`, 'They signed  trade deals']],
    ['three', 'Another story', null, 'Reuters', ['Harvest prices rose.']],
  ];
  let seq = 0;
  for (const [id, title, date, source, paragraphs] of rows) {
    const a = db
      .prepare(
        "INSERT INTO articles (id, title, date, source, url, paragraphs, origin, content_hash, updated_at) VALUES (?, ?, ?, ?, NULL, ?, 'api', 'h', '2024-01-01')",
      )
      .run(id, title, date, source, JSON.stringify(paragraphs));
    paragraphs.forEach((p, i) => {
      const c = db
        .prepare('INSERT INTO chunks (article_rowid, paragraph, start, end, text, vector) VALUES (?, ?, 0, ?, ?, ?)')
        .run(a.lastInsertRowid, i, p.length, p, vectorToBlob(randomVector(rand)));
      db.prepare('INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)').run(c.lastInsertRowid, title, p);
      db.prepare("INSERT INTO changes (op, chunk_rowid, article_id) VALUES ('add', ?, ?)").run(c.lastInsertRowid, id);
      seq++;
    });
  }
  db.close();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    model: MODEL,
    chunker: CHUNKER,
    hnsw: { space: 'cosine', M: 16, efConstruction: 200, efSearch: 64 },
    counts: { articles: rows.length, chunks: seq },
    built: '2024-01-01T00:00:00.000Z',
    buildSeconds: 1,
    source: { kind: 'empty' },
  };
  writeManifest(dir, manifest);
  publishGeneration(root, dir);
  return root;
}

describe('migrating an index made before tags and duplicate groups', () => {
  it.each(['write', 'read'] as const)('happens in place on open (%s access): metadata backfilled, copies grouped, filters work', async (access) => {
    const root = oldIndex();
    const store = await openStore(root, { access });
    const reader = store.reader();
    try {
      const keys = await Promise.all(['one', 'two', 'three'].map((id) => reader.articleKey(id)));
      const metas = await reader.articleMetas(keys as number[]);
      expect(metas.get(keys[0]!)!.tags).toEqual([]);
      expect((await reader.scope({ sources: ['xinhua'], from: '2023-12-04', to: '2023-12-04' })).articles).toBe(1);
      expect((await reader.scope({ sources: ['xinhua'] })).chunks).toBe(4);
      expect(await reader.newestDate()).toBe('2023-12-05');
      const groups = await reader.duplicateGroups(keys as number[]);
      if (access === 'write') {
        // The exact copy (same text but for case and punctuation) is grouped by the writer's first open.
        expect(groups.get(keys[0]!)).toBeDefined();
        expect(groups.get(keys[1]!)).toBe(groups.get(keys[0]!));
        expect(groups.has(keys[2]!)).toBe(false);
      }
      const lexical = await reader.lexicalCandidates({
        terms: ['presidents'],
        limit: 10,
        titleWeight: 1,
        textWeight: 1,
        scope: await reader.scope({ to: '2023-12-04' }),
      });
      expect(lexical.chunks.length).toBe(1);
    } finally {
      reader.release();
      await store.close();
    }
    const db = new Database(join(root, (await import('node:fs')).readFileSync(join(root, 'CURRENT'), 'utf8').trim(), 'quarry.db'), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const cols = (db.pragma('table_info(articles)') as Array<{ name: string }>).map((c) => c.name);
    expect(cols).toEqual(expect.arrayContaining(['tags', 'date_key', 'source_key', 'chunk_count', 'text_hash', 'dup_group']));
    expect(db.prepare("SELECT date_key, source_key, chunk_count FROM articles WHERE id = 'one'").get()).toEqual({
      date_key: '2023-12-04',
      source_key: 'xinhua',
      chunk_count: 2,
    });
    db.close();
  });
});
