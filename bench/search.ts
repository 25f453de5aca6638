/**
 * `npm run bench -- search [--chunks 100000] [--seconds 10] [--rebuild] [--build-only] [--mode semantic|lexical|hybrid] [--block NAME]`
 *
 * End-to-end /search over HTTP on loopback against an index of ~100k chunks built from the cached vectors
 * (bench/cache; no re-embedding: see lib/precomputed-embedder.ts), with the real model for queries.
 * Load comes from a second process (autocannon) with 1, 4 and 16 connections; queries are held-out
 * (SciFact test queries and bbc-news titles), each request a different one. Also: the query embedding
 * alone, in-process search and its stage breakdown (explain=true), JSON serialisation, an LRU cache of
 * query embeddings on a repeated-query workload, and the cost of Array.from before hnswlib-node.
 */
import { execFile } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Config, loadConfig } from '../src/config/config.ts';
import { buildIndex as buildQuarryIndex } from '../src/core/build-index.ts';
import { identityOf, openQuarry } from '../src/core/open-or-build.ts';
import { withQueryCache } from '../src/embed/query-cache.ts';
import { silentLogger } from '../src/logger.ts';
import { createEmbedder } from '../src/runtime.ts';
import { SearchRequestSchema } from '../src/search/schema.ts';
import { createApp } from '../src/server/app.ts';
import { listen } from '../src/server/listen.ts';
import { openStore } from '../src/store/open-store.ts';
import { currentGenerationDir } from '../src/store/sqlite/index-dir.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { articlesFor, bbcTitles, scifactQueries, seededShuffle } from './lib/corpus.ts';
import { vectorSet } from './lib/dataset.ts';
import { precomputedEmbedder } from './lib/precomputed-embedder.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { gc, percentile, round, rssMiB } from './lib/stats.ts';
import { CACHE_DIR, cachedParagraphs, loadCache } from './lib/vector-cache.ts';

async function buildIndex(config: Config, target: number): Promise<Record<string, unknown>> {
  const cache = loadCache();
  const byText = new Map<string, Float32Array>();
  const dims = cache.header.dims;
  cachedParagraphs(cache.header).forEach((p, i) => byText.set(p.text, cache.vectors.subarray(i * dims, (i + 1) * dims)));
  // Substitutes: perturbed copies of cached vectors (see lib/dataset.ts), drawn in order.
  const synthetic = vectorSet(cache, cache.header.count + target);
  let s = cache.header.count;
  const real = await createEmbedder(config);
  const pre = precomputedEmbedder(real, byText, () => synthetic.data.subarray(s * dims, ++s * dims));
  const articles = articlesFor(target);
  const t = performance.now();
  const store = await openStore(config, { identity: identityOf(config, pre.info), access: 'write' });
  const report = await buildQuarryIndex(store, pre, config, { articles, source: { kind: 'empty' } });
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

/** Asynchronous: the server runs in this process, so its event loop must stay free while the client runs. */
let EXTRA = '';

async function loadTest(url: string, connections: number, seconds: number, queriesFile: string): Promise<Record<string, number | Record<string, number>>> {
  const { stdout } = await promisify(execFile)(
    join(ROOT, 'node_modules/.bin/tsx'),
    [join(ROOT, 'bench/lib/load-client.ts'), url, String(connections), String(seconds), queriesFile, EXTRA],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout) as Record<string, number | Record<string, number>>;
}

export async function run(args: string[]): Promise<void> {
  const target = Number(flag(args, 'chunks', '100000'));
  const seconds = Number(flag(args, 'seconds', '10'));
  const mode = flag(args, 'mode', undefined) as 'hybrid' | 'semantic' | 'lexical' | undefined;
  EXTRA = mode ? `mode=${mode}` : '';
  // One index per dtype (QUARRY_DTYPE): an index records the model it was built with, and a search with another
  // model is refused, so q8 and q4 are compared on twin indexes built from the same cached vectors.
  const dtype = loadConfig({ env: process.env, cwd: ROOT }).dtype;
  const indexDir = join(CACHE_DIR, `search-index-${target}-${dtype}`);
  // No query cache in the service under test: every request pays its embedding (the LRU is measured apart).
  // No rate limit and no admission bound either (one client address; overload has its own bench): the figures
  // stay comparable with the runs before search admission existed.
  const config = loadConfig({
    env: process.env,
    cwd: ROOT,
    overrides: {
      indexDir,
      logLevel: 'silent',
      queryCacheSize: 0,
      searchRate: 0,
      searchConcurrency: 64,
      searchQueueLimit: 100_000,
      searchQueueTimeoutMs: 0,
    },
  });
  const result = newResult('search', args);
  if (has(args, 'rebuild') && existsSync(indexDir)) rmSync(indexDir, { recursive: true, force: true });
  if (!currentGenerationDir(indexDir)) {
    console.log('building the index from cached vectors…');
    result.build = await buildIndex(config, target);
    console.log(JSON.stringify(result.build));
  }
  if (has(args, 'build-only')) return;

  const embedder = await createEmbedder(config);
  gc();
  const rss0 = rssMiB();
  const quarry = await openQuarry({ config, embedder, logger: silentLogger, access: 'read' });
  gc();
  const stats = await quarry.stats();
  const rssPerChunk = ((rssMiB() - rss0) * 2 ** 20) / stats.chunks;
  result.index = {
    chunks: stats.chunks,
    articles: stats.articles,
    disk: stats.disk,
    hnsw: stats.hnsw,
    rssGrowthMiB: round(rssMiB() - rss0, 1),
    rssBytesPerChunk: Math.round(rssPerChunk),
  };
  console.log(JSON.stringify(result.index));

  // SciFact test queries (long, out of domain) and bbc-news titles (short, in domain), alternating.
  const sq = scifactQueries();
  const bt = seededShuffle(bbcTitles()).slice(0, sq.length);
  const queries = sq.flatMap((q, i) => [q, bt[i]!]);
  const qFile = join(CACHE_DIR, 'search-queries.json');
  writeFileSync(qFile, JSON.stringify(queries));

  // The target's yardstick: the query embedding alone, the model called on this thread (no worker, no
  // cache) — the floor under any search. Interleaved, query by query, with the service's own embedding (in
  // the query worker when config.queryWorker), a whole /search over HTTP (client in this process: its
  // overhead is counted against Quarry), and the in-process stages (explain=true).
  const direct = await createEmbedder({ ...config, queryWorker: false, passageWorker: false });
  const server = await listen(createApp({ quarry, config }), 0, '127.0.0.1');
  const httpSearch = async (q: string) => {
    const res = await fetch(`${server.url}/search?q=${encodeURIComponent(q)}${mode ? `&mode=${mode}` : ''}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /search answered ${res.status} for ${q}`);
  };
  for (const q of queries.slice(0, 20)) await direct.embedQuery(q), await httpSearch(q);
  const times: Record<string, number[]> = { embedDirect: [], embedService: [], searchInProcess: [], http: [] };
  const stage: Record<string, number[]> = { embed: [], knn: [], lexical: [], fuse: [], group: [], json: [] };
  const timed = async (k: string, f: () => Promise<unknown>) => {
    const t = performance.now();
    await f();
    times[k]!.push(performance.now() - t);
  };
  const measured = queries.slice(20, 320);
  for (const q of measured) {
    await timed('embedDirect', () => direct.embedQuery(q));
    await timed('embedService', () => embedder.embedQuery(q));
    await timed('http', () => httpSearch(q));
    await timed('searchInProcess', () => quarry.search(SearchRequestSchema.parse({ q, mode })));
    // explain=true adds the stage timings, and its own matched-terms lookup inside `group`.
    const r = await quarry.search(SearchRequestSchema.parse({ q, mode, explain: true }));
    const tj = performance.now();
    JSON.stringify(r);
    stage.json!.push(performance.now() - tj);
    for (const [k, v] of Object.entries(r.timingsMs ?? {})) stage[k]?.push(v as number);
  }
  // The same queries over HTTP from a second process, one at a time, in blocks alternating with the
  // embedding alone (a process cannot interleave per query with this one without sharing its loop).
  times.embedDirectBlocks = [];
  times.httpSecondProcess = [];
  for (let round = 0; round < 3; round++) {
    for (const q of measured) await timed('embedDirectBlocks', () => direct.embedQuery(q));
    const { stdout } = await promisify(execFile)(
      join(ROOT, 'node_modules/.bin/tsx'),
      [join(ROOT, 'bench/lib/sequential-client.ts'), server.url, qFile, '20', String(measured.length), EXTRA],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    times.httpSecondProcess.push(...(JSON.parse(stdout) as number[]));
  }
  await direct.close();
  const p50 = (xs: number[]) => round(percentile(xs, 50), 3);
  const summary = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, { p50: p50(v), p99: round(percentile(v, 99), 3) }]));
  const breakdown = Object.fromEntries(Object.entries(stage).map(([k, v]) => [k, { p50: p50(v), p99: round(percentile(v, 99), 3) }]));
  const arrayFrom = (() => {
    const v = new Float32Array(embedder.info.dims).fill(0.5);
    const t = performance.now();
    for (let i = 0; i < 10_000; i++) Array.from(v);
    return round(((performance.now() - t) / 10_000) * 1000, 2);
  })();
  const ratio = round(summary.http!.p50 / summary.embedDirect!.p50, 2);
  const ratio2 = round(summary.httpSecondProcess!.p50 / summary.embedDirectBlocks!.p50, 2);
  result.inProcess = {
    queries: measured.length,
    ...summary,
    httpOverEmbedDirect: ratio,
    httpSecondProcessOverEmbedDirect: ratio2,
    breakdownMs: breakdown,
    arrayFromUs: arrayFrom,
    queryWorker: config.queryWorker,
    queryThreads: config.queryThreads,
  };
  console.log(JSON.stringify(result.inProcess));

  // Throughput over HTTP, load from a second process.
  const http: Array<Record<string, unknown>> = [];
  for (const c of [1, 4, 16]) {
    http.push(await loadTest(server.url, c, seconds, qFile));
    console.log(JSON.stringify(http.at(-1)));
  }
  result.http = http;

  // LRU cache of query embeddings: a repeated-query workload (32 distinct queries cycled), with and without.
  const repeated = queries.slice(0, 32);
  const rFile = join(CACHE_DIR, 'search-queries-repeated.json');
  writeFileSync(rFile, JSON.stringify(repeated));
  const cached = withQueryCache(embedder, 1024);
  // Steady state: the repeated queries have been seen once before the measurement.
  for (const q of repeated) await cached.embedQuery(q);
  const quarryCached = await openQuarry({ config, embedder: cached, logger: silentLogger, access: 'read' });
  const serverCached = await listen(createApp({ quarry: quarryCached, config }), 0, '127.0.0.1');
  const lru = {
    without: await loadTest(server.url, 1, seconds, rFile),
    with: await loadTest(serverCached.url, 1, seconds, rFile),
    hits: 0,
    misses: 0,
  };
  lru.hits = cached.hits;
  lru.misses = cached.misses;
  result.lru = lru;
  console.log(JSON.stringify(lru));
  await serverCached.close();
  await server.close();
  await quarryCached.close();
  await quarry.close();
  await embedder.close();

  const path = writeResult(result);
  const idx = result.index as { chunks: number; rssBytesPerChunk: number };
  const rows: Row[] = http.map((h) => {
    const l = h.latencyMs as Record<string, number>;
    return [h.connections as number, round(h.rps as number, 1), l.p50!, l.p99!, (h.errors as number) + (h.non2xx as number) + (h.timeouts as number)];
  });
  const bRows: Row[] = Object.entries(breakdown).map(([k, v]) => [k, v.p50, v.p99]);
  const lw = lru.without.latencyMs as Record<string, number>;
  const lc = lru.with.latencyMs as Record<string, number>;
  updateDoc(
    flag(args, 'block', mode ? `search-${mode}` : 'search'),
    result,
    [
      `Index: ${idx.chunks} chunks (${stats.articles} articles), ${mode ?? 'hybrid'} mode${mode ? '' : ' (default)'}, k=10, efSearch ${stats.hnsw.efSearch}; RSS growth when opening it ${(result.index as { rssGrowthMiB: number }).rssGrowthMiB} MiB = ${idx.rssBytesPerChunk} bytes/chunk. Load from autocannon in a second process on loopback, ${seconds} s per row, each request a different held-out query.`,
      '',
      markdownTable(['connections', 'requests/s', 'p50 ms', 'p99 ms', 'errors'], rows),
      '',
      `**Target ratio.** ${measured.length} distinct held-out queries, one at a time, interleaved query by query: the query embedding alone (the model on the calling thread, no worker, no cache) p50 **${summary.embedDirect!.p50} ms**; the service's query embedding (${config.queryWorker ? `query worker, ${config.queryThreads} threads` : 'main thread'}) ${summary.embedService!.p50} ms; the whole search in-process ${summary.searchInProcess!.p50} ms; \`GET /search\` over HTTP (client in the same process) p50 **${summary.http!.p50} ms** (p99 ${summary.http!.p99}) = **${ratio}×** the embedding alone. From a second process (keep-alive, one request at a time, 3 blocks alternating with blocks of the embedding alone): \`GET /search\` p50 **${summary.httpSecondProcess!.p50} ms** vs embedding alone **${summary.embedDirectBlocks!.p50} ms** = **${ratio2}×** (target ≤ 1.3×). The autocannon table above reports whole milliseconds.`,
      '',
      `One request, stage by stage (in-process, explain=true, ${measured.length} queries; BM25 runs while the query is embedded, so \`embed\` — until the vector arrived — and \`lexical\` overlap):`,
      '',
      markdownTable(['stage', 'p50 ms', 'p99 ms'], bRows),
      '',
      `Array.from of a 384-d query before hnswlib-node: ${arrayFrom} µs per call. LRU of query embeddings (1024 entries), 32 distinct queries cycled, 1 connection: p50 ${lw.p50} → ${lc.p50} ms, ${round(lru.without.rps as number, 1)} → ${round(lru.with.rps as number, 1)} requests/s (hits ${lru.hits}, misses ${lru.misses}).`,
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
