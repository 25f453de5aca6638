import type { IntegrityReport } from '../store.ts';
import type { Generation } from './generation.ts';

/** Cosine space stores normalised vectors; ours are normalised already, so they match up to rounding. */
const VECTOR_TOLERANCE = 1e-4;

/**
 * Checks that an open generation is whole: SQLite's own integrity check and foreign keys, the FTS5 rows
 * against the chunk rows, every article has chunks, and the HNSW graph's live points are exactly the
 * chunk rowids with the vectors SQLite holds. O(n): for `quarry check` and tests, not for requests.
 */
export function checkIntegrity(gen: Generation): IntegrityReport {
  const c = gen.db.consistency();
  const problems: string[] = [];
  if (c.sqlite !== 'ok') problems.push(`SQLite integrity_check: ${c.sqlite}`);
  if (c.foreignKeyViolations > 0) problems.push(`${c.foreignKeyViolations} foreign key violations`);
  if (c.chunksWithoutFts > 0) problems.push(`${c.chunksWithoutFts} chunks missing from the FTS5 index`);
  if (c.ftsWithoutChunk > 0) problems.push(`${c.ftsWithoutChunk} FTS5 rows without a chunk`);
  if (c.articlesWithoutChunks > 0) problems.push(`${c.articlesWithoutChunks} articles without any chunk`);

  const chunkRowids = new Set(gen.db.chunkRowids());
  let live = 0;
  let extra = 0;
  let mismatched = 0;
  const liveLabels = new Set<number>();
  for (const label of gen.vectors.labels()) {
    const point = gen.vectors.pointOf(label);
    if (!point) continue;
    live++;
    liveLabels.add(label);
    if (!chunkRowids.has(label)) {
      extra++;
      continue;
    }
    const stored = gen.db.vectorOf(label);
    if (!stored || stored.length !== point.length || stored.some((v, i) => Math.abs(v - point[i]!) > VECTOR_TOLERANCE)) mismatched++;
  }
  let missing = 0;
  for (const rowid of chunkRowids) if (!liveLabels.has(rowid)) missing++;
  if (missing > 0) problems.push(`${missing} chunks have no live point in the HNSW graph`);
  if (extra > 0) problems.push(`${extra} live HNSW points have no chunk (deleted text still searchable)`);
  if (mismatched > 0) problems.push(`${mismatched} HNSW points hold a different vector than SQLite`);
  if (gen.liveChunks !== c.chunks) problems.push(`the open index counts ${gen.liveChunks} chunks, SQLite holds ${c.chunks}`);
  if (gen.liveArticles !== c.articles) problems.push(`the open index counts ${gen.liveArticles} articles, SQLite holds ${c.articles}`);

  return {
    ok: problems.length === 0,
    sqlite: c.sqlite,
    foreignKeyViolations: c.foreignKeyViolations,
    articles: c.articles,
    chunks: c.chunks,
    ftsRows: c.ftsRows,
    articlesWithoutChunks: c.articlesWithoutChunks,
    hnsw: { points: gen.vectors.points, live, missing, extra, mismatched },
    problems,
  };
}
