import type Database from 'better-sqlite3';
import { ENGLISH_STOPWORDS } from './stopwords.ts';

/** One retriever's ranked chunk list: rank is 1-based. */
export interface RankedChunk {
  rowid: number;
  rank: number;
  score: number;
}

/** Query terms as FTS5 sees them: runs of Unicode letters and digits, lower-cased, each once. */
export function queryTerms(q: string): string[] {
  const seen = new Set<string>();
  for (const m of q.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) seen.add(m[0]);
  return [...seen];
}

/**
 * The terms the BM25 query is made of: {@link queryTerms} without English stop words when `stopwords` is on,
 * unless that would leave nothing (a query of only stop words is still searched, with all of them).
 */
export function searchTerms(q: string, stopwords: boolean): string[] {
  const terms = queryTerms(q);
  if (!stopwords) return terms;
  const content = terms.filter((t) => !ENGLISH_STOPWORDS.has(t));
  return content.length > 0 ? content : terms;
}

/**
 * Builds an FTS5 MATCH expression from user text that can never be a syntax error: every term is a
 * quoted string of letters and digits, joined with OR (BM25 ranks documents matching more terms higher).
 * FTS5 operators typed by the user (AND, NEAR, *, ^, :, quotes, parentheses) become plain words or vanish.
 * Returns null when the text has no searchable term (only punctuation or emoji).
 */
export function ftsMatchExpression(q: string, stopwords = false): string | null {
  const terms = searchTerms(q, stopwords);
  if (terms.length === 0) return null;
  return terms.map((t) => `"${t}"`).join(' OR ');
}

export interface LexicalOptions {
  limit: number;
  titleWeight: number;
  textWeight: number;
  /** Leave English stop words out of the query (see {@link searchTerms}). */
  stopwords: boolean;
}

type Bm25Statement = Database.Statement<[number, number, string, number], { rowid: number; score: number }>;
/** The BM25 query is on every search: prepared once per connection, not per request. */
const bm25Statements = new WeakMap<Database.Database, Bm25Statement>();

function bm25Statement(db: Database.Database): Bm25Statement {
  let stmt = bm25Statements.get(db);
  if (!stmt) {
    stmt = db.prepare<[number, number, string, number], { rowid: number; score: number }>(
      // bm25() is lower-is-better; negated so that every retriever's score is higher-is-better.
      'SELECT rowid, -bm25(chunks_fts, ?, ?) AS score FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?',
    );
    bm25Statements.set(db, stmt);
  }
  return stmt;
}

export function lexicalSearch(db: Database.Database, q: string, opts: LexicalOptions): RankedChunk[] {
  const match = ftsMatchExpression(q, opts.stopwords);
  if (match === null || opts.limit <= 0) return [];
  const rows = bm25Statement(db).all(opts.titleWeight, opts.textWeight, match, opts.limit);
  return rows.map((r, i) => ({ rowid: r.rowid, rank: i + 1, score: r.score }));
}

/** Which of the query's terms each chunk matches (porter-stemmed as FTS5 matches them), for `explain`. */
export function matchedTerms(db: Database.Database, q: string, rowids: number[], stopwords = false): Map<number, string[]> {
  const out = new Map<number, string[]>(rowids.map((r) => [r, []]));
  if (rowids.length === 0) return out;
  const stmt = db.prepare<[string, string], { rowid: number }>(
    'SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN (SELECT value FROM json_each(?))',
  );
  const ids = JSON.stringify(rowids);
  for (const term of searchTerms(q, stopwords)) {
    for (const { rowid } of stmt.all(`"${term}"`, ids)) out.get(rowid)?.push(term);
  }
  return out;
}
