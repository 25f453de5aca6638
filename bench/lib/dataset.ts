import { mulberry32 } from './corpus.ts';
import type { LoadedCache } from './vector-cache.ts';

export interface VectorSet {
  n: number;
  dims: number;
  /** n × dims, row-major, unit length. */
  data: Float32Array;
  real: number;
  synthetic: number;
  noiseSigma: number;
}

/** Standard normal (Box–Muller) from a seeded uniform source. */
function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * The first `n` cached real vectors; when the cache holds fewer, the rest are synthetic: a real vector
 * chosen at random (seed 7), plus Gaussian noise of `sigma` per dimension, renormalised. At sigma 0.025
 * over 384 dimensions the noise has norm ≈ 0.49, so a copy has cosine ≈ 0.9 to its source: near
 * neighbours of real points, not uniform noise (uniform noise would make the graph search easier than
 * real data, not harder).
 */
export function vectorSet(cache: LoadedCache, n: number, sigma = 0.025): VectorSet {
  const dims = cache.header.dims;
  const real = Math.min(n, cache.header.count);
  const data = new Float32Array(n * dims);
  data.set(cache.vectors.subarray(0, real * dims));
  const rand = mulberry32(7);
  const g = gaussian(rand);
  for (let i = real; i < n; i++) {
    const src = Math.floor(rand() * cache.header.count) * dims;
    const off = i * dims;
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      const v = cache.vectors[src + d]! + sigma * g();
      data[off + d] = v;
      norm += v * v;
    }
    norm = Math.sqrt(norm);
    for (let d = 0; d < dims; d++) data[off + d]! /= norm;
  }
  return { n, dims, data, real, synthetic: n - real, noiseSigma: sigma };
}

/**
 * Held-out queries, alternating SciFact test queries (out of domain for a news index: their neighbours are
 * far and their similarities flat, the hard case for a graph search) and bbc-news titles (in domain).
 */
export function queryVectors(cache: LoadedCache, count: number): { vectors: Float32Array[]; sources: Array<'scifact' | 'bbc-title'> } {
  const dims = cache.header.dims;
  const { scifact, bbcTitles } = cache.header.queries;
  const vectors: Float32Array[] = [];
  const sources: Array<'scifact' | 'bbc-title'> = [];
  for (let i = 0; vectors.length < count && (i < scifact || i < bbcTitles); i++) {
    if (i < scifact) vectors.push(cache.queries.slice(i * dims, (i + 1) * dims)), sources.push('scifact');
    if (i < bbcTitles && vectors.length < count) vectors.push(cache.queries.slice((scifact + i) * dims, (scifact + i + 1) * dims)), sources.push('bbc-title');
  }
  return { vectors, sources };
}

/** Exact top-k by dot product (vectors are unit length, so this is cosine). */
export function bruteForce(set: VectorSet, q: Float32Array, k: number): number[] {
  const { data, dims, n } = set;
  const topIdx = new Int32Array(k).fill(-1);
  const topSim = new Float32Array(k).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const off = i * dims;
    for (let d = 0; d < dims; d++) s += data[off + d]! * q[d]!;
    if (s <= topSim[k - 1]!) continue;
    let j = k - 1;
    while (j > 0 && topSim[j - 1]! < s) {
      topSim[j] = topSim[j - 1]!;
      topIdx[j] = topIdx[j - 1]!;
      j--;
    }
    topSim[j] = s;
    topIdx[j] = i;
  }
  return [...topIdx];
}

export function recallAtK(found: readonly number[], truth: readonly number[], k: number): number {
  const t = new Set(truth.slice(0, k));
  return found.slice(0, k).filter((x) => t.has(x)).length / k;
}

/** Dot product of the query with row `i` of the set (cosine: the rows and queries are unit length). */
export function similarity(set: VectorSet, q: Float32Array, i: number): number {
  const off = i * set.dims;
  let s = 0;
  for (let d = 0; d < set.dims; d++) s += set.data[off + d]! * q[d]!;
  return s;
}

/**
 * Recall@k counting ties: a returned vector at least as similar to the query as the k-th true neighbour
 * (within `eps`) is a right answer, whichever of several equal vectors it is. News corpora hold exact
 * duplicates (8.7% of the 100k set's rows: "Terms were not disclosed.", dividend lines), and recall by id
 * would fault an index for returning one duplicate instead of another. ann-benchmarks counts by distance
 * the same way (its default epsilon is 1e-3; this uses 1e-6: float rounding only).
 */
export function recallWithTies(set: VectorSet, q: Float32Array, found: readonly number[], kthSimilarity: number, k: number, eps = 1e-6): number {
  return found.slice(0, k).filter((i) => similarity(set, q, i) >= kthSimilarity - eps).length / k;
}
