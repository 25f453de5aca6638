import type { CandidateList, DensePath, RankedChunk, VectorQuery } from '../store.ts';
import { blobToVector } from './database.ts';
import type { Generation } from './generation.ts';
import type { SqliteScope } from './metadata-index.ts';

/*
 * Dense candidates within a filter. Two paths, chosen per query by how many chunks the filter lets through
 * (bench/filters.ts at ~100k chunks, docs/benchmarks.md "filters"):
 * - exact-scan: read the matching chunks' vectors from SQLite and take the top N by dot product. Exact; its
 *   cost grows with the matching chunks m (about 4 µs each: the vector BLOBs sit in overflow pages).
 * - hnsw-filtered: hnswlib's search with a filter callback (two typed-array reads, no SQL). hnswlib keeps only
 *   accepted points among its ef best and walks on until it has them, so ef needs no raising for recall
 *   (measured: recall@10 0.966 at 50% selectivity, >= 0.98 from 20% down, ef = max(efSearch, limit), against
 *   0.978-1.0 for ef / sqrt(selectivity) at 1.3-2.8x the time); its cost grows with the points it must visit
 *   per accepted one, about N / m (0.5 ms / selectivity at 100k chunks, up to a whole-graph walk of ~100 ms).
 * The two costs meet where 4 µs · m = 0.5 ms · N / m, i.e. m = sqrt(128 · N): 3.6k chunks at 100k (3.6%),
 * 11k at 1M. Should the graph still return fewer than min(limit, m) — a filter whose chunks the walk did not
 * reach — the exact scan answers instead, so a filter never yields fewer candidates than exist.
 */

/** The crossover constant of the cost model above (measured at ~100k chunks). */
export const EXACT_SCAN_FACTOR = 128;
/** Matching chunks up to which a filtered search scans exactly, for an index of `liveChunks`. */
export const exactScanLimit = (liveChunks: number): number => Math.ceil(Math.sqrt(EXACT_SCAN_FACTOR * liveChunks));
export const EF_MAX = 4096;
/** How fast ef grows as a filter narrows: ef = max(efSearch, limit) / selectivity^exponent. 0: it does not. */
export const FILTERED_EF_EXPONENT = 0;

/** ef for a filtered graph search: the unfiltered ef divided by (a power of) the share of chunks the filter accepts. */
export function filteredEf(efSearch: number, limit: number, selectivity: number, exponent = FILTERED_EF_EXPONENT): number {
  return Math.min(EF_MAX, Math.max(limit, Math.ceil(Math.max(efSearch, limit) / Math.max(selectivity, 1e-6) ** exponent)));
}

/** Keeps the n best (score, id) pairs: a min-heap on score, ties broken towards the lower id. */
class TopN {
  private readonly scores: Float64Array;
  private readonly ids: Int32Array;
  private size = 0;
  constructor(private readonly n: number) {
    this.scores = new Float64Array(n);
    this.ids = new Int32Array(n);
  }
  /** a is worse than b */
  private worse(i: number, j: number): boolean {
    return this.scores[i]! < this.scores[j]! || (this.scores[i] === this.scores[j] && this.ids[i]! > this.ids[j]!);
  }
  private swap(i: number, j: number): void {
    const s = this.scores[i]!;
    this.scores[i] = this.scores[j]!;
    this.scores[j] = s;
    const d = this.ids[i]!;
    this.ids[i] = this.ids[j]!;
    this.ids[j] = d;
  }
  push(score: number, id: number): void {
    if (this.n === 0) return;
    if (this.size < this.n) {
      let i = this.size++;
      this.scores[i] = score;
      this.ids[i] = id;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!this.worse(i, p)) break;
        this.swap(i, p);
        i = p;
      }
      return;
    }
    if (score < this.scores[0]! || (score === this.scores[0] && id > this.ids[0]!)) return;
    this.scores[0] = score;
    this.ids[0] = id;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.size && this.worse(l, m)) m = l;
      if (r < this.size && this.worse(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
  /** Best first. */
  ranked(): RankedChunk[] {
    const out: Array<{ chunkId: number; score: number }> = [];
    for (let i = 0; i < this.size; i++) out.push({ chunkId: this.ids[i]!, score: this.scores[i]! });
    out.sort((a, b) => b.score - a.score || a.chunkId - b.chunkId);
    return out.map((c, i) => ({ ...c, rank: i + 1 }));
  }
}

/** Exact top `limit` chunks of the scope's articles by cosine (every vector is unit length: dot product). */
export function exactScan(gen: Generation, scope: SqliteScope, vector: Float32Array, limit: number): RankedChunk[] {
  const top = new TopN(Math.min(limit, scope.chunks));
  const dims = vector.length;
  for (const { rowid, buffer } of gen.db.vectorsOfArticles(scope.articleRowids())) {
    // A Buffer from SQLite need not be 4-byte aligned; read it in place when it is.
    const v = buffer.byteOffset % 4 === 0 ? new Float32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength / 4) : blobToVector(buffer);
    let s = 0;
    for (let d = 0; d < dims; d++) s += v[d]! * vector[d]!;
    top.push(s, rowid);
  }
  return top.ranked();
}

/** Dense candidates for a query: the plain graph, or within a scope by the cheaper exact path. */
export function denseCandidates(
  gen: Generation,
  q: VectorQuery,
  scope: SqliteScope | null,
  exactScanMaxChunks = exactScanLimit(gen.liveChunks),
  efExponent = FILTERED_EF_EXPONENT,
): CandidateList<DensePath> {
  const ranked = (found: Array<{ label: number; similarity: number }>): RankedChunk[] =>
    found.map((n, i) => ({ chunkId: n.label, rank: i + 1, score: n.similarity }));
  if (!scope) return { chunks: ranked(gen.vectors.search(q.vector, q.limit, gen.liveChunks, q.efSearch)), path: 'hnsw' };
  const want = Math.min(q.limit, scope.chunks);
  if (want <= 0) return { chunks: [], path: 'exact-scan' };
  if (scope.chunks <= exactScanMaxChunks) return { chunks: exactScan(gen, scope, q.vector, q.limit), path: 'exact-scan' };
  const ef = filteredEf(q.efSearch ?? gen.vectors.params.efSearch, q.limit, scope.selectivity, efExponent);
  const found = gen.vectors.search(q.vector, q.limit, gen.liveChunks, ef, scope.hasChunk);
  if (found.length < want) return { chunks: exactScan(gen, scope, q.vector, q.limit), path: 'exact-scan' };
  return { chunks: ranked(found), path: 'hnsw-filtered' };
}
