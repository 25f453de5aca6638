/**
 * `npm run bench -- sequential [--index DIR] [--requests 100] [--mode hybrid]`
 *
 * The figure issue 2 asks for: latency of N sequential GET /search requests over HTTP on loopback against
 * an index built with `npm run rebuild-index` (default: index/), one request at a time, each a different
 * query (bbc-news titles, held out from the seed index), after 10 warm-up requests. Also the same query
 * repeated, which is what a query-embedding cache would change.
 */
import { loadConfig } from '../src/config/config.ts';
import { openQuarry } from '../src/core/open-or-build.ts';
import { createEmbedder } from '../src/runtime.ts';
import { createApp } from '../src/server/app.ts';
import { listen } from '../src/server/listen.ts';
import { flag } from './lib/args.ts';
import { bbcTitles, seededShuffle } from './lib/corpus.ts';
import { newResult, writeResult } from './lib/results.ts';
import { percentile, round } from './lib/stats.ts';

async function timeRequests(url: string, queries: string[], mode: string): Promise<number[]> {
  const ms: number[] = [];
  for (const q of queries) {
    const t = performance.now();
    const res = await fetch(`${url}/search?q=${encodeURIComponent(q)}&mode=${mode}`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /search answered ${res.status} for ${q}`);
    ms.push(performance.now() - t);
  }
  return ms;
}

export async function run(args: string[]): Promise<void> {
  const n = Number(flag(args, 'requests', '100'));
  const mode = flag(args, 'mode', 'hybrid');
  const config = loadConfig({ env: process.env, overrides: { indexDir: flag(args, 'index', undefined), logLevel: 'silent' } });
  const embedder = await createEmbedder(config);
  const quarry = await openQuarry({ config, embedder, access: 'read' });
  const server = await listen(createApp({ quarry, config }), 0, '127.0.0.1');
  try {
    const queries = seededShuffle(bbcTitles()).slice(0, n + 10);
    await timeRequests(server.url, queries.slice(0, 10), mode);
    const distinct = await timeRequests(server.url, queries.slice(10), mode);
    const repeated = await timeRequests(
      server.url,
      Array.from({ length: n }, () => 'China-Belarus industrial cooperation'),
      mode,
    );
    const stats = await quarry.stats();
    const summary = (xs: number[]) => ({
      p50: round(percentile(xs, 50), 2),
      p90: round(percentile(xs, 90), 2),
      p99: round(percentile(xs, 99), 2),
      mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 2),
    });
    const result = newResult('sequential', args);
    const figures = {
      index: { dir: config.indexDir, articles: stats.articles, chunks: stats.chunks },
      mode,
      requests: n,
      distinctQueriesMs: summary(distinct),
      sameQueryMs: summary(repeated),
    };
    Object.assign(result, { figures });
    const file = writeResult(result);
    console.log(JSON.stringify(figures, null, 2));
    console.log(`wrote ${file}`);
  } finally {
    await server.close();
    await quarry.close();
    await embedder.close();
  }
}
