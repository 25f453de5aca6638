import type { ClientBase } from 'pg';
import { toSql } from 'pgvector';
import { articleContentHash, dateKey, metadataKey } from '../../corpus/article.ts';
import { duplicateTextHash } from '../../corpus/duplicates.ts';
import type { PreparedArticle, WriteOp, WriteOutcome } from '../store.ts';
import { type GenerationTables, TS_CONFIG } from './generation-schema.ts';

export const vectorToSql = (v: Float32Array): string => toSql(Array.from(v)) as string;

export interface AppliedWrite {
  outcomes: WriteOutcome[];
  /** Keys of the article rows inserted (to group with their duplicates). */
  inserted: number[];
  articleDelta: number;
  chunkDelta: number;
}

/**
 * Applies a batch of upserts and deletes inside the caller's transaction. Each article id is first locked
 * (a transaction-scoped advisory lock on its hash), so two processes writing the same id one after the other
 * replace rather than collide on the unique key. `log`: record each article in quarry_changes (a rebuild
 * replays them); false inside a generation being built.
 */
export async function applyWrites(client: ClientBase, t: GenerationTables, ops: readonly WriteOp[], log: boolean): Promise<AppliedWrite> {
  const ids = [...new Set(ops.map((op) => (op.op === 'delete' ? op.id : op.article.article.id)))].sort();
  if (ids.length > 0) {
    await client.query('SELECT pg_advisory_xact_lock($1::int, hashtext(x)) FROM unnest($2::text[]) AS x ORDER BY x', [t.id, ids]);
  }
  const out: AppliedWrite = { outcomes: [], inserted: [], articleDelta: 0, chunkDelta: 0 };
  for (const op of ops) {
    const id = op.op === 'delete' ? op.id : op.article.article.id;
    const removed = await removeArticle(client, t, id);
    if (op.op === 'delete') {
      if (removed) {
        out.articleDelta--;
        out.chunkDelta -= removed.chunks;
      }
      out.outcomes.push({ id, result: removed ? 'deleted' : 'absent', chunks: 0 });
    } else {
      const key = await insertArticle(client, t, op.article);
      out.inserted.push(key);
      out.articleDelta += removed ? 0 : 1;
      out.chunkDelta += op.article.chunks.length - (removed?.chunks ?? 0);
      out.outcomes.push({ id, result: removed ? 'replaced' : 'inserted', chunks: op.article.chunks.length });
    }
  }
  if (log && ids.length > 0) await client.query('INSERT INTO quarry_changes (generation, article_id) SELECT $1, unnest($2::text[])', [t.id, ids]);
  return out;
}

/** Deletes an article (its chunks cascade); the rest of its duplicate group stays grouped, a lone survivor leaves it. */
async function removeArticle(client: ClientBase, t: GenerationTables, id: string): Promise<{ chunks: number } | null> {
  const { rows } = await client.query<{ chunk_count: number; dup_group: string | null }>(
    `DELETE FROM ${t.articles} WHERE id = $1 RETURNING chunk_count, dup_group`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.dup_group !== null) {
    await client.query(`UPDATE ${t.articles} SET dup_group = NULL WHERE dup_group = $1 AND (SELECT count(*) FROM ${t.articles} WHERE dup_group = $1) = 1`, [
      row.dup_group,
    ]);
  }
  return { chunks: row.chunk_count };
}

async function insertArticle(client: ClientBase, t: GenerationTables, prepared: PreparedArticle): Promise<number> {
  const { article, chunks, origin } = prepared;
  const tags = article.tags ?? [];
  const tagKeys = [...new Set(tags.map(metadataKey))];
  const date = dateKey(article.date);
  const source = article.source === null ? null : metadataKey(article.source);
  const { rows } = await client.query<{ key: string }>(
    `INSERT INTO ${t.articles} (id, title, date, source, url, tags, paragraphs, origin, content_hash, updated_at, date_key, source_key, tag_keys, chunk_count, text_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING key`,
    [
      article.id,
      article.title,
      article.date,
      article.source,
      article.url,
      tags,
      article.paragraphs,
      origin,
      articleContentHash(article),
      new Date().toISOString(),
      date,
      source,
      tagKeys,
      chunks.length,
      duplicateTextHash(article),
    ],
  );
  const key = Number(rows[0]!.key);
  if (chunks.length > 0) {
    await client.query(
      `INSERT INTO ${t.chunks} (article_key, paragraph, start_offset, end_offset, text, date_key, source_key, tag_keys, tsv, embedding)
       SELECT $1, u.p, u.s, u.e, u.t, $2, $3, $4,
              setweight(to_tsvector('${TS_CONFIG}', $5), 'A') || setweight(to_tsvector('${TS_CONFIG}', u.t), 'B'), u.v::vector
       FROM unnest($6::int[], $7::int[], $8::int[], $9::text[], $10::text[]) WITH ORDINALITY AS u(p, s, e, t, v, n) ORDER BY u.n`,
      [
        key,
        date,
        source,
        tagKeys,
        article.title,
        chunks.map((c) => c.paragraph),
        chunks.map((c) => c.start),
        chunks.map((c) => c.end),
        chunks.map((c) => c.text),
        chunks.map((c) => vectorToSql(c.vector)),
      ],
    );
  }
  return key;
}
