import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { fromSql } from 'pgvector';
import { QuarryError } from '../../errors.ts';
import type { Manifest } from '../manifest.ts';
import type {
  ArticleMeta,
  CandidateList,
  ChunkText,
  DensePath,
  DuplicateMember,
  FilterScope,
  LexicalQuery,
  RankedChunk,
  StoreReader,
  TextRange,
  VectorQuery,
} from '../store.ts';
import { type GenerationTables, TS_CONFIG, tablesOf } from './generation-schema.ts';
import { type DebugToken, highlightRanges, TOKEN_ALIASES } from './highlights.ts';
import { guarded } from './pg-errors.ts';
import { bm25Candidates } from './pg-lexical.ts';
import { filterCondition, PgScope } from './pg-scope.ts';
import { vectorToSql } from './pg-writes.ts';

export interface PgReaderOptions {
  /** The pool searches read from (a replica's when QUARRY_DATABASE_READ_URL is set). */
  pool: Pool;
  generation: number;
  manifest: Manifest;
  counts: { articles: number; chunks: number };
  efSearch: number;
  /** A filtered k-NN over at most this many chunks scans them exactly (no index). */
  exactScanMaxChunks: number;
  /** hnsw.max_scan_tuples of a filtered (iterative) index scan. */
  maxScanTuples: number;
}

/** Terms with letters and digits only, each once: safe in a tsquery whatever the user typed. */
export function safeTerms(terms: readonly string[]): string[] {
  return [...new Set(terms.map((t) => t.replace(/[^\p{L}\p{N}]+/gu, '')).filter((t) => t.length > 0))];
}

/** Terms as a tsquery OR of lexemes, safe whatever the user typed (terms keep letters and digits only). */
export function tsQueryText(terms: readonly string[]): string | null {
  const safe = safeTerms(terms);
  return safe.length > 0 ? safe.join(' | ') : null;
}

/** Chunks of the plain OR of the terms scored at most when the bounded lexical candidates are too few (pg-lexical.ts). */
const LEXICAL_FALLBACK_ROWS = 1000;

const num = (v: string | number): number => Number(v);

type Query = <R extends QueryResultRow>(sql: string, params?: unknown[]) => Promise<QueryResult<R>>;

/** Runs `sql` in a transaction on one connection, after SET LOCALs (set_config(..., true)) for its k-NN settings. */
async function withSettings<T>(pool: Pool, settings: Record<string, string>, fn: (q: Query) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN READ ONLY');
    const names = Object.keys(settings);
    await client.query(
      `SELECT ${names.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`,
      names.flatMap((n) => [n, settings[n]!]),
    );
    const result = await fn((sql, params) => client.query(sql, params));
    await client.query('COMMIT');
    return result;
  } catch (e) {
    broken = true;
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release(broken ? true : undefined);
  }
}

/**
 * A reader pinned to one generation: every query names that generation's tables, so a rebuild that switches
 * generations meanwhile does not move it. (The previous generation's tables are dropped only at the publish
 * after next, so a search in flight across one switch keeps working.)
 */
export function pgReader(o: PgReaderOptions): StoreReader {
  const t: GenerationTables = tablesOf(o.generation);
  const q: Query = async (sql, params) => {
    try {
      return await o.pool.query(sql, params);
    } catch (e) {
      // 42P01 undefined_table: this generation's tables were dropped (a reader held across two rebuilds).
      if ((e as { code?: string }).code === '42P01') {
        throw new QuarryError('unavailable', `the index generation ${o.generation} was replaced while this search ran; retry`, {
          details: { retryAfterSeconds: 1 },
        });
      }
      throw e;
    }
  };
  const ours = (scope: FilterScope | undefined): PgScope | null => {
    if (!scope) return null;
    if (!(scope instanceof PgScope) || scope.generation !== o.generation) throw new Error('a filter scope from another reader');
    return scope;
  };
  const ranked = (rows: Array<{ id: string; score: number }>): RankedChunk[] =>
    rows.map((r, i) => ({ chunkId: num(r.id), rank: i + 1, score: Number(r.score) }));

  async function exactScan(vector: string, scope: PgScope, limit: number): Promise<RankedChunk[]> {
    // `+ 0`: an ORDER BY that is not the index's operator, so the planner reads the scope's chunks through the
    // article index and sorts them by exact distance instead of walking the graph.
    const { rows } = await q<{ id: string; score: number }>(
      `SELECT id, 1 - (embedding <=> $1) AS score FROM ${t.chunks} WHERE article_key = ANY($2::bigint[]) ORDER BY (embedding <=> $1) + 0, id LIMIT $3`,
      [vector, scope.articleKeys(), limit],
    );
    return ranked(rows);
  }

  return {
    generation: String(o.generation),
    manifest: o.manifest,
    counts: () => ({ ...o.counts }),
    scope: (filter, exclude = []) =>
      guarded(async () => {
        const cond = filterCondition(filter, exclude, 'key', 1);
        const { rows } = await q<{ key: string; chunk_count: number }>(`SELECT key, chunk_count FROM ${t.articles} WHERE ${cond.sql}`, cond.params);
        const keys = new Set(rows.map((r) => num(r.key)));
        const chunks = rows.reduce((s, r) => s + r.chunk_count, 0);
        return new PgScope(o.generation, filter, exclude, keys, keys.size, chunks, o.counts.chunks > 0 ? chunks / o.counts.chunks : 0);
      }),
    lexicalCandidates: (lq: LexicalQuery) =>
      guarded(async () => {
        const scope = ours(lq.scope);
        const path = scope ? 'fts5-filtered' : 'fts5';
        const rows = await bm25Candidates(q, {
          chunksTable: t.chunks,
          tsConfig: TS_CONFIG,
          terms: safeTerms(lq.terms),
          limit: lq.limit,
          titleWeight: lq.titleWeight,
          textWeight: lq.textWeight,
          totalChunks: o.counts.chunks,
          fallbackRows: Math.max(LEXICAL_FALLBACK_ROWS, 10 * lq.limit),
          scope: scope ? (first) => scope.chunkCondition(first) : null,
        });
        return { chunks: ranked(rows), path } as CandidateList<'fts5' | 'fts5-filtered'>;
      }),
    vectorCandidates: (vq: VectorQuery) =>
      guarded(async (): Promise<CandidateList<DensePath>> => {
        const scope = ours(vq.scope);
        const vector = vectorToSql(vq.vector);
        const ef = String(Math.max(vq.efSearch ?? o.efSearch, vq.limit));
        if (!scope) {
          // enable_seqscan off: the planner's cost model can prefer a sequential scan and a sort (exact, and
          // slow) on a small table; the graph is the point of this path.
          const rows = await withSettings(o.pool, { 'hnsw.ef_search': ef, 'hnsw.iterative_scan': 'off', enable_seqscan: 'off' }, (tq) =>
            tq<{ id: string; score: number }>(`SELECT id, 1 - (embedding <=> $1) AS score FROM ${t.chunks} ORDER BY embedding <=> $1 LIMIT $2`, [
              vector,
              vq.limit,
            ]),
          );
          return { chunks: ranked(rows.rows), path: 'hnsw' };
        }
        const want = Math.min(vq.limit, scope.chunks);
        if (want <= 0) return { chunks: [], path: 'exact-scan' };
        if (scope.chunks <= o.exactScanMaxChunks) return { chunks: await exactScan(vector, scope, vq.limit), path: 'exact-scan' };
        // pgvector 0.8's iterative scan: the graph walk goes on past ef until `limit` rows pass the filter (or
        // max_scan_tuples were visited). relaxed_order may return them slightly out of order: re-sorted here.
        const cond = scope.chunkCondition(3);
        const rows = await withSettings(
          o.pool,
          {
            'hnsw.ef_search': ef,
            'hnsw.iterative_scan': 'relaxed_order',
            'hnsw.max_scan_tuples': String(o.maxScanTuples),
            enable_seqscan: 'off',
            enable_bitmapscan: 'off',
          },
          (tq) =>
            tq<{ id: string; score: number }>(
              `WITH nearest AS MATERIALIZED (
                 SELECT id, embedding <=> $1 AS d FROM ${t.chunks} WHERE ${cond.sql} ORDER BY embedding <=> $1 LIMIT $2)
               SELECT id, 1 - d AS score FROM nearest ORDER BY d, id`,
              [vector, vq.limit, ...cond.params],
            ),
        );
        // The walk gave up before finding enough (max_scan_tuples): the exact scan answers, so a filter never
        // yields fewer candidates than exist.
        if (rows.rows.length < want) return { chunks: await exactScan(vector, scope, vq.limit), path: 'exact-scan' };
        return { chunks: ranked(rows.rows), path: 'hnsw-filtered' };
      }),
    articlesOfChunks: (ids) =>
      guarded(async () => {
        const { rows } = await q<{ id: string; article_key: string }>(`SELECT id, article_key FROM ${t.chunks} WHERE id = ANY($1::bigint[])`, [ids]);
        return new Map(rows.map((r) => [num(r.id), num(r.article_key)]));
      }),
    chunkTexts: (ids) =>
      guarded(async () => {
        const { rows } = await q<{ id: string; paragraph: number; start_offset: number; end_offset: number; text: string }>(
          `SELECT id, paragraph, start_offset, end_offset, text FROM ${t.chunks} WHERE id = ANY($1::bigint[])`,
          [ids],
        );
        return new Map<number, ChunkText>(rows.map((r) => [num(r.id), { paragraph: r.paragraph, start: r.start_offset, end: r.end_offset, text: r.text }]));
      }),
    articleMetas: (keys) =>
      guarded(async () => {
        const { rows } = await q<{ key: string; id: string; title: string; date: string | null; source: string | null; url: string | null; tags: string[] }>(
          `SELECT key, id, title, date, source, url, tags FROM ${t.articles} WHERE key = ANY($1::bigint[])`,
          [keys],
        );
        return new Map<number, ArticleMeta>(
          rows.map((r) => [num(r.key), { id: r.id, title: r.title, date: r.date, source: r.source, url: r.url, tags: r.tags }]),
        );
      }),
    matchedTerms: (terms, ids) =>
      guarded(async () => {
        const out = new Map<number, string[]>(ids.map((id) => [id, []]));
        const usable = terms.map((term) => ({ term, text: tsQueryText([term]) })).filter((x): x is { term: string; text: string } => x.text !== null);
        if (ids.length === 0 || usable.length === 0) return out;
        // One query: each term's tsquery against each chunk's tsvector (title and text, as the lexical index).
        const { rows } = await q<{ id: string; term: string }>(
          `SELECT c.id, x.term FROM ${t.chunks} c, unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(term, query, n)
           WHERE c.id = ANY($1::bigint[]) AND c.tsv @@ to_tsquery('${TS_CONFIG}', x.query) ORDER BY c.id, x.n`,
          [ids, usable.map((u) => u.term), usable.map((u) => u.text)],
        );
        for (const r of rows) out.get(num(r.id))?.push(r.term);
        return out;
      }),
    highlights: (terms, ids) =>
      guarded(async () => {
        const out = new Map<number, TextRange[]>(ids.map((id) => [id, []]));
        const text = tsQueryText(terms);
        if (text === null || ids.length === 0) return out;
        // The query's lexemes as this configuration stems them, then the parser's tokens of each chunk text
        // (ts_parse, in order) with the lexemes each indexes as: the same stemming as the index, turned into
        // JavaScript string offsets here. Compound tokens (hyphenated words) get none: their parts carry them.
        // (ts_debug gives the same in one call but costs ~10x: 11 vs 0.8 ms for 30 chunks.)
        const lexemes = await q<{ l: string }>(`SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('${TS_CONFIG}', $1))) AS l`, [text.replaceAll('|', ' ')]);
        const wanted = new Set(lexemes.rows.map((r) => r.l));
        if (wanted.size === 0) return out;
        const { rows } = await q<{ id: string; text: string; tokens: Array<[number, string, string[] | null]> }>(
          `SELECT c.id, c.text,
                  (SELECT json_agg(json_build_array(p.tokid, p.token,
                            CASE WHEN p.tokid IN (12, 15, 16, 17) THEN NULL ELSE tsvector_to_array(to_tsvector('${TS_CONFIG}', p.token)) END) ORDER BY p.n)
                   FROM ts_parse('default', c.text) WITH ORDINALITY AS p(tokid, token, n)) AS tokens
           FROM ${t.chunks} c WHERE c.id = ANY($1::bigint[]) AND c.tsv @@ to_tsquery('${TS_CONFIG}', $2)`,
          [ids, text],
        );
        for (const r of rows) {
          const tokens: DebugToken[] = (r.tokens ?? []).map(([id, token, lex]) => ({ alias: TOKEN_ALIASES[id] ?? 'unknown', token, lexemes: lex }));
          out.set(num(r.id), highlightRanges(r.text, tokens, wanted));
        }
        return out;
      }),
    duplicateGroups: (keys) =>
      guarded(async () => {
        const { rows } = await q<{ key: string; dup_group: string }>(
          `SELECT a.key, a.dup_group FROM ${t.articles} a WHERE a.key = ANY($1::bigint[]) AND a.dup_group IS NOT NULL
             AND EXISTS (SELECT 1 FROM ${t.articles} b WHERE b.dup_group = a.dup_group AND b.key <> a.key)`,
          [keys],
        );
        return new Map(rows.map((r) => [num(r.key), num(r.dup_group)]));
      }),
    groupMembers: (groups) =>
      guarded(async () => {
        const out = new Map<number, DuplicateMember[]>();
        const { rows } = await q<{ key: string; id: string; title: string; source: string | null; date: string | null; dup_group: string }>(
          `SELECT key, id, title, source, date, dup_group FROM ${t.articles} WHERE dup_group = ANY($1::bigint[])
           ORDER BY date_key IS NULL, date_key, id COLLATE "C"`,
          [groups],
        );
        for (const r of rows) {
          const g = num(r.dup_group);
          let list = out.get(g);
          if (!list) out.set(g, (list = []));
          list.push({ key: num(r.key), id: r.id, title: r.title, source: r.source, date: r.date });
        }
        return out;
      }),
    articleKey: (id) =>
      guarded(async () => {
        const { rows } = await q<{ key: string }>(`SELECT key FROM ${t.articles} WHERE id = $1`, [id]);
        return rows[0] ? num(rows[0].key) : null;
      }),
    articleVectors: (key) =>
      guarded(async () => {
        const { rows } = await q<{ id: string; e: string }>(`SELECT id, embedding::text AS e FROM ${t.chunks} WHERE article_key = $1 ORDER BY id`, [key]);
        return rows.map((r) => ({ chunkId: num(r.id), vector: Float32Array.from(fromSql(r.e) as number[]) }));
      }),
    newestDate: () =>
      guarded(async () => {
        const { rows } = await q<{ d: string | null }>(`SELECT max(date_key) AS d FROM ${t.articles}`);
        return rows[0]?.d ?? null;
      }),
    release: () => {},
  };
}
