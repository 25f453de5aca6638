import Database from 'better-sqlite3';
import { type Article, articleContentHash, dateKey, metadataKey } from '../../corpus/article.ts';
import { type DuplicateText, duplicateTextHash } from '../../corpus/duplicates.ts';
import { QuarryError } from '../../errors.ts';
import { fsyncFile } from '../../util/atomic-file.ts';
import type { ArticleMeta, ArticleRecord, ArticleSummary, ChunkText, ChunkWithVector, DuplicateMember, RankedChunk, TextRange } from '../store.ts';
import { ftsMatchExpression } from './fts-query.ts';

export const DATABASE_FILE = 'quarry.db';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS articles (
  rowid INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  date TEXT,
  source TEXT,
  url TEXT,
  paragraphs TEXT NOT NULL,          -- JSON array of strings; the article text is them joined by a blank line
  origin TEXT NOT NULL,              -- where it came from: "folder:<file>", "api", "cli"
  content_hash TEXT NOT NULL,        -- lets a seeds sync skip unchanged articles without re-embedding
  updated_at TEXT NOT NULL
);
-- AUTOINCREMENT: a chunk rowid is the HNSW label, so it must never be reused after a delete.
CREATE TABLE IF NOT EXISTS chunks (
  rowid INTEGER PRIMARY KEY AUTOINCREMENT,
  article_rowid INTEGER NOT NULL REFERENCES articles(rowid) ON DELETE CASCADE,
  paragraph INTEGER NOT NULL,
  start INTEGER NOT NULL,
  end INTEGER NOT NULL,
  text TEXT NOT NULL,
  vector BLOB NOT NULL               -- float32 little-endian, L2-normalised
);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks(article_rowid);
-- BM25 over the same chunks, written in the same transaction (rowid = chunk rowid). The article title is
-- a column of its own so a query can weight it.
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(title, text, tokenize = 'porter unicode61 remove_diacritics 2');
-- Every chunk added or removed, in order: the HNSW checkpoint records the last seq it holds, and newer
-- changes are replayed into it on open.
CREATE TABLE IF NOT EXISTS changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  op TEXT NOT NULL CHECK (op IN ('add', 'delete')),
  chunk_rowid INTEGER NOT NULL,
  article_id TEXT NOT NULL
);
-- The version (content hash) of each seeds-folder article last applied to this index. A start re-applies a
-- file only when it differs from this, so an article deleted or replaced through the API stays so.
CREATE TABLE IF NOT EXISTS folder_files (id TEXT PRIMARY KEY, content_hash TEXT NOT NULL) WITHOUT ROWID;
`;

/**
 * Schema changes since the first version, applied in place in order (PRAGMA user_version counts the ones
 * applied): an addition never forces a re-embedding. Each is one transaction with its backfill.
 */
const MIGRATIONS: Array<(db: Database.Database) => void> = [
  // 1: news metadata and duplicate groups.
  (db) => {
    db.exec(`
      ALTER TABLE articles ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';  -- JSON array of strings, as given
      ALTER TABLE articles ADD COLUMN date_key TEXT;                    -- YYYY-MM-DD: the date as written (corpus/article.ts dateKey)
      ALTER TABLE articles ADD COLUMN source_key TEXT;                  -- metadataKey(source): filters ignore case
      ALTER TABLE articles ADD COLUMN chunk_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE articles ADD COLUMN text_hash TEXT;                   -- corpus/duplicates.ts duplicateTextHash
      ALTER TABLE articles ADD COLUMN dup_group INTEGER;                -- duplicate group id; NULL when alone
      ALTER TABLE articles ADD COLUMN dup_checked INTEGER NOT NULL DEFAULT 0; -- 1 once its duplicates were looked for
      CREATE INDEX articles_by_date ON articles(date_key);
      CREATE INDEX articles_by_text_hash ON articles(text_hash);
      CREATE INDEX articles_by_dup_group ON articles(dup_group) WHERE dup_group IS NOT NULL;
      UPDATE articles SET date_key = substr(date, 1, 10), chunk_count = (SELECT count(*) FROM chunks c WHERE c.article_rowid = articles.rowid);
    `);
    const rows = db
      .prepare<[], { rowid: number; title: string; source: string | null; paragraphs: string }>('SELECT rowid, title, source, paragraphs FROM articles')
      .all();
    const set = db.prepare('UPDATE articles SET source_key = ?, text_hash = ? WHERE rowid = ?');
    for (const r of rows) {
      set.run(
        r.source === null ? null : metadataKey(r.source),
        duplicateTextHash({ title: r.title, paragraphs: JSON.parse(r.paragraphs) as string[] }),
        r.rowid,
      );
    }
  },
];
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Creates the tables of a new database and brings an older one up to {@link SCHEMA_VERSION}. */
function migrate(db: Database.Database): void {
  db.exec(SCHEMA);
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new QuarryError('index_incompatible', `the index database is from a newer Quarry (schema ${version}, this one knows ${SCHEMA_VERSION})`);
  }
  for (let v = version; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      MIGRATIONS[v]!(db);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}

/**
 * A read-only open of a database made by an older version: the schema is brought up to date first, through a
 * short-lived writable connection (SQLite's locks keep a running writer safe; the change is one transaction).
 */
function upgradeForReading(path: string): void {
  const probe = new Database(path, { readonly: true });
  let version: number;
  try {
    version = probe.pragma('user_version', { simple: true }) as number;
  } finally {
    probe.close();
  }
  if (version >= SCHEMA_VERSION) return;
  let db: Database.Database | null = null;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
  } catch (e) {
    throw new QuarryError(
      'index_incompatible',
      `the index database ${path} needs a schema update this read-only open could not make (${(e as Error).message}); start the server on it once`,
      { cause: e },
    );
  } finally {
    db?.close();
  }
}

/** One article's fields as the in-memory filter index (metadata-index.ts) holds them. */
export interface ArticleFacts {
  rowid: number;
  dateKey: string | null;
  sourceKey: string | null;
  tags: string[];
  chunkCount: number;
  dupGroup: number | null;
}

export interface Change {
  seq: number;
  op: 'add' | 'delete';
  chunkRowid: number;
  articleId: string;
}

export interface WriteResult {
  articleId: string;
  /** insert: a new article; replace: an existing id rewritten; delete: removed. */
  kind: 'insert' | 'replace' | 'delete';
  replaced: boolean;
  /** The article's row after the write (null after a delete). */
  articleRowid: number | null;
  /** The row removed by a replace or a delete. */
  removedArticleRowid: number | null;
  added: number[];
  removed: number[];
  lastSeq: number;
}

/**
 * highlight() markers: control characters and Unicode noncharacters, which text almost never holds. A text
 * that holds the first two is highlighted again with two it lacks, so a marker is never mistaken for text.
 */
const MARKS = ['\u0002', '\u0003', '\u0004', '\u0005', '\uFDD0', '\uFDD1', '\uFDD2', '\uFDD3'];

/** Offsets of the marked ranges in highlight()'s output, relative to the text without the markers. */
export function parseHighlight(marked: string, open: string, close: string): TextRange[] {
  const out: TextRange[] = [];
  let plain = 0;
  let start = -1;
  for (let i = 0; i < marked.length; i++) {
    const c = marked[i];
    if (c === open) start = plain;
    else if (c === close) {
      if (start >= 0 && plain > start) {
        const last = out[out.length - 1];
        // FTS5 marks adjacent phrase tokens separately; ranges that touch are kept apart (one per word).
        if (last && last.end > start) last.end = Math.max(last.end, plain);
        else out.push({ start, end: plain });
      }
      start = -1;
    } else plain++;
  }
  return out;
}

export const vectorToBlob = (v: Float32Array): Buffer => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
/** Copies: a Buffer from SQLite need not be 4-byte aligned. */
export const blobToVector = (b: Buffer): Float32Array => {
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
};

/**
 * The source of truth: articles, chunks with their vectors, the FTS5 index and the change log, all written
 * in one transaction per article write. synchronous=FULL: a write acknowledged to a client is on disk.
 */
export class ArticleDatabase {
  private readonly db: Database.Database;
  private readonly stmts;

  /**
   * `bulk`: for building a new generation nobody reads yet — no fsync per transaction; `finishBulk`
   * makes it durable before the generation is published.
   */
  constructor(
    readonly path: string,
    opts: { readonly?: boolean; bulk?: boolean } = {},
  ) {
    if (opts.readonly) upgradeForReading(path);
    this.db = new Database(path, { readonly: opts.readonly ?? false });
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(opts.bulk ? 'synchronous = OFF' : 'synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db);
    }
    this.db.pragma('busy_timeout = 5000');
    // The writer reads through a memory map instead of a read() per page: the candidate lookups of a search
    // touch a few hundred scattered pages (1.7 -> 1.1 ms per search at 100k chunks). Address space only; the
    // OS page cache holds the pages either way. A read-only connection does not: when it sees another
    // connection's commit, SQLite drops its page cache and unmaps its whole map, and the next reads fault the
    // pages back in — a BM25 look-up after each write took 2.7 ms mapped against 1.0 ms with read() and 0.7 ms
    // with no write between (bbc-news, docs/history/overload.md). The writer's own commits keep its map.
    this.db.pragma(opts.readonly ? 'mmap_size = 0' : 'mmap_size = 1073741824');
    const db = this.db;
    // Registered before the statements that call it are prepared.
    let inScope: (chunkRowid: number) => boolean = () => true;
    db.function('quarry_in_scope', { deterministic: false, directOnly: true }, (rowid) => (inScope(Number(rowid)) ? 1 : 0));
    this.withScope = <T>(pred: (chunkRowid: number) => boolean, fn: () => T): T => {
      inScope = pred;
      try {
        return fn();
      } finally {
        inScope = () => true;
      }
    };
    this.stmts = {
      articleRowid: db.prepare<[string], { rowid: number; content_hash: string }>('SELECT rowid, content_hash FROM articles WHERE id = ?'),
      insertArticle: db.prepare(
        `INSERT INTO articles (id, title, date, source, url, tags, paragraphs, origin, content_hash, updated_at, date_key, source_key, chunk_count, text_hash)
         VALUES (@id, @title, @date, @source, @url, @tags, @paragraphs, @origin, @contentHash, @updatedAt, @dateKey, @sourceKey, @chunkCount, @textHash)`,
      ),
      deleteArticle: db.prepare('DELETE FROM articles WHERE rowid = ?'),
      chunkRowidsOf: db.prepare<[number], { rowid: number }>('SELECT rowid FROM chunks WHERE article_rowid = ? ORDER BY rowid'),
      insertChunk: db.prepare('INSERT INTO chunks (article_rowid, paragraph, start, end, text, vector) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteChunksOf: db.prepare('DELETE FROM chunks WHERE article_rowid = ?'),
      insertFts: db.prepare('INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)'),
      deleteFts: db.prepare('DELETE FROM chunks_fts WHERE rowid = ?'),
      logChange: db.prepare('INSERT INTO changes (op, chunk_rowid, article_id) VALUES (?, ?, ?)'),
      lastSeq: db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM changes'),
      seqBase: db.prepare<[], { seq: number | null }>("SELECT seq FROM sqlite_sequence WHERE name = 'changes'"),
      changesAfter: db.prepare<[number], { seq: number; op: 'add' | 'delete'; chunk_rowid: number; article_id: string }>(
        'SELECT seq, op, chunk_rowid, article_id FROM changes WHERE seq > ? ORDER BY seq',
      ),
      pruneChanges: db.prepare('DELETE FROM changes WHERE seq <= ?'),
      getArticle: db.prepare<
        [string],
        {
          id: string;
          title: string;
          date: string | null;
          source: string | null;
          url: string | null;
          tags: string;
          paragraphs: string;
          origin: string;
          content_hash: string;
          updated_at: string;
        }
      >('SELECT id, title, date, source, url, tags, paragraphs, origin, content_hash, updated_at FROM articles WHERE id = ?'),
      counts: db.prepare<[], { articles: number; chunks: number }>(
        'SELECT (SELECT count(*) FROM articles) AS articles, (SELECT count(*) FROM chunks) AS chunks',
      ),
      vector: db.prepare<[number], { vector: Buffer }>('SELECT vector FROM chunks WHERE rowid = ?'),
      vectorPage: db.prepare<[number, number], { rowid: number; vector: Buffer }>('SELECT rowid, vector FROM chunks WHERE rowid > ? ORDER BY rowid LIMIT ?'),
      // On every search, prepared once; json_each keeps each one statement whatever the number of ids.
      // Grouping needs only each candidate's article (ids, no text); text and article fields are read for
      // the few chunks and articles that are returned (1.7 -> 0.4 ms for ~200 candidates at 100k chunks).
      articleOfChunks: db.prepare<[string], { rowid: number; article_rowid: number }>(
        'SELECT c.rowid, c.article_rowid FROM json_each(?) j JOIN chunks c ON c.rowid = j.value',
      ),
      chunkTexts: db.prepare<[string], { rowid: number; paragraph: number; start: number; end: number; text: string }>(
        'SELECT c.rowid, c.paragraph, c.start, c.end, c.text FROM json_each(?) j JOIN chunks c ON c.rowid = j.value',
      ),
      articleMetas: db.prepare<
        [string],
        { rowid: number; id: string; title: string; date: string | null; source: string | null; url: string | null; tags: string }
      >('SELECT a.rowid, a.id, a.title, a.date, a.source, a.url, a.tags FROM json_each(?) j JOIN articles a ON a.rowid = j.value'),
      allArticleIds: db.prepare<[], { id: string; origin: string; content_hash: string }>('SELECT id, origin, content_hash FROM articles ORDER BY rowid'),
      // bm25() is lower-is-better; negated so that every retriever's score is higher-is-better.
      bm25: db.prepare<[number, number, string, number], { rowid: number; score: number }>(
        'SELECT rowid, -bm25(chunks_fts, ?, ?) AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?',
      ),
      // `+rowid`: FTS5 walks the MATCH once and the ids are checked against each row. With a bare `rowid IN`,
      // SQLite drives the query by the ids and FTS5 sets the whole MATCH expression up again for every one of
      // them: 8.7 -> 2.3 ms for 30 chunks and a bbc-news title at 100k chunks, 21 -> 2.8 ms for 100 chunks and a
      // SciFact query.
      matching: db.prepare<[string, string], { rowid: number }>(
        'SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND +rowid IN (SELECT value FROM json_each(?))',
      ),
      // The filter is a JavaScript predicate over the chunk rowid (the scope held in memory by the generation,
      // metadata-index.ts): one call per chunk FTS5 matched, instead of two B-tree look-ups (chunk, article)
      // to reach the article's fields through SQL.
      bm25InScope: db.prepare<[number, number, string, number], { rowid: number; score: number }>(
        'SELECT rowid, -bm25(chunks_fts, ?, ?) AS score FROM chunks_fts WHERE chunks_fts MATCH ? AND quarry_in_scope(rowid) ORDER BY score DESC, rowid LIMIT ?',
      ),
      highlight: db.prepare<[string, string, string, string], { rowid: number; text: string; h: string }>(
        'SELECT rowid, text, highlight(chunks_fts, 1, ?, ?) AS h FROM chunks_fts WHERE chunks_fts MATCH ? AND +rowid IN (SELECT value FROM json_each(?))',
      ),
      vectorsOfArticle: db.prepare<[number], { rowid: number; vector: Buffer }>('SELECT rowid, vector FROM chunks WHERE article_rowid = ? ORDER BY rowid'),
      vectorsOfArticles: db.prepare<[string], { rowid: number; vector: Buffer }>(
        'SELECT c.rowid, c.vector FROM json_each(?) j JOIN chunks c ON c.article_rowid = j.value',
      ),
      duplicateText: db.prepare<[number], { title: string; paragraphs: string }>('SELECT title, paragraphs FROM articles WHERE rowid = ?'),
      sameText: db.prepare<[string, number], { rowid: number }>('SELECT rowid FROM articles WHERE text_hash = ? AND rowid != ?'),
      textHashOf: db.prepare<[number], { text_hash: string | null; dup_group: number | null }>('SELECT text_hash, dup_group FROM articles WHERE rowid = ?'),
      groupOf: db.prepare<[number], { dup_group: number | null }>('SELECT dup_group FROM articles WHERE rowid = ?'),
      maxGroup: db.prepare<[], { g: number | null }>('SELECT max(dup_group) AS g FROM articles'),
      setGroup: db.prepare<[number | null, number]>('UPDATE articles SET dup_group = ? WHERE rowid = ?'),
      moveGroup: db.prepare<[number, number]>('UPDATE articles SET dup_group = ? WHERE dup_group = ?'),
      groupRowids: db.prepare<[number], { rowid: number }>('SELECT rowid FROM articles WHERE dup_group = ?'),
      markChecked: db.prepare<[number]>('UPDATE articles SET dup_checked = 1 WHERE rowid = ?'),
      unchecked: db.prepare<[], { rowid: number }>('SELECT rowid FROM articles WHERE dup_checked = 0 ORDER BY rowid'),
      groupMembers: db.prepare<[string], { rowid: number; id: string; title: string; source: string | null; date: string | null; dup_group: number }>(
        `SELECT rowid, id, title, source, date, dup_group FROM articles WHERE dup_group IN (SELECT value FROM json_each(?))
         ORDER BY date_key IS NULL, date_key, id`,
      ),
      facts: db.prepare<[], { rowid: number; date_key: string | null; source_key: string | null; tags: string; chunk_count: number; dup_group: number | null }>(
        'SELECT rowid, date_key, source_key, tags, chunk_count, dup_group FROM articles',
      ),
      factsOf: db.prepare<
        [number],
        { rowid: number; date_key: string | null; source_key: string | null; tags: string; chunk_count: number; dup_group: number | null }
      >('SELECT rowid, date_key, source_key, tags, chunk_count, dup_group FROM articles WHERE rowid = ?'),
      chunkArticles: db.prepare<[], { rowid: number; article_rowid: number }>('SELECT rowid, article_rowid FROM chunks'),
      newestDate: db.prepare<[], { d: string | null }>('SELECT max(date_key) AS d FROM articles'),
    };
  }

  /** Runs `fn` (synchronously) with quarry_in_scope() answering `pred`. */
  private readonly withScope: <T>(pred: (chunkRowid: number) => boolean, fn: () => T) => T;

  /** Runs `fn` in one IMMEDIATE transaction: every statement in it commits together or not at all. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  get open(): boolean {
    return this.db.open;
  }

  /** BM25 over chunk title and text (FTS5, porter stemming), best first; only chunks `inScope` accepts when given. */
  lexicalSearch(
    terms: readonly string[],
    opts: { limit: number; titleWeight: number; textWeight: number; inScope?: (chunkRowid: number) => boolean },
  ): RankedChunk[] {
    const match = ftsMatchExpression(terms);
    if (match === null || opts.limit <= 0) return [];
    const rows = opts.inScope
      ? this.withScope(opts.inScope, () => this.stmts.bm25InScope.all(opts.titleWeight, opts.textWeight, match, opts.limit))
      : this.stmts.bm25.all(opts.titleWeight, opts.textWeight, match, opts.limit);
    return rows.map((r, i) => ({ chunkId: r.rowid, rank: i + 1, score: r.score }));
  }

  /**
   * Where FTS5 matched any of `terms` in each chunk's text: its highlight() with two marker characters that
   * occur in none of the texts, parsed back into offsets of the JavaScript string (UTF-16 code units).
   */
  highlights(terms: readonly string[], rowids: number[]): Map<number, TextRange[]> {
    const out = new Map<number, TextRange[]>(rowids.map((r) => [r, []]));
    const match = ftsMatchExpression(terms);
    if (match === null || rowids.length === 0) return out;
    for (const r of this.stmts.highlight.all(MARKS[0]!, MARKS[1]!, match, JSON.stringify(rowids))) {
      if (!r.text.includes(MARKS[0]!) && !r.text.includes(MARKS[1]!)) {
        out.set(r.rowid, parseHighlight(r.h, MARKS[0]!, MARKS[1]!));
        continue;
      }
      // The text holds a marker character itself: again, for this chunk, with two characters it lacks.
      const [open, close] = MARKS.filter((m) => !r.text.includes(m));
      if (open === undefined || close === undefined) continue;
      const again = this.stmts.highlight.get(open, close, match, JSON.stringify([r.rowid]));
      if (again) out.set(r.rowid, parseHighlight(again.h, open, close));
    }
    return out;
  }

  /** Which of `terms` each chunk matches (porter-stemmed as FTS5 matches them). */
  matchedTerms(terms: readonly string[], rowids: number[]): Map<number, string[]> {
    const out = new Map<number, string[]>(rowids.map((r) => [r, []]));
    if (rowids.length === 0) return out;
    const ids = JSON.stringify(rowids);
    for (const term of terms) {
      const match = ftsMatchExpression([term]);
      if (match === null) continue;
      for (const { rowid } of this.stmts.matching.all(match, ids)) out.get(rowid)?.push(term);
    }
    return out;
  }

  /** Inserts or replaces an article with all of its chunks, vectors and FTS rows, atomically. */
  upsertArticle(article: Article, chunks: ChunkWithVector[], origin: string): WriteResult {
    return this.db
      .transaction((): WriteResult => {
        const existing = this.stmts.articleRowid.get(article.id);
        const removed = existing ? this.removeArticleRows(existing.rowid, article.id) : [];
        const info = this.stmts.insertArticle.run({
          id: article.id,
          title: article.title,
          date: article.date,
          source: article.source,
          url: article.url,
          tags: JSON.stringify(article.tags ?? []),
          paragraphs: JSON.stringify(article.paragraphs),
          origin,
          contentHash: articleContentHash(article),
          updatedAt: new Date().toISOString(),
          dateKey: dateKey(article.date),
          sourceKey: article.source === null ? null : metadataKey(article.source),
          chunkCount: chunks.length,
          textHash: duplicateTextHash(article),
        });
        const articleRowid = Number(info.lastInsertRowid);
        const added: number[] = [];
        for (const c of chunks) {
          const rowid = Number(this.stmts.insertChunk.run(articleRowid, c.paragraph, c.start, c.end, c.text, vectorToBlob(c.vector)).lastInsertRowid);
          this.stmts.insertFts.run(rowid, article.title, c.text);
          this.stmts.logChange.run('add', rowid, article.id);
          added.push(rowid);
        }
        return {
          articleId: article.id,
          kind: existing ? 'replace' : 'insert',
          replaced: existing !== undefined,
          articleRowid,
          removedArticleRowid: existing?.rowid ?? null,
          added,
          removed,
          lastSeq: this.lastSeq(),
        };
      })
      .immediate();
  }

  /** Deletes an article and every one of its chunks; null when there is no such article. */
  deleteArticle(id: string): WriteResult | null {
    return this.db
      .transaction((): WriteResult | null => {
        const existing = this.stmts.articleRowid.get(id);
        if (!existing) return null;
        const removed = this.removeArticleRows(existing.rowid, id);
        return {
          articleId: id,
          kind: 'delete',
          replaced: false,
          articleRowid: null,
          removedArticleRowid: existing.rowid,
          added: [],
          removed,
          lastSeq: this.lastSeq(),
        };
      })
      .immediate();
  }

  private removeArticleRows(articleRowid: number, articleId: string): number[] {
    const rowids = this.stmts.chunkRowidsOf.all(articleRowid).map((r) => r.rowid);
    for (const rowid of rowids) {
      this.stmts.deleteFts.run(rowid);
      this.stmts.logChange.run('delete', rowid, articleId);
    }
    const group = this.stmts.groupOf.get(articleRowid)?.dup_group ?? null;
    this.stmts.deleteChunksOf.run(articleRowid);
    this.stmts.deleteArticle.run(articleRowid);
    // The rest of its duplicate group stays grouped; a lone survivor is no longer a group.
    if (group !== null) {
      const left = this.stmts.groupRowids.all(group);
      if (left.length === 1) this.stmts.setGroup.run(null, left[0]!.rowid);
    }
    return rowids;
  }

  /** The newest change sequence number (0 for a new database), kept across pruning by sqlite_sequence. */
  lastSeq(): number {
    return this.stmts.lastSeq.get()?.seq ?? this.stmts.seqBase.get()?.seq ?? 0;
  }

  changesAfter(seq: number): Change[] {
    return this.stmts.changesAfter.all(seq).map((r) => ({ seq: r.seq, op: r.op, chunkRowid: r.chunk_rowid, articleId: r.article_id }));
  }

  pruneChanges(upToSeq: number): void {
    this.stmts.pruneChanges.run(upToSeq);
  }

  getArticle(id: string): ArticleRecord | null {
    const r = this.stmts.getArticle.get(id);
    if (!r) return null;
    return {
      id: r.id,
      title: r.title,
      date: r.date,
      source: r.source,
      url: r.url,
      tags: JSON.parse(r.tags) as string[],
      paragraphs: JSON.parse(r.paragraphs) as string[],
      origin: r.origin,
      contentHash: r.content_hash,
      updatedAt: r.updated_at,
    };
  }

  listArticles(): ArticleSummary[] {
    return this.stmts.allArticleIds.all().map((r) => ({ id: r.id, origin: r.origin, contentHash: r.content_hash }));
  }

  *iterateArticles(): Generator<ArticleRecord> {
    for (const { id } of this.listArticles()) {
      const a = this.getArticle(id);
      if (a) yield a;
    }
  }

  counts(): { articles: number; chunks: number } {
    return this.stmts.counts.get()!;
  }

  vectorOf(chunkRowid: number): Float32Array | null {
    const r = this.stmts.vector.get(chunkRowid);
    return r ? blobToVector(r.vector) : null;
  }

  /**
   * All vectors in rowid order, read a page at a time: a consumer may yield to the event loop between
   * items without holding the connection busy (better-sqlite3 refuses other statements during iterate()).
   */
  *iterateVectors(pageSize = 1000): Generator<{ rowid: number; vector: Float32Array }> {
    let after = 0;
    for (;;) {
      const page = this.stmts.vectorPage.all(after, pageSize);
      for (const r of page) yield { rowid: r.rowid, vector: blobToVector(r.vector) };
      if (page.length < pageSize) return;
      after = page[page.length - 1]!.rowid;
    }
  }

  /** The article (rowid) of each chunk that still exists. */
  articleOfChunks(rowids: number[]): Map<number, number> {
    const out = new Map<number, number>();
    if (rowids.length === 0) return out;
    for (const r of this.stmts.articleOfChunks.all(JSON.stringify(rowids))) out.set(r.rowid, r.article_rowid);
    return out;
  }

  /** Paragraph position and text of each chunk that still exists. */
  chunkTexts(rowids: number[]): Map<number, ChunkText> {
    const out = new Map<number, ChunkText>();
    if (rowids.length === 0) return out;
    for (const r of this.stmts.chunkTexts.all(JSON.stringify(rowids))) out.set(r.rowid, { paragraph: r.paragraph, start: r.start, end: r.end, text: r.text });
    return out;
  }

  /** Title, date, source and URL of each article (by rowid) that still exists. */
  articleMetas(articleRowids: number[]): Map<number, ArticleMeta> {
    const out = new Map<number, ArticleMeta>();
    if (articleRowids.length === 0) return out;
    for (const r of this.stmts.articleMetas.all(JSON.stringify(articleRowids)))
      out.set(r.rowid, { id: r.id, title: r.title, date: r.date, source: r.source, url: r.url, tags: JSON.parse(r.tags) as string[] });
    return out;
  }

  articleRowidOf(id: string): number | null {
    return this.stmts.articleRowid.get(id)?.rowid ?? null;
  }

  /** An article's chunk vectors in paragraph order. */
  vectorsOfArticle(articleRowid: number): Array<{ rowid: number; vector: Float32Array }> {
    return this.stmts.vectorsOfArticle.all(articleRowid).map((r) => ({ rowid: r.rowid, vector: blobToVector(r.vector) }));
  }

  /** Every chunk vector of these articles (an exact scan of a filter's chunks). */
  *vectorsOfArticles(articleRowids: number[]): Generator<{ rowid: number; buffer: Buffer }> {
    if (articleRowids.length === 0) return;
    for (const r of this.stmts.vectorsOfArticles.all(JSON.stringify(articleRowids))) yield { rowid: r.rowid, buffer: r.vector };
  }

  /** The fields the in-memory filter index holds, for every article (or one). */
  articleFacts(rowid?: number): ArticleFacts[] {
    const rows = rowid === undefined ? this.stmts.facts.all() : this.stmts.factsOf.all(rowid);
    return rows.map((r) => ({
      rowid: r.rowid,
      dateKey: r.date_key,
      sourceKey: r.source_key,
      tags: JSON.parse(r.tags) as string[],
      chunkCount: r.chunk_count,
      dupGroup: r.dup_group,
    }));
  }

  /** Chunk rowid -> article rowid, for every chunk. */
  chunkArticlePairs(): Array<{ rowid: number; article_rowid: number }> {
    return this.stmts.chunkArticles.all();
  }

  newestDate(): string | null {
    return this.stmts.newestDate.get()?.d ?? null;
  }

  /** The title and paragraphs duplicate detection compares. */
  duplicateText(articleRowid: number): DuplicateText | null {
    const r = this.stmts.duplicateText.get(articleRowid);
    return r ? { title: r.title, paragraphs: JSON.parse(r.paragraphs) as string[] } : null;
  }

  /** Other articles with the same normalised text as this one. */
  sameTextAs(articleRowid: number): number[] {
    const hash = this.stmts.textHashOf.get(articleRowid)?.text_hash;
    if (!hash) return [];
    return this.stmts.sameText.all(hash, articleRowid).map((r) => r.rowid);
  }

  groupOf(articleRowid: number): number | null {
    return this.stmts.groupOf.get(articleRowid)?.dup_group ?? null;
  }

  /**
   * Puts `articleRowid` and `others` (and the groups they are in) into one group: the smallest of their
   * group ids, or a new one. Returns the group id and every article whose group changed.
   */
  mergeGroups(articleRowid: number, others: number[]): { group: number; changed: number[] } {
    const members = [articleRowid, ...others];
    const groups = [...new Set(members.map((r) => this.groupOf(r)).filter((g): g is number => g !== null))].sort((a, b) => a - b);
    const group = groups[0] ?? (this.stmts.maxGroup.get()?.g ?? 0) + 1;
    const changed = new Set<number>();
    for (const g of groups.slice(1)) {
      for (const { rowid } of this.stmts.groupRowids.all(g)) changed.add(rowid);
      this.stmts.moveGroup.run(group, g);
    }
    for (const r of members) {
      if (this.groupOf(r) !== group) {
        this.stmts.setGroup.run(group, r);
        changed.add(r);
      }
    }
    return { group, changed: [...changed] };
  }

  markDuplicatesChecked(articleRowid: number): void {
    this.stmts.markChecked.run(articleRowid);
  }

  /** Articles whose duplicates were never looked for (a migrated index, or a crash between the two steps of a write). */
  uncheckedArticles(): number[] {
    return this.stmts.unchecked.all().map((r) => r.rowid);
  }

  /** Every member of each group, oldest first (undated last), then by id. */
  groupMembers(groups: number[]): Map<number, DuplicateMember[]> {
    const out = new Map<number, DuplicateMember[]>();
    if (groups.length === 0) return out;
    for (const r of this.stmts.groupMembers.all(JSON.stringify(groups))) {
      let list = out.get(r.dup_group);
      if (!list) out.set(r.dup_group, (list = []));
      list.push({ key: r.rowid, id: r.id, title: r.title, source: r.source, date: r.date });
    }
    return out;
  }

  /** Ends bulk mode: every page written to the main file and fsynced, then normal durability. */
  finishBulk(): void {
    this.db.pragma('synchronous = FULL');
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    fsyncFile(this.path);
  }

  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }

  /**
   * The facts an integrity check compares (O(n), for `quarry check` and tests, never per request): SQLite's
   * own check, foreign keys, and whether the FTS5 rows and the chunk rows are the same set.
   */
  consistency(): {
    sqlite: string;
    foreignKeyViolations: number;
    articles: number;
    chunks: number;
    ftsRows: number;
    chunksWithoutFts: number;
    ftsWithoutChunk: number;
    articlesWithoutChunks: number;
  } {
    const one = (sql: string) => this.db.prepare<[], { n: number }>(sql).get()?.n ?? 0;
    return {
      sqlite: this.integrityCheck(),
      foreignKeyViolations: (this.db.pragma('foreign_key_check') as unknown[]).length,
      ...this.counts(),
      ftsRows: one('SELECT count(*) AS n FROM chunks_fts'),
      chunksWithoutFts: one('SELECT count(*) AS n FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM chunks_fts f WHERE f.rowid = c.rowid)'),
      ftsWithoutChunk: one('SELECT count(*) AS n FROM chunks_fts f WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.rowid = f.rowid)'),
      articlesWithoutChunks: one('SELECT count(*) AS n FROM articles a WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.article_rowid = a.rowid)'),
    };
  }

  /** Seeds-folder articles as last applied (id -> content hash); empty for an index made before they were kept. */
  folderFiles(): Map<string, string> {
    // Prepared here, not in the constructor: a read-only open of an older index has no such table.
    if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'folder_files'").get()) return new Map();
    const rows = this.db.prepare<[], { id: string; content_hash: string }>('SELECT id, content_hash FROM folder_files').all();
    return new Map(rows.map((r) => [r.id, r.content_hash]));
  }

  /** Replaces the record of applied seeds-folder articles, in one transaction. */
  setFolderFiles(files: ReadonlyMap<string, string>): void {
    this.db
      .transaction(() => {
        this.db.prepare('DELETE FROM folder_files').run();
        const insert = this.db.prepare('INSERT INTO folder_files (id, content_hash) VALUES (?, ?)');
        for (const [id, hash] of files) insert.run(id, hash);
      })
      .immediate();
  }

  /** Every chunk rowid, ascending (integrity checks). */
  chunkRowids(): number[] {
    return this.db
      .prepare<[], { rowid: number }>('SELECT rowid FROM chunks ORDER BY rowid')
      .all()
      .map((r) => r.rowid);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
