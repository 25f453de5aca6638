/**
 * `npm run bench -- ann [--sizes 10000,100000] [--queries 500] [--ef 16,32,64,100,128,256,512] [--sigma 0.025]
 *   [--m 16] [--ef-construction 200] [--no-usearch] [--no-usearch-2t] [--usearch-threads 1] [--js-truth-max 200000] [--block ann]`
 *
 * The same cached real embeddings (bench/cache, see `vectors`) — topped up with documented synthetic
 * perturbed copies when the cache is smaller than a size — in hnswlib-node through Quarry's VectorIndex,
 * in usearch with comparable parameters, and exact brute force over a Float32Array. Queries are held-out
 * embedded SciFact queries and bbc titles, never index members. Run with `node --expose-gc` for cleaner
 * RSS deltas (main.ts re-execs itself that way).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import usearch from 'usearch';
import { ConfigSchema } from '../src/config/config.ts';
import { VectorIndex } from '../src/store/sqlite/vector-index.ts';
import { flag, has, numberList, ROOT } from './lib/args.ts';
import { bruteForce, queryVectors, recallAtK, recallWithTies, similarity, type VectorSet, vectorSet } from './lib/dataset.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { gc, percentile, round, rssMiB } from './lib/stats.ts';
import { CACHE_DIR, loadCache } from './lib/vector-cache.ts';

const K = 10;
/** Quarry's defaults (config hnswM, hnswEfConstruction); `--m` and `--ef-construction` try others. */
let M = 16;
/** Threads for usearch's build (`--usearch-threads`; 1 = like hnswlib-node's addPoint). Searches use 1. */
let USEARCH_THREADS = 1;
/** Quarry's default efSearch (config), the one the targets are about. */
const DEFAULT_EF = ConfigSchema.shape.efSearch.parse(undefined);
let EF_CONSTRUCTION = 200;

interface QueryStats {
  ef: number | null;
  recall: number;
  /** Recall@10 counting equally similar vectors (duplicates) as right: see recallWithTies. */
  recallTies: number;
  /** Recall@10 by query source: in-domain bbc titles vs out-of-domain SciFact queries. */
  recallBySource: Record<string, number>;
  p50ms: number;
  p99ms: number;
  qps: number;
}

let SOURCES: string[] = [];

/** The set and each query's k-th true similarity, for recall that counts ties. */
interface Ties {
  set: VectorSet;
  kth: number[];
}

function measure(queries: Float32Array[], truth: number[][], ties: Ties, search: (q: Float32Array) => number[], ef: number | null): QueryStats {
  for (const q of queries.slice(0, 20)) search(q); // warm caches
  const times: number[] = [];
  const founds: number[][] = [];
  let recall = 0;
  const bySource: Record<string, { sum: number; n: number }> = {};
  const t0 = performance.now();
  queries.forEach((q, i) => {
    const t = performance.now();
    const found = search(q);
    times.push(performance.now() - t);
    founds.push(found);
    const r = recallAtK(found, truth[i]!, K);
    recall += r;
    const s = (bySource[SOURCES[i] ?? '?'] ??= { sum: 0, n: 0 });
    s.sum += r;
    s.n++;
  });
  const total = performance.now() - t0;
  // Outside the timed loop: similarities of what was found.
  const recallTies = founds.reduce((a, f, i) => a + recallWithTies(ties.set, queries[i]!, f, ties.kth[i]!, K), 0) / queries.length;
  const recallBySource = Object.fromEntries(Object.entries(bySource).map(([k, v]) => [k, round(v.sum / v.n, 4)]));
  return {
    ef,
    recall: round(recall / queries.length, 4),
    recallTies: round(recallTies, 4),
    recallBySource,
    p50ms: round(percentile(times, 50), 4),
    p99ms: round(percentile(times, 99), 4),
    qps: round((queries.length / total) * 1000, 0),
  };
}

interface SizeOptions {
  usearch: boolean;
  usearchTwoThreads: boolean;
  jsTruthMax: number;
}

function benchSize(set: VectorSet, queries: Float32Array[], efs: number[], rows: Row[], opts: SizeOptions): Record<string, unknown> {
  const { n, dims, data } = set;
  const row = (i: number) => data.subarray(i * dims, (i + 1) * dims);
  console.log(`n=${n} (${set.real} real, ${set.synthetic} synthetic): exact ground truth…`);

  const bfTimes: number[] = [];
  // Exact search in JS costs ~2 s per query at 1M: above `jsTruthMax` the ground truth comes from usearch's
  // exact (brute-force, SIMD, 2 threads) search instead, checked against the JS one on the first queries.
  const jsTruth = (q: Float32Array) => {
    const t = performance.now();
    const r = bruteForce(set, q, K);
    bfTimes.push(performance.now() - t);
    return r;
  };
  let truth: number[][];
  let truthCheck: { queries: number; agreement: number } | null = null;
  if (n <= opts.jsTruthMax) truth = queries.map(jsTruth);
  else {
    const qs = new Float32Array(queries.length * dims);
    queries.forEach((q, i) => qs.set(q, i * dims));
    const t = performance.now();
    const batch = usearch.exactSearch(data, qs, dims, K, usearch.MetricKind.IP, 2) as InstanceType<typeof usearch.BatchMatches>;
    console.log(`exact truth (usearch): ${((performance.now() - t) / 1000).toFixed(1)} s`);
    truth = queries.map((_, i) => [...batch.get(i).keys].map(Number));
    const checked = queries.slice(0, 10).map(jsTruth);
    truthCheck = { queries: checked.length, agreement: round(checked.reduce((a, r, i) => a + recallAtK(truth[i]!, r, K), 0) / checked.length, 4) };
    console.log(`usearch exact vs JS brute force on ${checked.length} queries: ${truthCheck.agreement}`);
  }
  const ties: Ties = { set, kth: queries.map((q, i) => similarity(set, q, truth[i]![K - 1]!)) };
  const brute = { p50ms: round(percentile(bfTimes, 50), 3), p99ms: round(percentile(bfTimes, 99), 3) };
  rows.push([n, 'brute force (JS Float32Array)', '-', '-', '-', '-', 1, 1, 1, 1, brute.p50ms, brute.p99ms, round(1000 / brute.p50ms, 0)]);

  // hnswlib-node through Quarry's wrapper (labels = row numbers, as chunk rowids would be).
  gc();
  const rss0 = rssMiB();
  const t = performance.now();
  const hnsw = VectorIndex.create(dims, { space: 'cosine', M, efConstruction: EF_CONSTRUCTION, efSearch: DEFAULT_EF }, n);
  for (let i = 0; i < n; i++) hnsw.add(i, row(i));
  const hBuildS = (performance.now() - t) / 1000;
  gc();
  const hBytesPerVector = ((rssMiB() - rss0) * 2 ** 20) / n;
  console.log(`hnswlib: built in ${hBuildS.toFixed(1)} s`);
  const hnswQueries = efs.map((ef) => measure(queries, truth, ties, (q) => hnsw.search(q, K, n, ef).map((x) => x.label), ef));
  const hDefault = measure(queries, truth, ties, (q) => hnsw.search(q, K, n).map((x) => x.label), null);
  for (const s of hnswQueries)
    rows.push([
      n,
      'hnswlib-node (Quarry VectorIndex)',
      round(hBuildS, 1),
      round(n / hBuildS, 0),
      Math.round(hBytesPerVector),
      s.ef!,
      s.recall,
      s.recallTies,
      s.recallBySource['bbc-title'] ?? '-',
      s.recallBySource.scifact ?? '-',
      s.p50ms,
      s.p99ms,
      s.qps,
    ]);

  // Marshalling: Quarry copies every query into a JS array for hnswlib-node's N-API (it accepts only arrays).
  const arr = queries.map((q) => Array.from(q));
  const tm = performance.now();
  for (let r = 0; r < 20; r++) for (const q of queries) Array.from(q);
  const arrayFromUs = ((performance.now() - tm) / (20 * queries.length)) * 1000;
  void arr;

  let usearchResult: Record<string, unknown> | null = null;
  if (opts.usearch) usearchResult = benchUsearch(set, queries, truth, ties, efs, rows, opts.usearchTwoThreads);

  return {
    n,
    real: set.real,
    synthetic: set.synthetic,
    noiseSigma: set.noiseSigma,
    queries: queries.length,
    k: K,
    bruteForce: brute,
    hnswlib: {
      M,
      efConstruction: EF_CONSTRUCTION,
      buildS: round(hBuildS, 2),
      insertsPerS: round(n / hBuildS, 0),
      rssBytesPerVector: Math.round(hBytesPerVector),
      queries: hnswQueries,
      defaultEf: hDefault,
      arrayFromUsPerQuery: round(arrayFromUs, 2),
    },
    usearch: usearchResult,
    truthCheck,
  };
}

function benchUsearch(
  set: VectorSet,
  queries: Float32Array[],
  truth: number[][],
  ties: Ties,
  efs: number[],
  rows: Row[],
  twoThreads: boolean,
): Record<string, unknown> {
  const { n, dims, data } = set;
  let t: number;
  // usearch: same M (connectivity) and efConstruction (expansion_add), one thread for adds and searches
  // like hnswlib-node; expansion_search is fixed per Index, so the built graph is saved once and viewed
  // (memory-mapped) under each ef.
  gc();
  const rss0 = rssMiB();
  t = performance.now();
  const u = new usearch.Index({
    dimensions: dims,
    metric: usearch.MetricKind.Cos,
    quantization: usearch.ScalarKind.F32,
    connectivity: M,
    expansion_add: EF_CONSTRUCTION,
    expansion_search: 100,
    multi: false,
  });
  const keys = new BigUint64Array(n);
  for (let i = 0; i < n; i++) keys[i] = BigInt(i);
  const BATCH = 1000;
  for (let i = 0; i < n; i += BATCH) u.add(keys.subarray(i, Math.min(n, i + BATCH)), data.subarray(i * dims, Math.min(n, i + BATCH) * dims), USEARCH_THREADS);
  const uBuildS = (performance.now() - t) / 1000;
  gc();
  const uBytesPerVector = ((rssMiB() - rss0) * 2 ** 20) / n;
  console.log(`usearch: built in ${uBuildS.toFixed(1)} s`);
  mkdirSync(CACHE_DIR, { recursive: true });
  const uFile = join(CACHE_DIR, `usearch-${n}.bin`);
  u.save(uFile);
  const usearchQueries = efs.map((ef) => {
    const v = new usearch.Index({
      dimensions: dims,
      metric: usearch.MetricKind.Cos,
      quantization: usearch.ScalarKind.F32,
      connectivity: M,
      expansion_add: EF_CONSTRUCTION,
      expansion_search: ef,
      multi: false,
    });
    v.view(uFile);
    return measure(queries, truth, ties, (q) => [...v.search(q, K, 1).keys].map(Number), ef);
  });
  rmSync(uFile, { force: true });
  for (const s of usearchQueries)
    rows.push([
      n,
      'usearch',
      round(uBuildS, 1),
      round(n / uBuildS, 0),
      Math.round(uBytesPerVector),
      s.ef!,
      s.recall,
      s.recallTies,
      s.recallBySource['bbc-title'] ?? '-',
      s.recallBySource.scifact ?? '-',
      s.p50ms,
      s.p99ms,
      s.qps,
    ]);

  // Another thread count for the usearch build, for the record (hnswlib-node's addPoint is single-threaded).
  let u2BuildS = NaN;
  if (twoThreads) {
    t = performance.now();
    const u2 = new usearch.Index({
      dimensions: dims,
      metric: usearch.MetricKind.Cos,
      quantization: usearch.ScalarKind.F32,
      connectivity: M,
      expansion_add: EF_CONSTRUCTION,
      expansion_search: 100,
      multi: false,
    });
    u2.add(keys, data, 2);
    u2BuildS = (performance.now() - t) / 1000;
  }

  return {
    connectivity: M,
    expansionAdd: EF_CONSTRUCTION,
    threads: USEARCH_THREADS,
    buildS: round(uBuildS, 2),
    insertsPerS: round(n / uBuildS, 0),
    rssBytesPerVector: Math.round(uBytesPerVector),
    queries: usearchQueries,
    buildS2Threads: round(u2BuildS, 2),
  };
}

export async function run(args: string[]): Promise<void> {
  const sizes = numberList(args, 'sizes', [10_000, 100_000]);
  const efs = numberList(args, 'ef', [16, 32, 64, 100, 128, 256, 512]);
  const sigma = Number(flag(args, 'sigma', '0.025'));
  M = Number(flag(args, 'm', '16'));
  USEARCH_THREADS = Number(flag(args, 'usearch-threads', '1'));
  EF_CONSTRUCTION = Number(flag(args, 'ef-construction', '200'));
  const cache = loadCache();
  const picked = queryVectors(cache, Number(flag(args, 'queries', '500')));
  const queries = picked.vectors;
  SOURCES = picked.sources;
  const result = newResult('ann', args);
  result.cache = cache.header;
  const rows: Row[] = [];
  const bySize: unknown[] = [];
  for (const n of sizes) {
    bySize.push(
      benchSize(vectorSet(cache, n, sigma), queries, efs, rows, {
        usearch: !has(args, 'no-usearch'),
        usearchTwoThreads: !has(args, 'no-usearch-2t'),
        jsTruthMax: Number(flag(args, 'js-truth-max', '200000')),
      }),
    );
    console.log(JSON.stringify(bySize.at(-1)).slice(0, 400));
  }
  result.sizes = bySize;
  const path = writeResult(result);
  const notes = (
    bySize as Array<{
      n: number;
      real: number;
      synthetic: number;
      hnswlib: { defaultEf: QueryStats; arrayFromUsPerQuery: number };
      usearch: { buildS2Threads: number } | null;
    }>
  ).map(
    (s) =>
      `- n=${s.n}: ${s.real} real + ${s.synthetic} synthetic vectors (σ=${sigma}); Quarry's default efSearch ${DEFAULT_EF}: recall@10 ${s.hnswlib.defaultEf.recall} (counting ties ${s.hnswlib.defaultEf.recallTies}) (bbc titles ${s.hnswlib.defaultEf.recallBySource['bbc-title']}, SciFact ${s.hnswlib.defaultEf.recallBySource.scifact}), p50 ${s.hnswlib.defaultEf.p50ms} ms; Array.from of one query vector ${s.hnswlib.arrayFromUsPerQuery} µs; usearch build with 2 threads ${s.usearch?.buildS2Threads ?? '-'} s.`,
  );
  updateDoc(
    flag(args, 'block', 'ann'),
    result,
    [
      `k=${K}, ${queries.length} held-out queries (${SOURCES.filter((x) => x === 'scifact').length} SciFact test queries — out of domain for these news-heavy vectors — and ${SOURCES.filter((x) => x === 'bbc-title').length} bbc-news titles, alternating), recall against exact brute force on the same vectors. hnswlib-node M=${M}, efConstruction=${EF_CONSTRUCTION}, via Quarry's VectorIndex (Array.from per call); usearch connectivity=${M}, expansion_add=${EF_CONSTRUCTION}, F32, built with ${USEARCH_THREADS} thread(s), searched with 1. Memory is the RSS growth over the build divided by n (vectors already in memory before the build are not counted).`,
      '',
      markdownTable(
        [
          'n',
          'engine',
          'build s',
          'inserts/s',
          'bytes/vector',
          'efSearch',
          'recall@10',
          'recall@10 (ties)',
          'recall bbc titles',
          'recall SciFact',
          'p50 ms',
          'p99 ms',
          'QPS (1 thread)',
        ],
        rows,
      ),
      '',
      ...notes,
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
