import type { QueryResult, QueryResultRow } from 'pg';
import type { SqlCondition } from './pg-scope.ts';

/**
 * Lexical candidates on PostgreSQL: Okapi BM25 computed in SQL over a bounded candidate set.
 *
 * Why not ts_rank_cd over every match: ts_rank_cd has no inverse document frequency (a chunk matching "show"
 * counts as much as one matching "biomaterials"), and ranking an OR of terms visits every chunk that holds any
 * of them — tens of thousands at 100k chunks for common words, 90% of a hybrid search's time.
 *
 * How: the query's lexemes (the index's own stemming) get their document frequency from the planner's
 * statistics of the tsvector column (pg_stats.most_common_elems, kept by ANALYZE/autovacuum). A lexeme that
 * statistics list as matching more chunks than the candidates wanted is "common"; the others are rare. The
 * candidates are the chunks holding a rare lexeme or two common ones — few, found through the GIN index —
 * and only they are read and scored. A chunk holding a single common lexeme would rank below nearly all of
 * them under BM25; when the candidates are still fewer than wanted, up to `fallbackRows` chunks of the plain
 * OR are added (an arbitrary subset of the weakest matches: a bound on the work, not on quality at the top).
 * Document frequencies of rare lexemes are counted exactly over the candidates (which hold all of their
 * chunks); document length is the tsvector's count of distinct lexemes, against its mean over the candidates.
 */

/** BM25's term-frequency saturation and length normalisation, FTS5's defaults. */
export const BM25_K1 = 1.2;
export const BM25_B = 0.75;

type Query = <R extends QueryResultRow>(sql: string, params?: unknown[]) => Promise<QueryResult<R>>;

export interface LexicalSearch {
  chunksTable: string;
  tsConfig: string;
  /** Query terms, letters and digits only (tsQueryText's sanitising). */
  terms: readonly string[];
  limit: number;
  titleWeight: number;
  textWeight: number;
  /** Chunks in the generation (BM25's N). */
  totalChunks: number;
  /** Chunks of the plain OR added when the bounded candidates are fewer than `limit`. */
  fallbackRows: number;
  /** A filter on the chunks table, its parameters numbered from `firstParam`. */
  scope: ((firstParam: number) => SqlCondition) | null;
}

export interface Lexeme {
  lexeme: string;
  /** Estimated chunks holding it (from statistics), null when statistics do not list it (rare). */
  df: number | null;
}

/** The query's lexemes as the index stems them, each with its document frequency when statistics know it. */
async function lexemesOf(q: Query, s: LexicalSearch): Promise<Lexeme[]> {
  const { rows } = await q<{ l: string; f: number | null }>(
    `SELECT x.l, st.f FROM unnest(tsvector_to_array(to_tsvector('${s.tsConfig}', $1))) AS x(l)
     LEFT JOIN (SELECT e, f FROM pg_stats ps, unnest(ps.most_common_elems::text::text[], ps.most_common_elem_freqs) AS y(e, f)
                WHERE ps.schemaname = current_schema() AND ps.tablename = $2 AND ps.attname = 'tsv') st ON st.e = x.l`,
    [s.terms.join(' '), s.chunksTable],
  );
  return rows.map((r) => ({ lexeme: r.l, df: r.f === null ? null : Math.max(1, Math.round(Number(r.f) * s.totalChunks)) }));
}

/** A tsquery text (lexemes are letters and digits: no quoting needed) for the 'simple' configuration. */
const orOf = (parts: string[]): string => parts.join(' | ');

/**
 * Rare lexemes, and pairs of common ones: the chunks worth scoring. `all` when no lexeme is common (every match
 * is scored); '' when none is rare and there are no pairs (a one-word query of a common word).
 */
export function boundedQuery(lexemes: readonly Lexeme[], limit: number): string {
  const common = lexemes.filter((l) => l.df !== null && l.df > limit).map((l) => l.lexeme);
  const rare = lexemes.filter((l) => l.df === null || l.df <= limit).map((l) => l.lexeme);
  const pairs: string[] = [];
  for (let i = 0; i < common.length; i++) for (let j = i + 1; j < common.length; j++) pairs.push(`(${common[i]} & ${common[j]})`);
  return orOf([...rare, ...pairs]);
}

/**
 * ts_rank_cd's weights {D, C, B, A} for text (B) and title (A): PostgreSQL refuses weights above 1, so both are
 * divided by `scale` (the term frequency is multiplied back by it).
 */
export function rankWeights(titleWeight: number, textWeight: number): { weights: number[]; scale: number } {
  const scale = Math.max(titleWeight, textWeight, 1);
  return { weights: [0, 0, textWeight / scale, titleWeight / scale], scale };
}

export async function bm25Candidates(q: Query, s: LexicalSearch): Promise<Array<{ id: string; score: number }>> {
  if (s.terms.length === 0 || s.limit <= 0) return [];
  const lexemes = await lexemesOf(q, s);
  if (lexemes.length === 0) return [];
  const all = orOf(lexemes.map((l) => l.lexeme));
  const bounded = boundedQuery(lexemes, s.limit);
  if (bounded === all) return score(q, s, lexemes, all, null);
  const top = bounded === '' ? [] : await score(q, s, lexemes, bounded, null);
  if (top.length >= s.limit) return top;
  return score(q, s, lexemes, bounded === '' ? null : bounded, all);
}

/**
 * BM25 of the chunks matching `candidates` (plus up to fallbackRows of `fallback`), best first. The weighted
 * term frequency counts a title occurrence (weight A) titleWeight and a text one (B) textWeight.
 */
async function score(
  q: Query,
  s: LexicalSearch,
  lexemes: readonly Lexeme[],
  candidates: string | null,
  fallback: string | null,
): Promise<Array<{ id: string; score: number }>> {
  const { weights, scale } = rankWeights(s.titleWeight, s.textWeight);
  const params: unknown[] = [lexemes.map((l) => l.lexeme), lexemes.map((l) => l.df), s.limit, s.totalChunks, weights, scale];
  const add = (v: unknown) => `$${params.push(v)}`;
  const candidatesParam = candidates === null ? null : add(candidates);
  const fallbackParam = fallback === null ? null : add(fallback);
  const fallbackRows = fallback === null ? null : add(s.fallbackRows);
  const cond = s.scope ? s.scope(params.length + 1) : { sql: 'true', params: [] };
  params.push(...cond.params);
  const match = (query: string) => `SELECT c.id, c.tsv FROM ${s.chunksTable} c WHERE c.tsv @@ to_tsquery('simple', ${query}) AND ${cond.sql}`;
  const parts: string[] = [];
  if (candidatesParam !== null) parts.push(`(${match(candidatesParam)})`);
  // The fallback's chunks are those the candidates do not hold (UNION ALL: no comparison of tsvectors).
  const others = candidatesParam === null ? '' : ` AND NOT c.tsv @@ to_tsquery('simple', ${candidatesParam})`;
  if (fallbackParam !== null) parts.push(`(${match(fallbackParam)}${others} LIMIT ${fallbackRows})`);
  const cand = parts.join(' UNION ALL ');
  // tf: ts_rank_cd of a one-lexeme query without normalisation is the sum of its occurrences' weights (each
  // occurrence is a cover of its own), i.e. the weighted term frequency — one lookup in the tsvector, no unnest.
  const { rows } = await q<{ id: string; score: number }>(
    `WITH cand AS MATERIALIZED (SELECT id, tsv, length(tsv) AS len FROM (${cand}) x),
     df AS MATERIALIZED (
       SELECT to_tsquery('simple', l) AS lq, coalesce(df, (SELECT count(*) FROM cand WHERE cand.tsv @@ to_tsquery('simple', l)))::float8 AS df
       FROM unnest($1::text[], $2::float8[]) AS q(l, df)),
     idf AS MATERIALIZED (SELECT lq, ln(1 + ($4::float8 - df + 0.5) / (df + 0.5)) AS idf FROM df),
     avglen AS MATERIALIZED (SELECT greatest(avg(len), 1)::float8 AS a FROM cand)
     SELECT cand.id, s.score FROM cand CROSS JOIN avglen,
          LATERAL (SELECT sum(t.idf * t.tf * ${BM25_K1 + 1} / (t.tf + ${BM25_K1} * (${1 - BM25_B} + ${BM25_B} * cand.len / avglen.a))) AS score
                   FROM (SELECT idf.idf, $6::float8 * ts_rank_cd($5::float4[], cand.tsv, idf.lq, 0) AS tf FROM idf) t WHERE t.tf > 0) s
     ORDER BY s.score DESC, cand.id LIMIT $3`,
    params,
  );
  return rows.map((r) => ({ id: r.id, score: Number(r.score) }));
}
