import type { ClientBase } from 'pg';
import { fromSql } from 'pgvector';
import { type DuplicateText, isNearDuplicate, NEAR_DUPLICATE } from '../../corpus/duplicates.ts';
import type { GenerationTables } from './generation-schema.ts';

/** ef of the neighbour look-ups (as the SQLite backend: a near-identical paragraph is among the first reached). */
const LOOKUP_EF = 48;

const vectorOf = (text: string): Float32Array => Float32Array.from(fromSql(text) as number[]);

interface Loaded extends DuplicateText {
  vectors: Float32Array[];
}

async function load(client: ClientBase, t: GenerationTables, key: number): Promise<Loaded | null> {
  const a = await client.query<{ title: string; paragraphs: string[] }>(`SELECT title, paragraphs FROM ${t.articles} WHERE key = $1`, [key]);
  if (!a.rows[0]) return null;
  const v = await client.query<{ e: string }>(`SELECT embedding::text AS e FROM ${t.chunks} WHERE article_key = $1 ORDER BY id`, [key]);
  return { title: a.rows[0].title, paragraphs: a.rows[0].paragraphs, vectors: v.rows.map((r) => vectorOf(r.e)) };
}

/**
 * The stored articles that are the same story as `key` (corpus/duplicates.ts, the definition both backends
 * share): the same normalised text (the text_hash index), or near-duplicate paragraphs — candidates are the
 * articles owning an HNSW neighbour of one of its paragraphs at cosine >= the paragraph threshold, then the
 * pair test on both articles' stored vectors, numbers and titles.
 */
export async function findDuplicates(client: ClientBase, t: GenerationTables, key: number): Promise<number[]> {
  const same = await client.query<{ key: string }>(
    `SELECT b.key FROM ${t.articles} a JOIN ${t.articles} b ON b.text_hash = a.text_hash AND b.key <> a.key WHERE a.key = $1`,
    [key],
  );
  const found = new Set(same.rows.map((r) => Number(r.key)));
  const mine = await load(client, t, key);
  if (!mine || mine.vectors.length === 0) return [...found];
  const k = NEAR_DUPLICATE.neighbours + mine.vectors.length;
  await client.query(
    "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', 'off', true), set_config('enable_seqscan', 'off', true)",
    [String(Math.max(k, LOOKUP_EF))],
  );
  const near = await client.query<{ article_key: string }>(
    `SELECT DISTINCT n.article_key FROM ${t.chunks} o
     CROSS JOIN LATERAL (SELECT c.article_key, c.embedding <=> o.embedding AS d FROM ${t.chunks} c ORDER BY c.embedding <=> o.embedding LIMIT $2) n
     WHERE o.article_key = $1 AND n.d <= $3 AND n.article_key <> $1`,
    [key, k, 1 - NEAR_DUPLICATE.paragraphCosine],
  );
  for (const r of near.rows) {
    const other = Number(r.article_key);
    if (found.has(other)) continue;
    const theirs = await load(client, t, other);
    if (theirs && isNearDuplicate(mine, theirs)) found.add(other);
  }
  return [...found];
}

/**
 * Groups each of `keys` with its duplicates, in the caller's transaction, and marks it checked. Grouping
 * runs one process at a time per generation (an advisory lock): two processes grouping overlapping articles
 * at once could otherwise each make a group of its own. Groups merge into the smallest id among them.
 */
export async function groupDuplicates(client: ClientBase, t: GenerationTables, keys: readonly number[]): Promise<void> {
  if (keys.length === 0) return;
  await client.query('SELECT pg_advisory_xact_lock($1::int, 0)', [t.id]);
  for (const key of keys) {
    const same = await findDuplicates(client, t, key);
    if (same.length > 0) {
      const members = [key, ...same];
      const { rows } = await client.query<{ g: string }>(
        `SELECT DISTINCT dup_group AS g FROM ${t.articles} WHERE key = ANY($1::bigint[]) AND dup_group IS NOT NULL ORDER BY 1`,
        [members],
      );
      const groups = rows.map((r) => r.g);
      const group = groups[0] ?? (await client.query<{ g: string }>("SELECT nextval('quarry_duplicate_groups') AS g")).rows[0]!.g;
      await client.query(`UPDATE ${t.articles} SET dup_group = $1 WHERE key = ANY($2::bigint[]) OR dup_group = ANY($3::bigint[])`, [group, members, groups]);
    }
    await client.query(`UPDATE ${t.articles} SET dup_checked = true WHERE key = $1`, [key]);
  }
}
