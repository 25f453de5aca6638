/**
 * `npm run bench -- search [--chunks 100000] [--seconds 10] [--rebuild] [--mode semantic|lexical|hybrid]`
 *
 * End-to-end /search over HTTP on loopback against an index of ~100k chunks built from the cached vectors
 * (bench/cache; no re-embedding: see lib/precomputed-embedder.ts), with the real model for queries.
 * Load comes from a second process (autocannon) with 1, 4 and 16 connections; queries are held-out
 * (SciFact test queries and bbc-news titles), each request a different one. Also: the query embedding
 * alone, in-process search and its stage breakdown (explain=true), JSON serialisation, an LRU cache of
 * query embeddings on a repeated-query workload, and the cost of Array.from before hnswlib-node.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../src/config/config.ts';
import type { SourcedArticle } from '../src/core/build-index.ts';
import { Quarry } from '../src/core/quarry.ts';
import { withQueryCache } from '../src/embed/query-cache.ts';
import { silentLogger } from '../src/logger.ts';
import { createEmbedder } from '../src/runtime.ts';
import { SearchRequestSchema } from '../src/search/schema.ts';
import { createApp } from '../src/server/app.ts';
import { listen } from '../src/server/listen.ts';
import { currentGenerationDir } from '../src/store/index-dir.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { bbcTitles, readDocs, scifactQueries, seededShuffle, type Source } from './lib/corpus.ts';
import { vectorSet } from './lib/dataset.ts';
import { precomputedEmbedder } from './lib/precomputed-embedder.ts';
import { markdownTable, newResult, updateDoc, writeResult, type Row } from './lib/results.ts';
import { gc, percentile, round, rssMiB } from './lib/stats.ts';
import { CACHE_DIR, cachedParagraphs, loadCache } from './lib/vector-cache.ts';

const safeId = (s: string) => s.replace(/[^A-Za-z0-9._:-]/g, '-');

/** Whole articles (paragraphs split on blank lines) until about `target` paragraphs: cached sources first. */
function articlesFor(target: number): SourcedArticle[] {
  const out: SourcedArticle[] = [];
  let paragraphs = 0;
  for (const source of ['bbc-news', 'scifact', 'reuters21578'] as Source[]) {
    for (const d of readDocs(source)) {
      if (paragraphs >= target) return out;
      const paras = d.text.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, ' ').trim()).filter((p) => p.length >= 20);
      if (paras.length === 0) continue;
      paragraphs += paras.length;
      out.push({ article: { id: `${source}-${safeId(d.id)}`, title: d.title?.trim() || `${source} ${d.id}`, date: null, source, url: null, paragraphs: paras }, origin: 'bench' });
    }
  }
  return out;
}

async function buildIndex(config: Config, target: number): Promise<Record<string, unknown>> {
  const cache = loadCache();
  const byText = new Map<string, Float32Array>();
  const dims = cache.header.dims;
  cachedParagraphs(cache.header).forEach((p, i) => byText.set(p.text, cache.vectors.subarray(i * dims, (i + 1) * dims)));
  // Substitutes: perturbed copies of cached vectors (see lib/dataset.ts), drawn in order.
  const synthetic = vectorSet(cache, cache.header.count + target);
  let s = cache.header.count;
  const real = await createEmbedder(config);
  const pre = precomputedEmbedder(real, byText, () => synthetic.data.subarray(s * dims, (++s) * dims));
  const articles = articlesFor(target);
  const t = performance.now();
  const report = await Quarry.buildFrom({ config, embedder: pre, articles, source: { kind: 'empty' } });
  await real.close();
  return { seconds: round((performance.now() - t) / 1000, 1), articles: articles.length, chunks: report.chunks, exactVectors: pre.exact, substitutedVectors: pre.substituted };
}

/** Asynchronous: the server runs in this process, so its event loop must stay free while the client runs. */
let EXTRA = '';

async function loadTest(url: string, connections: number, seconds: number, queriesFile: string): Promise<Record<string, number | Record<string, number>>> {
  const { stdout } = await promisify(execFile)(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'bench/lib/load-client.ts'), url, String(connections), String(seconds), queriesFile, EXTRA], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return JSON.parse(stdout) as Record<string, number | Record<string, number>>;
}

export async function run(args: string[]): Promise<void> {
  const target = Number(flag(args, 'chunks', '100000'));
  const seconds = Number(flag(args, 'seconds', '10'));
  const mode = flag(args, 'mode', undefined) as 'hybrid' | 'semantic' | 'lexical' | undefined;
  EXTRA = mode ? `mode=${mode}` : '';
  const indexDir = join(CACHE_DIR, `search-index-${target}`);
  const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { indexDir, logLevel: 'silent' } });
  const result = newResult('search', args);
  if (has(args, 'rebuild') && existsSync(indexDir)) rmSync(indexDir, { recursive: true, force: true });
  if (!currentGenerationDir(indexDir)) {
    console.log('building the index from cached vectors…');
    result.build = await buildIndex(config, target);
    console.log(JSON.stringify(result.build));
  }

  const embedder = await createEmbedder(config);
  gc();
  const rss0 = rssMiB();
  const quarry = await Quarry.open({ config, embedder, logger: silentLogger, readonly: true });
  gc();
  const stats = quarry.stats();
  const rssPerChunk = ((rssMiB() - rss0) * 2 ** 20) / stats.chunks;
  result.index = { chunks: stats.chunks, articles: stats.articles, disk: stats.disk, hnsw: stats.hnsw, rssGrowthMiB: round(rssMiB() - rss0, 1), rssBytesPerChunk: Math.round(rssPerChunk) };
  console.log(JSON.stringify(result.index));

  const queries = [...scifactQueries(), ...seededShuffle(bbcTitles()).slice(0, 300)];
  const qFile = join(CACHE_DIR, 'search-queries.json');
  writeFileSync(qFile, JSON.stringify(queries));

  // In-process: the query embedding alone, then the whole search (embed + retrieval), same queries.
  for (const q of queries.slice(0, 20)) await quarry.search(SearchRequestSchema.parse({ q, mode }));
  const embedMs: number[] = [];
  const searchMs: number[] = [];
  const stage: Record<string, number[]> = { embed: [], knn: [], lexical: [], fuse: [], group: [], json: [] };
  for (const q of queries.slice(0, 200)) {
    let t = performance.now();
    await embedder.embedQuery(q);
    embedMs.push(performance.now() - t);
    t = performance.now();
    await quarry.search(SearchRequestSchema.parse({ q, mode }));
    searchMs.push(performance.now() - t);
    // explain=true adds the stage timings, and its own matched-terms lookup inside `group`.
    const r = await quarry.search(SearchRequestSchema.parse({ q, mode, explain: true }));
    const tj = performance.now();
    JSON.stringify(r);
    stage.json!.push(performance.now() - tj);
    for (const [k, v] of Object.entries(r.timings_ms ?? {})) stage[k]?.push(v as number);
  }
  const p50 = (xs: number[]) => round(percentile(xs, 50), 3);
  const breakdown = Object.fromEntries(Object.entries(stage).map(([k, v]) => [k, { p50: p50(v), p99: round(percentile(v, 99), 3) }]));
  const arrayFrom = (() => {
    const v = new Float32Array(embedder.info.dims).fill(0.5);
    const t = performance.now();
    for (let i = 0; i < 10_000; i++) Array.from(v);
    return round(((performance.now() - t) / 10_000) * 1000, 2);
  })();
  result.inProcess = { queries: 200, embedOnlyMs: { p50: p50(embedMs), p99: round(percentile(embedMs, 99), 3) }, searchMs: { p50: p50(searchMs), p99: round(percentile(searchMs, 99), 3) }, breakdownMs: breakdown, arrayFromUs: arrayFrom };
  console.log(JSON.stringify(result.inProcess));

  // Over HTTP from a second process.
  const server = await listen(createApp({ quarry, config }), 0, '127.0.0.1');
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
  const quarryCached = await Quarry.open({ config, embedder: cached, logger: silentLogger, readonly: true });
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
  const ip = result.inProcess as { embedOnlyMs: { p50: number } };
  const single = http[0]!.latencyMs as Record<string, number>;
  const rows: Row[] = http.map((h) => {
    const l = h.latencyMs as Record<string, number>;
    return [h.connections as number, round(h.rps as number, 1), l.p50!, l.p99!, (h.errors as number) + (h.non2xx as number) + (h.timeouts as number)];
  });
  const bRows: Row[] = Object.entries(breakdown).map(([k, v]) => [k, v.p50, v.p99]);
  const lw = lru.without.latencyMs as Record<string, number>;
  const lc = lru.with.latencyMs as Record<string, number>;
  updateDoc(mode ? `search-${mode}` : 'search', result, [
    `Index: ${idx.chunks} chunks (${stats.articles} articles), ${mode ?? 'hybrid'} mode${mode ? '' : ' (default)'}, k=10, efSearch ${stats.hnsw.efSearch}; RSS growth when opening it ${(result.index as { rssGrowthMiB: number }).rssGrowthMiB} MiB = ${idx.rssBytesPerChunk} bytes/chunk. Load from autocannon in a second process on loopback, ${seconds} s per row, each request a different held-out query.`,
    '',
    markdownTable(['connections', 'requests/s', 'p50 ms', 'p99 ms', 'errors'], rows),
    '',
    `Query embedding alone (in-process, same queries): p50 ${ip.embedOnlyMs.p50} ms. Single-client HTTP p50 ${single.p50} ms = ${(single.p50! / ip.embedOnlyMs.p50).toFixed(2)}× the embedding alone (target ≤ 1.3×).`,
    '',
    'One request, stage by stage (in-process, explain=true, 200 queries):',
    '',
    markdownTable(['stage', 'p50 ms', 'p99 ms'], bRows),
    '',
    `Array.from of a 384-d query before hnswlib-node: ${arrayFrom} µs per call. LRU of query embeddings (1024 entries), 32 distinct queries cycled, 1 connection: p50 ${lw.p50} → ${lc.p50} ms, ${round(lru.without.rps as number, 1)} → ${round(lru.with.rps as number, 1)} requests/s (hits ${lru.hits}, misses ${lru.misses}).`,
    '',
    `Raw: \`${path.slice(ROOT.length + 1)}\``,
  ].join('\n'));
  console.log(`wrote ${path}`);
}
