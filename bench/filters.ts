/**
 * `npm run bench -- filters [--chunks 100000] [--queries 200] [--http-queries 150] [--rebuild] [--build-only] [--baseline DIR]`
 *
 * Filtered semantic search at ~100k chunks. The index holds bbc-news and Reuters-21578 articles (their
 * cached paragraph vectors; chunks the cache lacks get perturbed copies of real vectors, as in bench search)
 * with synthetic but realistic metadata: dates spread over 2015-2024 with more news in recent years, 20
 * sources of Zipf-like sizes, 1-4 tags each from 120 of Zipf-like frequency. Four filters matching about 50%,
 * 5%, 0.5% and 0.05% of the chunks (a date bound, a source, a tag, a source within a date window). For each,
 * held-out query vectors (SciFact and bbc-news titles) against the store's dense candidates (limit 100,
 * as a search takes them), three ways: as shipped (the path chosen by the matching chunk count), exact scan
 * only, filtered HNSW only:
 * - recall@10 against exact filtered brute force (ties counted, as bench ann does);
 * - p50/p99 latency of scope resolution + candidates;
 * - whether every query got min(100, matching chunks) candidates, and as many articles as a search needs
 *   (min(10, matching articles)).
 * Then hybrid GET /search p50 over HTTP (real model, query by query interleaved) without a filter and with
 * date filters; with --baseline DIR (a checkout of the commit before this work, its node_modules linked),
 * unfiltered in-process search of that code on the same index, interleaved with this code's.
 */
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { type Config, loadConfig } from '../src/config/config.ts';
import { buildIndex } from '../src/core/build-index.ts';
import { identityOf, openQuarry } from '../src/core/open-or-build.ts';
import type { SourcedArticle } from '../src/core/prepare.ts';
import { silentLogger } from '../src/logger.ts';
import { createEmbedder } from '../src/runtime.ts';
import { SearchRequestSchema } from '../src/search/schema.ts';
import { createApp } from '../src/server/app.ts';
import { listen } from '../src/server/listen.ts';
import { openStore } from '../src/store/open-store.ts';
import { blobToVector } from '../src/store/sqlite/database.ts';
import { EXACT_SCAN_FACTOR, exactScanLimit, FILTERED_EF_EXPONENT } from '../src/store/sqlite/dense-search.ts';
import { currentGenerationDir } from '../src/store/sqlite/index-dir.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { SearchFilter } from '../src/store/store.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { bbcTitles, mulberry32, scifactQueries, seededShuffle } from './lib/corpus.ts';
import { queryVectors, vectorSet } from './lib/dataset.ts';
import { machineInfo } from './lib/machine.ts';
import { newsArticles } from './lib/news-articles.ts';
import { precomputedEmbedder } from './lib/precomputed-embedder.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { percentile, round } from './lib/stats.ts';
import { CACHE_DIR, cachedParagraphs, loadCache } from './lib/vector-cache.ts';

const SOURCES = 20;
const TAGS = 120;
const LIMIT = 100;
const K = 10;
/** Filtered HNSW with ef = max(efSearch, limit) / selectivity^e, for each e. */
const EF_EXPONENTS = [0, 0.5, 1];

/** Zipf-like weights 1/(i+1)^s, normalised. */
const zipf = (n: number, s: number) => {
  const w = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / total);
};
const pick = (weights: number[], u: number) => {
  let acc = 0;
  for (let i = 0; i < weights.length; i++) if ((acc += weights[i]!) > u) return i;
  return weights.length - 1;
};

/** bbc-news then Reuters articles until about `target` paragraphs, with synthetic dates, sources and tags. */
function benchArticles(target: number): SourcedArticle[] {
  const rand = mulberry32(12);
  const sourceW = zipf(SOURCES, 1.1);
  const tagW = zipf(TAGS, 1.0);
  const out: SourcedArticle[] = [];
  let paragraphs = 0;
  for (const a of [...newsArticles('bbc-news'), ...newsArticles('reuters21578')]) {
    if (paragraphs >= target) break;
    paragraphs += a.article.paragraphs.length;
    // Dates: 2015-2024, density growing with time (an archive holds more of recent years).
    const t = Math.sqrt(rand());
    const date = new Date(Date.UTC(2015, 0, 1) + Math.floor(t * 3652) * 86_400_000).toISOString().slice(0, 10);
    const tags = new Set<string>();
    const n = 1 + Math.floor(rand() * 4);
    while (tags.size < n) tags.add(`topic-${pick(tagW, rand())}`);
    out.push({
      article: { ...a.article, id: `${a.article.id}-${out.length}`, date, source: `Agency ${pick(sourceW, rand())}`, tags: [...tags] },
      origin: 'bench',
    });
  }
  return out;
}

async function build(config: Config, target: number): Promise<Record<string, unknown>> {
  const cache = loadCache();
  const dims = cache.header.dims;
  const byText = new Map<string, Float32Array>();
  cachedParagraphs(cache.header).forEach((p, i) => byText.set(p.text, cache.vectors.subarray(i * dims, (i + 1) * dims)));
  const synthetic = vectorSet(cache, cache.header.count + target + 50_000);
  let s = cache.header.count;
  const real = await createEmbedder({ ...config, queryWorker: false, passageWorker: false });
  const pre = precomputedEmbedder(real, byText, () => synthetic.data.subarray(s * dims, ++s * dims));
  const articles = benchArticles(target);
  const t = performance.now();
  const store = await openStore(config, { identity: identityOf(config, pre.info), access: 'write' });
  const report = await buildIndex(store, pre, config, { articles, source: { kind: 'empty' } });
  await store.close();
  await real.close();
  return {
    seconds: round((performance.now() - t) / 1000, 1),
    articles: articles.length,
    chunks: report.chunks,
    exactVectors: pre.exact,
    substitutedVectors: pre.substituted,
  };
}

interface Truth {
  /** Chunk rowids and vectors, row-major. */
  rowids: Int32Array;
  articleOf: Int32Array;
  vectors: Float32Array;
  dims: number;
}

function loadTruth(indexDir: string): Truth {
  const db = new Database(join(currentGenerationDir(indexDir)!, 'quarry.db'), { readonly: true });
  const rows = db.prepare<[], { rowid: number; article_rowid: number; vector: Buffer }>('SELECT rowid, article_rowid, vector FROM chunks ORDER BY rowid').all();
  db.close();
  const dims = rows[0]!.vector.byteLength / 4;
  const vectors = new Float32Array(rows.length * dims);
  rows.forEach((r, i) => vectors.set(blobToVector(r.vector), i * dims));
  return { rowids: Int32Array.from(rows.map((r) => r.rowid)), articleOf: Int32Array.from(rows.map((r) => r.article_rowid)), vectors, dims };
}

/** Similarities of the exact filtered top-k (best first). */
function exactTop(truth: Truth, inScope: (article: number) => boolean, q: Float32Array, k: number): number[] {
  const top: number[] = [];
  const { vectors, dims } = truth;
  for (let i = 0; i < truth.rowids.length; i++) {
    if (!inScope(truth.articleOf[i]!)) continue;
    let s = 0;
    const off = i * dims;
    for (let d = 0; d < dims; d++) s += vectors[off + d]! * q[d]!;
    if (top.length < k) {
      top.push(s);
      top.sort((a, b) => b - a);
    } else if (s > top[k - 1]!) {
      top[k - 1] = s;
      top.sort((a, b) => b - a);
    }
  }
  return top;
}

interface FilterCase {
  name: string;
  target: number;
  filter: SearchFilter;
}

/** Bisects the end of a date window starting at `from` until the scope's selectivity is near `target`. */
async function dateWindow(selectivity: (f: SearchFilter) => Promise<number>, base: SearchFilter, from: string, target: number): Promise<SearchFilter> {
  let lo = 0;
  let hi = 3700;
  const day = (n: number) => new Date(Date.parse(`${from}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
  for (let i = 0; i < 14; i++) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await selectivity({ ...base, from, to: day(mid) })) < target) lo = mid + 1;
    else hi = mid;
  }
  return { ...base, from, to: day(lo) };
}

async function chooseFilters(store: SqliteStore): Promise<FilterCase[]> {
  const reader = store.reader();
  try {
    const sel = async (f: SearchFilter) => (await reader.scope(f)).selectivity;
    const closest = async (values: string[], make: (v: string) => SearchFilter, target: number) => {
      let best = make(values[0]!);
      let bestGap = Infinity;
      for (const v of values) {
        const gap = Math.abs(Math.log((await sel(make(v))) / target));
        if (gap < bestGap) [best, bestGap] = [make(v), gap];
      }
      return best;
    };
    // 50%: articles on or after a date (bisected).
    let lo = 0;
    let hi = 3652;
    const day = (n: number) => new Date(Date.UTC(2015, 0, 1) + n * 86_400_000).toISOString().slice(0, 10);
    for (let i = 0; i < 14; i++) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await sel({ from: day(mid) })) > 0.5) lo = mid + 1;
      else hi = mid;
    }
    const sources = Array.from({ length: SOURCES }, (_, i) => `Agency ${i}`);
    const tags = Array.from({ length: TAGS }, (_, i) => `topic-${i}`);
    return [
      { name: 'from a date', target: 0.5, filter: { from: day(lo) } },
      { name: 'a date window', target: 0.2, filter: await dateWindow(sel, {}, '2018-01-01', 0.2) },
      { name: 'a date window', target: 0.1, filter: await dateWindow(sel, {}, '2019-01-01', 0.1) },
      { name: 'one source', target: 0.05, filter: await closest(sources, (s) => ({ sources: [s] }), 0.05) },
      { name: 'a date window', target: 0.02, filter: await dateWindow(sel, {}, '2020-01-01', 0.02) },
      { name: 'one tag', target: 0.005, filter: await closest(tags, (t) => ({ tags: [t] }), 0.005) },
      { name: 'a source in a date window', target: 0.0005, filter: await dateWindow(sel, { sources: ['Agency 3'] }, '2020-03-01', 0.0005) },
    ];
  } finally {
    reader.release();
  }
}

async function openWith(
  config: Config,
  exactScanMaxChunks: number | undefined,
  info: Parameters<typeof identityOf>[1],
  filteredEfExponent?: number,
): Promise<SqliteStore> {
  return SqliteStore.open({
    root: config.indexDir,
    identity: identityOf(config, info),
    access: 'read',
    hnsw: { M: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.efSearch },
    checkpointEvery: config.checkpointEvery,
    compactDeletedRatio: config.compactDeletedRatio,
    exactScanMaxChunks,
    filteredEfExponent,
  });
}

export async function run(args: string[]): Promise<void> {
  const target = Number(flag(args, 'chunks', '100000'));
  const nQueries = Number(flag(args, 'queries', '200'));
  const nHttp = Number(flag(args, 'http-queries', '150'));
  const indexDir = join(CACHE_DIR, `filters-index-${target}`);
  const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { indexDir, logLevel: 'silent', queryCacheSize: 0 } });
  const result = newResult('filters', args);
  if (has(args, 'rebuild') && existsSync(indexDir)) rmSync(indexDir, { recursive: true, force: true });
  if (!currentGenerationDir(indexDir)) {
    console.log('building the index from cached vectors…');
    result.build = await build(config, target);
    console.log(JSON.stringify(result.build));
  }
  if (has(args, 'build-only')) return;
  const cache = loadCache();
  const { vectors: queries, sources: querySources } = queryVectors(cache, nQueries);
  const truth = loadTruth(indexDir);
  const embedder = await createEmbedder(config);
  const info = embedder.info;

  const shipped = await openWith(config, undefined, info);
  const cases = await chooseFilters(shipped);
  const variants: Array<[string, SqliteStore]> = [
    ['as shipped', shipped],
    ['exact scan only', await openWith(config, Number.MAX_SAFE_INTEGER, info)],
    ...EF_EXPONENTS.map((e): [string, SqliteStore] => [`HNSW, ef ÷ sel^${e}`, null as unknown as SqliteStore]),
  ];
  for (const [i, e] of EF_EXPONENTS.entries()) variants[2 + i]![1] = await openWith(config, 0, info, e);
  const rows: Row[] = [];
  const measured: Array<Record<string, unknown>> = [];
  for (const c of cases) {
    // The exact filtered top 10 of every query, once per filter (the scope is the same in every variant).
    const truthReader = shipped.reader();
    const truthScope = await truthReader.scope(c.filter);
    const exact = queries.map((q) => exactTop(truth, (a) => truthScope.has(a), q, K));
    truthReader.release();
    for (const [variant, store] of variants) {
      const reader = store.reader();
      try {
        const scope = await reader.scope(c.filter);
        const recalls: number[] = [];
        const times: number[] = [];
        const paths = new Map<string, number>();
        let short = 0;
        let fewArticles = 0;
        // Warm-up, then measured; scope resolution is part of every filtered search, so it is timed.
        for (const q of queries.slice(0, 10)) await reader.vectorCandidates({ vector: q, limit: LIMIT, scope });
        for (const [qi, q] of queries.entries()) {
          const t = performance.now();
          const s = await reader.scope(c.filter);
          const got = await reader.vectorCandidates({ vector: q, limit: LIMIT, scope: s });
          times.push(performance.now() - t);
          paths.set(got.path, (paths.get(got.path) ?? 0) + 1);
          if (got.chunks.length < Math.min(LIMIT, s.chunks)) short++;
          const articles = new Set((await reader.articlesOfChunks(got.chunks.map((x) => x.chunkId))).values());
          if (articles.size < Math.min(K, s.articles)) fewArticles++;
          const best = exact[qi]!;
          const kth = best[best.length - 1] ?? -Infinity;
          recalls.push(best.length === 0 ? 1 : got.chunks.slice(0, K).filter((x) => x.score >= kth - 1e-5).length / best.length);
        }
        const m = {
          filter: c.name,
          target: c.target,
          spec: c.filter,
          variant,
          matchingChunks: scope.chunks,
          matchingArticles: scope.articles,
          selectivity: scope.selectivity,
          recall10: round(recalls.reduce((a, b) => a + b, 0) / recalls.length, 4),
          minRecall10: round(Math.min(...recalls), 2),
          p50: round(percentile(times, 50), 3),
          p99: round(percentile(times, 99), 3),
          paths: Object.fromEntries(paths),
          shortLists: short,
          fewerArticlesThanK: fewArticles,
          loadavg1: machineInfo().loadavg1,
        };
        measured.push(m);
        console.log(JSON.stringify(m));
        rows.push([
          c.name,
          `${round(scope.selectivity * 100, 3)}%`,
          scope.chunks,
          variant,
          [...paths.keys()].join('+'),
          m.recall10,
          m.minRecall10,
          m.p50,
          m.p99,
          short + fewArticles,
          m.loadavg1,
        ]);
      } finally {
        reader.release();
      }
    }
  }
  result.filtered = { queries: queries.length, querySources: { scifact: querySources.filter((s) => s === 'scifact').length }, measured };
  const unfilteredReader = shipped.reader();
  const unfilteredTimes: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    await unfilteredReader.vectorCandidates({ vector: q, limit: LIMIT });
    unfilteredTimes.push(performance.now() - t);
  }
  unfilteredReader.release();
  result.unfilteredKnn = { p50: round(percentile(unfilteredTimes, 50), 3), p99: round(percentile(unfilteredTimes, 99), 3) };
  for (const [, s] of variants) await s.close();

  // Hybrid /search over HTTP, interleaved query by query: no filter, a date filter of about 50%, one of about 0.5%.
  const quarry = await openQuarry({ config, embedder, logger: silentLogger, access: 'read' });
  const server = await listen(createApp({ quarry, config }), 0, '127.0.0.1');
  const text = seededShuffle([...scifactQueries(), ...bbcTitles()], 5).slice(0, nHttp + 20);
  const broad = cases[0]!.filter;
  const reader = quarry.store.reader();
  const narrow = await dateWindow(async (f) => (await reader.scope(f)).selectivity, {}, '2021-06-01', 0.005);
  reader.release();
  const httpCases: Array<[string, string]> = [
    ['no filter', ''],
    [`from ${broad.from} (~50%)`, `&from=${broad.from}`],
    [`${narrow.from} to ${narrow.to} (~0.5%)`, `&from=${narrow.from}&to=${narrow.to}`],
  ];
  const http: Record<string, number[]> = Object.fromEntries(httpCases.map(([n]) => [n, []]));
  const stages: Record<string, Record<string, number[]>> = Object.fromEntries(httpCases.map(([n]) => [n, {}]));
  const paths: Record<string, Set<string>> = Object.fromEntries(httpCases.map(([n]) => [n, new Set()]));
  for (const [i, q] of text.entries()) {
    for (const [name, extra] of httpCases) {
      const t = performance.now();
      const res = await fetch(`${server.url}/search?q=${encodeURIComponent(q)}${extra}`);
      await res.arrayBuffer();
      const ms = performance.now() - t;
      if (res.status !== 200) throw new Error(`GET /search answered ${res.status}`);
      if (i >= 20) http[name]!.push(ms);
      if (i >= 20 && i < 80) {
        const r = await quarry.search(SearchRequestSchema.parse({ q, explain: true, ...Object.fromEntries(new URLSearchParams(extra.slice(1))) }));
        for (const [k, v] of Object.entries(r.timingsMs ?? {})) (stages[name]![k] ??= []).push(v as number);
        paths[name]!.add(`${r.explain!.retrieval.dense}/${r.explain!.retrieval.lexical}`);
      }
    }
  }
  const httpSummary = httpCases.map(([name]) => ({
    name,
    p50: round(percentile(http[name]!, 50), 2),
    p99: round(percentile(http[name]!, 99), 2),
    stages: Object.fromEntries(Object.entries(stages[name]!).map(([k, v]) => [k, round(percentile(v, 50), 3)])),
    paths: [...paths[name]!],
  }));
  result.hybrid = { queries: nHttp, cases: httpSummary, loadavg1: machineInfo().loadavg1 };
  console.log(JSON.stringify(result.hybrid));

  // The code before this work on the same index, unfiltered, interleaved with this code (in-process).
  const baselineDir = flag(args, 'baseline', undefined);
  if (baselineDir) {
    const base = resolve(baselineDir);
    const imp = async <T>(p: string) => (await import(pathToFileURL(join(base, p)).href)) as T;
    const { openQuarry: openOld } = await imp<{ openQuarry: typeof openQuarry }>('src/core/open-or-build.ts');
    const { createEmbedder: createOld } = await imp<{ createEmbedder: typeof createEmbedder }>('src/runtime.ts');
    const { SearchRequestSchema: OldSchema } = await imp<{ SearchRequestSchema: typeof SearchRequestSchema }>('src/search/schema.ts');
    const oldEmbedder = await createOld(config);
    const old = await openOld({ config, embedder: oldEmbedder, logger: silentLogger, access: 'read' });
    const times = { before: [] as number[], after: [] as number[] };
    for (const [i, q] of text.entries()) {
      for (const [name, qz, schema] of [
        ['before', old, OldSchema],
        ['after', quarry, SearchRequestSchema],
      ] as const) {
        const t = performance.now();
        await qz.search(schema.parse({ q }));
        if (i >= 20) times[name].push(performance.now() - t);
      }
    }
    await old.close();
    await oldEmbedder.close();
    result.baseline = {
      dir: base,
      before: { p50: round(percentile(times.before, 50), 2), p99: round(percentile(times.before, 99), 2) },
      after: { p50: round(percentile(times.after, 50), 2), p99: round(percentile(times.after, 99), 2) },
      loadavg1: machineInfo().loadavg1,
    };
    console.log(JSON.stringify(result.baseline));
  }
  await server.close();
  await quarry.close();
  await embedder.close();

  const path = writeResult(result);
  const b = result.baseline as { before: { p50: number; p99: number }; after: { p50: number; p99: number }; loadavg1: number } | undefined;
  const uk = result.unfilteredKnn as { p50: number; p99: number };
  updateDoc(
    'filters',
    result,
    [
      `Index: ${truth.rowids.length} chunks of bbc-news and Reuters articles with synthetic metadata (dates 2015–2024, 20 sources, 120 tags); ${queries.length} held-out query vectors (SciFact and bbc-news titles); dense candidates with limit ${LIMIT} (a search's pool), recall@${K} of their top ${K} against exact filtered brute force (ties counted). Latency = scope resolution + candidates, in-process. As shipped: exact scan up to sqrt(${EXACT_SCAN_FACTOR} × chunks) = ${exactScanLimit(truth.rowids.length)} matching chunks, filtered HNSW above with ef = max(efSearch, limit) / selectivity^${FILTERED_EF_EXPONENT}, exact scan again should the graph return too few. "HNSW, ef ÷ sel^e" forces the graph at every selectivity with ef = max(efSearch, limit) / selectivity^e (at most 4096). "short" counts queries with fewer than min(${LIMIT}, matching chunks) candidates or fewer than min(${K}, matching articles) articles. Unfiltered k-NN (limit ${LIMIT}) for comparison: p50 ${uk.p50} ms, p99 ${uk.p99} ms.`,
      '',
      markdownTable(['filter', 'selectivity', 'chunks', 'variant', 'path', 'recall@10', 'min', 'p50 ms', 'p99 ms', 'short', 'load'], rows),
      '',
      `Hybrid \`GET /search\` (k=10, real model, HTTP on loopback, ${nHttp} held-out text queries, the three cases interleaved query by query; load ${(result.hybrid as { loadavg1: number }).loadavg1}):`,
      '',
      markdownTable(
        ['filter', 'p50 ms', 'p99 ms', 'paths (dense/lexical)', 'stage p50 ms'],
        httpSummary.map((h) => [
          h.name,
          h.p50,
          h.p99,
          h.paths.join(', '),
          Object.entries(h.stages)
            .map(([k, v]) => `${k} ${v}`)
            .join(', '),
        ]),
      ),
      '',
      b
        ? `Unfiltered hybrid search in-process, the code before this work vs now, same index, interleaved: p50 ${b.before.p50} → ${b.after.p50} ms, p99 ${b.before.p99} → ${b.after.p99} ms (load ${b.loadavg1}).`
        : '',
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
