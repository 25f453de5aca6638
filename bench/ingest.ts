/**
 * `npx tsx bench/ingest.ts [--limit N] [--batch 32] [--clients 2] [--search-interval-ms 0] [--idle-requests 300] [--rebuild no] [--server-node-args '…']` (or `npm run bench -- ingest …`)
 *
 * Ingest through the live API, as a client would: a `quarry serve` child process on a temporary index
 * (seeds only, default settings, synchronous=FULL), bbc-news (../shared/data, read at run time) posted
 * in batches to POST /articles by `clients` clients, each one request at a time (with two, the server embeds
 * one request while it stores the one before: the staged write queue). Rate limits off. Meanwhile a second loop sends sequential
 * GET /search requests (hybrid, k=10) over a fixed list of queries; after the ingest the same loop runs on
 * the idle server for comparison. Reports articles/s, chunks/s, per-batch latency, and search latency
 * p50/p99 during ingest vs idle. Results: bench/results/ingest-<timestamp>.json and a table on stdout.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { flag, ROOT } from './lib/args.ts';
import { readDocs } from './lib/corpus.ts';
import { markdownTable, newResult, writeResult } from './lib/results.ts';
import { type ServeChild, startServe } from './lib/serve-child.ts';
import { percentile, round } from './lib/stats.ts';

const API_KEY = 'bench-ingest-key-0123456789';

/** News-style questions over the five bbc-news topics (business, entertainment, politics, sport, tech). */
const QUERIES = [
  'oil prices and the dollar',
  'Labour election campaign promises',
  'mobile phone sales growth',
  'Oscar nominations for best film',
  'England rugby six nations',
  'interest rates held by the central bank',
  'video game console launch',
  'tennis player injured before the open',
  'music album tops the charts',
  'broadband internet in homes',
  'airline job cuts',
  'Tory plans for immigration',
  'chelsea football transfer',
  'computer virus spreads through email',
  'stock market shares fall',
  'television comedy series',
  'Iraq war and the prime minister',
  'marathon world record',
  'online music downloads',
  'car maker profits',
];

/**
 * `quarry serve` in its own process (as `npm start` runs it, its environment included), so the client loops below
 * never share its event loop. The parent's QUARRY_* settings pass through (to compare e.g. QUARRY_PASSAGE_WORKER=0/1);
 * the bench's own win.
 */
function startServer(indexDir: string, seedsDir: string, nodeArgs: string[] = []): Promise<ServeChild> {
  const passed = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('QUARRY_') && e[1] !== undefined));
  return startServe(
    {
      ...passed,
      QUARRY_INDEX_DIR: indexDir,
      QUARRY_SEEDS_DIR: seedsDir,
      QUARRY_API_KEY: API_KEY,
      // One client address sends thousands of requests: the per-address limits are not under test.
      QUARRY_SEARCH_RATE: '0',
      QUARRY_WRITE_RATE: '0',
    },
    { nodeArgs },
  );
}

interface Sample {
  at: number;
  ms: number;
}

/** Sequential searches until `until()` says stop (or `count` requests); returns each latency. */
async function searchLoop(url: string, opts: { until?: () => boolean; count?: number; intervalMs?: number }): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; opts.count === undefined ? !opts.until!() : i < opts.count; i++) {
    const q = QUERIES[i % QUERIES.length]!;
    const t = performance.now();
    // Paced: the next search starts intervalMs after this one started (or at once if this one took longer).
    const due = t + (opts.intervalMs ?? 0);
    const res = await fetch(`${url}/search?q=${encodeURIComponent(q)}&k=10`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /search answered ${res.status}`);
    samples.push({ at: t, ms: performance.now() - t });
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return samples;
}

/** Fixed decimals: the table shows what was measured, without exponent notation. */
const fmt = (x: number, digits = 1): string => x.toFixed(digits);
const summary = (xs: number[]) => ({
  n: xs.length,
  p50: round(percentile(xs, 50), 2),
  p90: round(percentile(xs, 90), 2),
  p99: round(percentile(xs, 99), 2),
  max: round(Math.max(...xs), 2),
});

/** POST /admin/rebuild, with the search loop running until the new generation is swapped in. */
async function backgroundRebuild(url: string, searchIntervalMs: number) {
  const auth = { authorization: `Bearer ${API_KEY}` };
  const started = await fetch(`${url}/admin/rebuild`, { method: 'POST', headers: auth });
  if (started.status >= 300) throw new Error(`POST /admin/rebuild answered ${started.status}: ${await started.text()}`);
  let rebuilding = true;
  const duringRebuild = searchLoop(url, { until: () => !rebuilding, intervalMs: searchIntervalMs });
  duringRebuild.catch(() => {});
  let rebuild: { state: string; chunksDone: number; startedAt: string; finishedAt: string | null } = await started.json();
  const rebuildT0 = performance.now();
  try {
    while (rebuild.state === 'running') {
      await new Promise((r) => setTimeout(r, 250));
      rebuild = await (await fetch(`${url}/admin/rebuild`, { headers: auth })).json();
    }
  } finally {
    rebuilding = false;
  }
  const rebuildSeconds = (performance.now() - rebuildT0) / 1000;
  if (rebuild.state !== 'succeeded') throw new Error(`the rebuild ended ${rebuild.state}`);
  const rebuildSamples = await duringRebuild;
  return { rebuild, rebuildSeconds, rebuildSamples };
}

export async function run(args: string[]): Promise<void> {
  const limit = Number(flag(args, 'limit', '0')) || Infinity;
  const batchSize = Number(flag(args, 'batch', '32'));
  const clients = Number(flag(args, 'clients', '2'));
  // 0: searches back to back (the loop takes as much CPU as it can); N: one search every N ms.
  const searchIntervalMs = Number(flag(args, 'search-interval-ms', '0'));
  const idleRequests = Number(flag(args, 'idle-requests', '300'));
  // `--rebuild no`: skip the background rebuild after the ingest (shorter runs while profiling the ingest alone).
  const withRebuild = flag(args, 'rebuild', 'yes') !== 'no';
  // e.g. `--server-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"` (not allowed in NODE_OPTIONS): profile the server.
  const serverNodeArgs = flag(args, 'server-node-args', '').split(' ').filter(Boolean);
  const docs = readDocs('bbc-news').slice(0, limit);
  // bbc-news ids look like "business/001": a slash is a path character, refused by the API.
  const articles = docs.map((d) => ({ id: d.id.replace(/[^A-Za-z0-9._:-]/g, '-'), title: d.title?.trim() || d.id, source: 'BBC', text: d.text }));

  const indexDir = mkdtempSync(join(tmpdir(), 'quarry-bench-ingest-'));
  const seedsDir = mkdtempSync(join(tmpdir(), 'quarry-bench-seeds-'));
  cpSync(join(ROOT, 'seeds'), seedsDir, { recursive: true });
  const result = newResult('ingest', args);
  const server = await startServer(indexDir, seedsDir, serverNodeArgs);
  try {
    // Warm-up: the model's first passes and the HTTP path.
    await searchLoop(server.url, { count: QUERIES.length });

    let ingesting = true;
    const during = searchLoop(server.url, { until: () => !ingesting, intervalMs: searchIntervalMs });
    // Handled now so a failing search loop cannot end the process before the server is stopped.
    during.catch(() => {});
    const batchMs: number[] = [];
    let chunks = 0;
    const t0 = performance.now();
    let next = 0;
    const client = async () => {
      for (let i = next; i < articles.length; i = next) {
        next += batchSize;
        const batch = articles.slice(i, i + batchSize);
        const t = performance.now();
        const res = await fetch(`${server.url}/articles`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ articles: batch }),
        });
        if (res.status !== 201) throw new Error(`POST /articles answered ${res.status}: ${await res.text()}`);
        const ack = (await res.json()) as { articles: Array<{ chunks: number }> };
        chunks += ack.articles.reduce((n, a) => n + a.chunks, 0);
        batchMs.push(performance.now() - t);
        if ((i / batchSize) % 10 === 0) process.stderr.write(`\r${Math.min(i + batchSize, articles.length)}/${articles.length} articles, ${chunks} chunks`);
      }
    };
    try {
      await Promise.all(Array.from({ length: clients }, client));
    } finally {
      ingesting = false;
    }
    const ingestSeconds = (performance.now() - t0) / 1000;
    const loadAfterIngest = loadavg()[0]!;
    const duringSamples = await during;
    process.stderr.write('\n');
    const idleSamples = await searchLoop(server.url, { count: idleRequests });

    // A background rebuild of everything just ingested (POST /admin/rebuild, as after a model change), with the
    // same search loop running until it has swapped in its generation.
    const rebuilt = withRebuild ? await backgroundRebuild(server.url, searchIntervalMs) : null;
    const stats = (await (await fetch(`${server.url}/stats`)).json()) as { articles: number; chunks: number; disk: { totalBytes: number } };

    Object.assign(result, {
      settings: {
        articles: articles.length,
        batchSize,
        clients,
        searchIntervalMs,
        idleRequests,
        queries: QUERIES.length,
        server: 'quarry serve child process, default settings (synchronous=FULL, checkpointEvery 2000)',
      },
      ingest: {
        seconds: round(ingestSeconds, 2),
        articles: articles.length,
        chunks,
        articlesPerSecond: round(articles.length / ingestSeconds, 1),
        chunksPerSecond: round(chunks / ingestSeconds, 1),
        batchLatencyMs: summary(batchMs),
        loadavg1AtEnd: round(loadAfterIngest, 2),
      },
      searchDuringIngestMs: summary(duringSamples.map((s) => s.ms)),
      searchIdleMs: summary(idleSamples.map((s) => s.ms)),
      ...(rebuilt && {
        rebuild: {
          seconds: round(rebuilt.rebuildSeconds, 1),
          chunks: rebuilt.rebuild.chunksDone,
          chunksPerSecond: round(rebuilt.rebuild.chunksDone / rebuilt.rebuildSeconds, 1),
        },
        searchDuringRebuildMs: summary(rebuilt.rebuildSamples.map((s) => s.ms)),
      }),
      indexAfter: { articles: stats.articles, chunks: stats.chunks, diskMiB: round(stats.disk.totalBytes / 2 ** 20, 1) },
    });
    const file = writeResult(result);

    const r = result as unknown as {
      ingest: { seconds: number; articlesPerSecond: number; chunksPerSecond: number; batchLatencyMs: ReturnType<typeof summary> };
      searchDuringIngestMs: ReturnType<typeof summary>;
      searchIdleMs: ReturnType<typeof summary>;
      searchDuringRebuildMs?: ReturnType<typeof summary>;
      rebuild?: { seconds: number; chunks: number; chunksPerSecond: number };
    };
    console.log(`\nIngest of ${articles.length} bbc-news articles (${chunks} chunks) through POST /articles in batches of ${batchSize}, ${clients} client(s):`);
    console.log(
      markdownTable(
        ['seconds', 'articles/s', 'chunks/s', 'batch p50 ms', 'batch p99 ms'],
        [
          [
            fmt(r.ingest.seconds),
            fmt(r.ingest.articlesPerSecond),
            fmt(r.ingest.chunksPerSecond),
            fmt(r.ingest.batchLatencyMs.p50, 0),
            fmt(r.ingest.batchLatencyMs.p99, 0),
          ],
        ],
      ),
    );
    console.log('\nGET /search (hybrid, k=10), sequential requests, same server and queries:');
    console.log(
      markdownTable(
        ['while', 'requests', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [
          [
            'ingest runs',
            r.searchDuringIngestMs.n,
            ...[r.searchDuringIngestMs.p50, r.searchDuringIngestMs.p90, r.searchDuringIngestMs.p99, r.searchDuringIngestMs.max].map((x) => fmt(x)),
          ],
          ['idle (after ingest)', r.searchIdleMs.n, ...[r.searchIdleMs.p50, r.searchIdleMs.p90, r.searchIdleMs.p99, r.searchIdleMs.max].map((x) => fmt(x))],
          ...(r.rebuild && r.searchDuringRebuildMs
            ? [
                [
                  `a background rebuild runs (${r.rebuild.chunks} chunks in ${r.rebuild.seconds} s = ${r.rebuild.chunksPerSecond}/s)`,
                  r.searchDuringRebuildMs.n,
                  ...[r.searchDuringRebuildMs.p50, r.searchDuringRebuildMs.p90, r.searchDuringRebuildMs.p99, r.searchDuringRebuildMs.max].map((x) => fmt(x)),
                ],
              ]
            : []),
        ],
      ),
    );
    console.log(`\nload average at start: ${result.machine.loadavg1.toFixed(2)}, at the end of the ingest: ${loadAfterIngest.toFixed(2)}; results: ${file}`);
  } finally {
    await server.stop();
    rmSync(indexDir, { recursive: true, force: true });
    rmSync(seedsDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run(process.argv.slice(2));
}
