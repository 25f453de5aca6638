/**
 * `npm run bench -- soak [--minutes 30] [--clients 8] [--write-every 20] [--sample-seconds 30] [--warmup-minutes 2] [--load 0.8 | --rate R] [--no-rebuild] [--freeze-ms 0 --freeze-every 10] [--no-doc]
 *   [--server-env K=V,…] [--server-node-args '--cpu-prof --cpu-prof-dir=DIR']`
 *
 * Leaks and drift over a long run: a `quarry serve` child on a copy of the bbc-news index (real model), a
 * mixed load of searches and writes (every `write-every`-th request replaces one of 200 articles, so the index
 * keeps its size and growth cannot pass for a leak), one rebuild (`POST /admin/rebuild`) half way.
 *
 * First, in the same run, the saturating rate of that mix: a closed loop of 16 clients for 30 s, its 2xx
 * throughput, against a server of its own over the same index with the search queue unbounded (see run()). The soak then offers 80% of it: `clients` clients, each with a Poisson schedule of its share of
 * the rate, sending its next request when it is due or when its last one was answered, whichever is later (a
 * client never has two requests out; when the server slows, as during the rebuild, the clients slow with it,
 * as real ones do, instead of piling up an unbounded backlog, and make up at most a second of it afterwards).
 *
 * Every `sample-seconds`: the server's RSS and open file descriptors (/proc/<pid>), V8 heap used, its live part
 * after the latest full GC and what it has committed (/metrics), where the anonymous memory sits (glibc's main arena,
 * its other arenas, the rest: serve-child.ts anonSplit), the HNSW graph's points and deleted points, and the p99 of
 * the requests answered in that window. A Theil–Sen slope per metric over the samples after the warm-up, with the
 * "flat" thresholds in FLAT below; errors are every non-2xx answer and transport error.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, has, serverEnv } from './lib/args.ts';
import { bbcArticles, ensureBbcIndex } from './lib/bbc-index.ts';
import { bbcTitles, mulberry32, scifactQueries, seededShuffle } from './lib/corpus.ts';
import { closedLoop, type LoadRequest, type Sample, send, summarise, type TransportLog } from './lib/http-load.ts';
import { markdownTable, newResult, updateDoc, writeResult } from './lib/results.ts';
import { searchConcurrencyOf, unboundedSearch } from './lib/search-load.ts';
import { anonSplit, metricValue, procStats, startServe } from './lib/serve-child.ts';
import { standingEpisodesIn } from './lib/standing-episodes.ts';
import { median, percentile, round } from './lib/stats.ts';
import { olsSlope, theilSenSlope } from './lib/trend.ts';

const API_KEY = 'bench-soak-key-0123456789abcdef';
const POOL = 200;

/**
 * What "flat" means, as the largest change the fitted slope may imply over the measured span: a relative
 * share of the metric's median, or an absolute amount for descriptors. Chosen to be well above the run-to-run
 * noise of each metric on this machine (GC sawtooth, page cache, a rebuild's transient) yet to catch a leak
 * that would matter in days: 5% of ~450 MiB RSS in 28 min is ~50 MiB/h, which fills 2 GiB in ~1.5 days.
 */
const FLAT: Record<'rssMiB' | 'heapLiveMiB' | 'fds' | 'searchP99Ms', { relative?: number; absolute?: number }> = {
  rssMiB: { relative: 0.05 },
  heapLiveMiB: { relative: 0.1 },
  fds: { absolute: 2 },
  searchP99Ms: { relative: 0.25 },
};

interface Point {
  minute: number;
  rssMiB: number;
  /** V8 heap used at the sample: live objects and the garbage not yet collected (reported, not fitted). */
  heapMiB: number;
  /**
   * V8 heap used just after the server's latest full GC (quarry_heap_live_bytes): the live set, what a leak grows.
   * The runs before 2026-12-01 fitted heapMiB, whose samples swing with the GC's timing (42–178 MiB in one run).
   */
  heapLiveMiB: number;
  fds: number;
  searchP99Ms: number;
  writeP99Ms: number;
  rate: number;
  errors: number;
  /** Non-2xx answers in the window by status (0: transport error or client timeout). */
  errorsByStatus: Record<string, number>;
  /** What the server refused in the window (quarry_overload_refused_total deltas, by queue/reason). */
  refused: Record<string, number>;
  /** RSS split (/proc status): anonymous memory (heaps, native allocations) vs file-backed pages (mmap'd SQLite, code). */
  rssAnonMiB: number;
  rssFileMiB: number;
  /** Anonymous memory by region (serve-child.ts anonSplit): glibc's main arena, its other arenas, the rest (V8, mmapped blocks). */
  anonSplitMiB: { brk: number; arenas: number; other: number };
  /**
   * The main thread's V8 heap as committed (nodejs_heap_size_total_bytes: pages V8 holds, used or not) and memory
   * outside it held by JS objects (nodejs_external_memory_bytes: Buffers, typed arrays): the parts of `other` above
   * that the main isolate accounts for. Worker isolates and ONNX Runtime's arena are the rest of it.
   */
  v8CommittedMiB: number;
  externalMiB: number;
  /** Paragraph points in the HNSW graph and those marked deleted, waiting for compaction (/metrics). */
  chunks: number;
  deletedPoints: number;
  /** The longest the server's event loop was held in the window (prom-client's nodejs_eventloop_lag_max_seconds,
   * reset at each scrape): a stall long enough to push queued searches past their deadline shows here. */
  loopLagMaxMs: number;
  /** The rebuild's state at the sample (idle before it, running, succeeded). */
  rebuild: string;
  /** Transport errors by code, and requests retried after a keep-alive race, in the window (see http-load.ts send). */
  transportErrors: Record<string, number>;
  keepAliveRetries: number;
}

function mix(writeEvery: number): () => LoadRequest {
  const sq = scifactQueries();
  const bt = seededShuffle(bbcTitles()).slice(0, sq.length);
  const queries = sq.flatMap((q, i) => [q, bt[i]!]);
  const articles = seededShuffle(bbcArticles(), 3);
  let n = 0;
  let w = 0;
  return () => {
    n++;
    if (n % writeEvery === 0) {
      const a = articles[w % articles.length]!;
      const id = `soak-${w++ % POOL}`;
      return { method: 'POST', path: '/articles', kind: 'write', headers: { authorization: `Bearer ${API_KEY}` }, body: JSON.stringify({ ...a, id }) };
    }
    return { method: 'GET', path: `/search?q=${encodeURIComponent(queries[n % queries.length]!)}`, kind: 'search' };
  };
}

/** The search queue's shedding episodes (lib/standing-episodes.ts) at the minute of the run they were logged. */
function standingEpisodesAt(output: string, runStartedAt: number): Array<Record<string, unknown>> {
  return standingEpisodesIn(output, runStartedAt).map(({ atMs, ...rest }) => ({ minute: round(atMs / 60_000, 2), ...rest }));
}

/** "none", or how many episodes began (and by which cause), when, and how long the longest stood. */
function episodeSummary(episodes: Array<Record<string, unknown>>): string {
  const begun = episodes.filter((e) => e.cause !== undefined);
  if (begun.length === 0) return 'none';
  const ended = episodes.filter((e) => e.forMs !== undefined);
  const byCause = new Map<string, number>();
  for (const e of begun) byCause.set(String(e.cause), (byCause.get(String(e.cause)) ?? 0) + 1);
  const causes = [...byCause].map(([c, n]) => `${n} ${c}`);
  const longest = Math.max(0, ...ended.map((e) => Number(e.forMs)));
  const refused = ended.reduce((n, e) => n + Number(e.refused), 0);
  return `${begun.length} (${causes.join(', ')}) at minutes ${begun.map((e) => e.minute).join(', ')}; longest ${longest} ms; ${refused} searches refused in them`;
}

/** How far behind its schedule a soak client may fall and still make it up (pacedLoop). */
const BACKLOG_MS = 1000;

/** `clients` clients sharing `rate` requests/s, Poisson-paced, each with at most one request out. */
async function pacedLoop(opts: {
  url: string;
  rate: number;
  clients: number;
  seconds: number;
  next: () => LoadRequest;
  onSample: (s: Sample) => void;
  transport: TransportLog;
}) {
  const base = new URL(opts.url);
  const start = performance.now();
  const end = opts.seconds * 1000;
  const client = async (seed: number) => {
    const rand = mulberry32(seed);
    let due = 0;
    for (;;) {
      due += (-Math.log(1 - rand()) / (opts.rate / opts.clients)) * 1000;
      if (due >= end) return;
      const wait = start + due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      // A client that fell far behind (its answers came late for more than BACKLOG_MS of its schedule, as when the
      // server slows during the rebuild) does not make up what it would have sent meanwhile: its schedule goes on
      // from now. Making it all up (the bench before 2026-11-30 13:50) offered 110–134 req/s for two minutes after a
      // rebuild, past the mix's saturating rate, and the queue shed what it could not answer in time. A smaller lag
      // (a slow write) is made up, or the rate achieved would fall short of the rate planned.
      else if (wait < -BACKLOG_MS) due = performance.now() - start;
      // A client that fell behind (a long write) does not catch up past the end of the run.
      if (performance.now() - start >= end) return;
      // Latency from when it was sent: a client that fell behind waited for its own previous answer.
      const at = performance.now() - start;
      const r = opts.next();
      const status = await send(base, r, 30_000, opts.transport);
      opts.onSample({ kind: r.kind, at, status, ms: performance.now() - start - at });
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, i) => client(100 + i)));
}

export async function run(args: string[]): Promise<void> {
  const minutes = Number(flag(args, 'minutes', '30'));
  const clients = Number(flag(args, 'clients', '8'));
  const writeEvery = Number(flag(args, 'write-every', '20'));
  const sampleSeconds = Number(flag(args, 'sample-seconds', '30'));
  const warmupMinutes = Number(flag(args, 'warmup-minutes', String(Math.min(2, minutes / 10))));
  // The share of the saturating rate offered. The issue's soak is 0.8; a short run at more (and without the rebuild)
  // shows sooner how often the search queue refuses at a load it should carry.
  const load = Number(flag(args, 'load', '0.8'));
  if (!(load > 0 && load <= 2)) throw new Error(`--load must be a share of the saturating rate in (0, 2], not ${flag(args, 'load', '')}`);
  // Or a fixed offered rate (req/s) instead of a share: the saturating rate measured at the start moves between runs
  // (110-140 req/s on 2026-12-01), so two soaks of different code compared at "80%" differ in load by that much.
  // The saturating rate is still measured and reported beside it.
  const fixedRate = flag(args, 'rate', undefined) === undefined ? null : Number(flag(args, 'rate', ''));
  if (fixedRate !== null && !(fixedRate > 0)) throw new Error(`--rate must be a positive number of requests per second, not ${flag(args, 'rate', '')}`);
  const withRebuild = !has(args, 'no-rebuild');
  // A stall of the whole machine on demand (another tenant, a page-in storm): the server is stopped (SIGSTOP) for
  // freeze-ms every freeze-every seconds and continued. What such a stall costs in refused searches is a property of
  // the admission policy, and a natural stall comes too rarely to compare policies on (one window in some runs).
  const freezeMs = Number(flag(args, 'freeze-ms', '0'));
  const freezeEverySeconds = Number(flag(args, 'freeze-every', '10'));
  if (!(freezeMs >= 0 && freezeEverySeconds > 0)) throw new Error('--freeze-ms must be ≥ 0 and --freeze-every > 0');
  const result = newResult('soak', args);
  const work = mkdtempSync(join(tmpdir(), 'quarry-bench-soak-'));
  const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
  try {
    cpSync(ensureBbcIndex(), join(work, 'index'), { recursive: true });
    const env: Record<string, string> = {
      QUARRY_INDEX_DIR: join(work, 'index'),
      QUARRY_SEEDS_DIR: join(work, 'none'),
      QUARRY_API_KEY: API_KEY,
      // One client address generates the whole load: the per-address search limit would measure itself.
      QUARRY_SEARCH_RATE: '0',
      QUARRY_QUERY_CACHE_SIZE: '0',
      ...serverEnv(args),
    };
    const next = mix(writeEvery);
    // The saturating rate of the mix, on a server of its own over the same index with the search queue unbounded
    // (at the concurrency under test): a closed loop of 16 clients against the protected server measures its
    // overload policy, which under sustained overload runs one search at a time (the 16:23 run of 2026-11-30
    // measured 85.9 req/s there, against 110-126 before that policy), and the soak would offer 80% of that.
    // Writes keep their shipped queue: the mix's writes are what they are. The write pool goes in first.
    let saturation: ReturnType<typeof summarise>;
    const concurrency = searchConcurrencyOf(env);
    const capacityServer = await startServe({ ...env, ...unboundedSearch(concurrency) });
    try {
      const pool = mix(1);
      const base = new URL(capacityServer.url);
      for (let i = 0; i < POOL; i++) {
        const status = await send(base, pool());
        if (status !== 201) throw new Error(`writing the article pool: POST /articles answered ${status}`);
      }
      await closedLoop({ url: capacityServer.url, connections: 2, seconds: 10, next });
      log(`saturation of the mix (search queue unbounded, concurrency ${concurrency})…`);
      saturation = summarise(await closedLoop({ url: capacityServer.url, connections: 16, seconds: 30, next }), 30);
    } finally {
      await capacityServer.stop();
    }
    const server = await startServe(env, { nodeArgs: (flag(args, 'server-node-args', '') || '').split(' ').filter(Boolean) });
    const points: Point[] = [];
    let rebuild: Record<string, unknown> = {};
    let runStartedAt = Date.now();
    let standingEpisodes: ReturnType<typeof standingEpisodesAt> = [];
    let totals: ReturnType<typeof summarise>;
    try {
      // Warm the model and caches of the server under test.
      await closedLoop({ url: server.url, connections: 2, seconds: 10, next });
      const rate = fixedRate ?? round(saturation.throughput * load, 1);
      log(`saturating rate ${saturation.throughput} req/s (2xx); soak at ${rate} req/s for ${minutes} min with ${clients} clients`);

      const all: Sample[] = [];
      let window: Sample[] = [];
      let rebuildState = 'idle';
      // The whole run's transport log, and the window's (reset at each sample).
      type Transport = { keepAliveRetries: number; errors: Record<string, number> };
      const transport: Transport = { keepAliveRetries: 0, errors: {} };
      let windowTransport: Transport = { keepAliveRetries: 0, errors: {} };
      // Server-side refusals, as deltas per window: they say which queue refused and why (the client only sees 503).
      // The sampler's own /metrics reads go through fetch's pooled connections and meet the same keep-alive race as
      // the load (the server closed an idle one as the request went out): one retry, then a sample without them
      // rather than a dead run (the 11:08 run of 2026-11-30 died at its last sample on an ECONNRESET here).
      const metricsText = async (): Promise<string | null> => {
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            return await (await fetch(`${server.url}/metrics`)).text();
          } catch {}
        }
        return null;
      };
      const refusedNow = async (): Promise<Record<string, number>> => {
        const text = await metricsText();
        if (text === null) return refusedBefore;
        const out: Record<string, number> = {};
        for (const m of text.matchAll(/^quarry_overload_refused_total\{queue="(\w+)",reason="(\w+)"\} (\S+)$/gm)) out[`${m[1]}/${m[2]}`] = Number(m[3]);
        return out;
      };
      let refusedBefore: Record<string, number> = {};
      refusedBefore = await refusedNow();
      const t0 = performance.now();
      runStartedAt = Date.now();
      const sampler = setInterval(() => {
        void (async () => {
          const w = window;
          window = [];
          const wt = windowTransport;
          windowTransport = { keepAliveRetries: 0, errors: {} };
          const p = procStats(server.pid);
          const split = anonSplit(server.pid);
          const metrics = (await metricsText()) ?? '';
          const heap = metricValue(metrics, 'nodejs_heap_size_used_bytes') ?? Number.NaN;
          const heapLive = metricValue(metrics, 'quarry_heap_live_bytes') ?? Number.NaN;
          const lagMax = metricValue(metrics, 'nodejs_eventloop_lag_max_seconds') ?? Number.NaN;
          const refusedAfter = await refusedNow();
          const refused = Object.fromEntries(
            Object.entries(refusedAfter)
              .map(([k, v]) => [k, v - (refusedBefore[k] ?? 0)] as const)
              .filter(([, v]) => v > 0),
          );
          refusedBefore = refusedAfter;
          const errorsByStatus: Record<string, number> = {};
          for (const s of w)
            if (s.status < 200 || s.status >= 300) errorsByStatus[`${s.kind} ${s.status}`] = (errorsByStatus[`${s.kind} ${s.status}`] ?? 0) + 1;
          const ok = (kind: string) => w.filter((s) => s.kind === kind && s.status >= 200 && s.status < 300).map((s) => s.ms);
          const point: Point = {
            minute: round((performance.now() - t0) / 60_000, 2),
            rssMiB: round(p.rssMiB, 1),
            heapMiB: round(heap / 2 ** 20, 1),
            heapLiveMiB: round(heapLive / 2 ** 20, 1),
            fds: p.fds,
            searchP99Ms: round(percentile(ok('search'), 99), 1),
            writeP99Ms: round(percentile(ok('write'), 99), 1),
            rate: round(w.length / sampleSeconds, 1),
            errors: w.filter((s) => s.status < 200 || s.status >= 300).length,
            errorsByStatus,
            refused,
            rssAnonMiB: round(p.rssAnonMiB, 1),
            rssFileMiB: round(p.rssFileMiB, 1),
            anonSplitMiB: { brk: round(split.brk, 1), arenas: round(split.arenas, 1), other: round(split.other, 1) },
            v8CommittedMiB: round((metricValue(metrics, 'nodejs_heap_size_total_bytes') ?? Number.NaN) / 2 ** 20, 1),
            externalMiB: round((metricValue(metrics, 'nodejs_external_memory_bytes') ?? Number.NaN) / 2 ** 20, 1),
            chunks: metricValue(metrics, 'quarry_index_chunks') ?? Number.NaN,
            deletedPoints: metricValue(metrics, 'quarry_index_deleted_points') ?? Number.NaN,
            loopLagMaxMs: round(lagMax * 1000, 1),
            rebuild: rebuildState,
            transportErrors: wt.errors,
            keepAliveRetries: wt.keepAliveRetries,
          };
          points.push(point);
          log(JSON.stringify(point));
        })();
      }, sampleSeconds * 1000);
      const freezer =
        freezeMs > 0
          ? setInterval(() => {
              process.kill(server.pid, 'SIGSTOP');
              setTimeout(() => process.kill(server.pid, 'SIGCONT'), freezeMs);
            }, freezeEverySeconds * 1000)
          : null;
      const rebuildRun = (async () => {
        if (!withRebuild) return;
        await new Promise((r) => setTimeout(r, (minutes * 60_000) / 2));
        const started = performance.now();
        const res = await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
        log(`rebuild started: ${res.status}`);
        rebuildState = 'running';
        let status: { state: string; report?: unknown } = { state: 'running' };
        while (status.state === 'running') {
          await new Promise((r) => setTimeout(r, 5000));
          status = (await (await fetch(`${server.url}/admin/rebuild`, { headers: { authorization: `Bearer ${API_KEY}` } })).json()) as typeof status;
        }
        rebuildState = status.state;
        rebuild = { startMinute: round((started - t0) / 60_000, 2), minutes: round((performance.now() - started) / 60_000, 2), ...status };
        log(`rebuild ${status.state} after ${rebuild.minutes} min`);
      })();
      await pacedLoop({
        url: server.url,
        rate,
        clients,
        seconds: minutes * 60,
        next,
        onSample: (s) => {
          all.push(s);
          window.push(s);
        },
        transport: {
          onKeepAliveRetry: () => {
            for (const t of [transport, windowTransport]) t.keepAliveRetries++;
          },
          onError: (code) => {
            for (const t of [transport, windowTransport]) t.errors[code] = (t.errors[code] ?? 0) + 1;
          },
        },
      });
      clearInterval(sampler);
      if (freezer) clearInterval(freezer);
      await rebuildRun;
      totals = summarise(all, minutes * 60);
      const errorsByStatus = Object.fromEntries(Object.entries(totals.byStatus).filter(([st]) => !st.startsWith('2')));
      Object.assign(result, { errorsByStatus, transport });
    } finally {
      await server.stop();
      standingEpisodes = standingEpisodesAt(server.output(), runStartedAt);
    }

    const measured = points.filter((p) => p.minute >= warmupMinutes);
    // Three spans: the whole run after the warm-up, and the steady stretches before the rebuild began and after
    // it ended. A leak shows as a slope inside each stretch; what a rebuild leaves behind shows as a step between.
    const rStart = Number(rebuild.startMinute ?? Number.POSITIVE_INFINITY);
    const rEnd = rStart + Number(rebuild.minutes ?? 0);
    const spans: Record<string, Point[]> = withRebuild
      ? {
          whole: measured,
          beforeRebuild: measured.filter((p) => p.minute < rStart),
          afterRebuild: measured.filter((p) => p.minute > rEnd + sampleSeconds / 60),
        }
      : { whole: measured };
    const fitStretch = (all: Point[], k: keyof typeof FLAT) => {
      // A sample without the metric (the live heap before the server's first full GC) is left out.
      const ps = all.filter((p) => Number.isFinite(p[k]));
      const xs = ps.map((p) => p.minute);
      const ys = ps.map((p) => p[k]);
      const slope = theilSenSlope(xs, ys);
      const med = median(ys);
      const change = slope * (xs.length > 1 ? xs.at(-1)! - xs[0]! : 0);
      const limit = FLAT[k].relative !== undefined ? FLAT[k].relative * med : (FLAT[k].absolute ?? 0);
      return {
        samples: ps.length,
        median: round(med, 1),
        theilSenPerHour: round(slope * 60, 2),
        olsPerHour: round(olsSlope(xs, ys) * 60, 2),
        change: round(change, 2),
        limit: round(limit, 2),
        flat: Math.abs(change) <= limit,
      };
    };
    const trend = Object.fromEntries(
      (Object.keys(FLAT) as Array<keyof typeof FLAT>).map((k) => [k, Object.fromEntries(Object.entries(spans).map(([name, ps]) => [name, fitStretch(ps, k)]))]),
    );
    const errors = Object.entries(totals.byStatus)
      .filter(([st]) => !st.startsWith('2'))
      .reduce((n, [, c]) => n + c, 0);
    Object.assign(result, {
      minutes,
      load: fixedRate === null ? load : null,
      fixedRate,
      withRebuild,
      freeze: freezeMs > 0 ? { ms: freezeMs, everySeconds: freezeEverySeconds } : null,
      clients,
      writeEvery,
      sampleSeconds,
      warmupMinutes,
      saturation,
      totals,
      rebuild,
      points,
      trend,
      errors,
      standingEpisodes,
      flatDefinition: FLAT,
    });
    const file = writeResult(result);
    type Fit = ReturnType<typeof fitStretch>;
    const t = trend as Record<string, Record<string, Fit>>;
    const every = Math.max(1, Math.round(300 / sampleSeconds));
    const body = [
      `Mix: 1 write in ${writeEvery} requests (a bbc-news article replacing one of ${POOL}), the rest hybrid searches (held-out queries, query cache off). Saturating rate of the mix: **${saturation.throughput} req/s** (closed loop, 16 clients, 30 s, on a server of its own with the search queue unbounded); soak at ${fixedRate === null ? `${round(load * 100, 0)}% = ${round(saturation.throughput * load, 1)} req/s` : `a fixed ${fixedRate} req/s (--rate; ${round((100 * fixedRate) / saturation.throughput, 0)}% of it)`} offered by ${clients} Poisson-paced clients for ${minutes} min; achieved ${totals.offered} req/s. ${withRebuild ? `Rebuild at minute ${rebuild.startMinute} took ${rebuild.minutes} min (${rebuild.state}).` : 'No rebuild (--no-rebuild).'}`,
      '',
      `**Errors: ${errors}** of ${totals.requests} requests (non-2xx or transport errors${errors ? `: ${JSON.stringify(result.errorsByStatus)}` : ''}; transport errors by code ${JSON.stringify((result.transport as { errors: unknown }).errors)}; requests sent again after a keep-alive race, as HTTP clients do: ${(result.transport as { keepAliveRetries: number }).keepAliveRetries}). Latency over the whole run (2xx): p50 ${totals.p50} ms, p99 ${totals.p99} ms.`,
      '',
      `Search queue shedding episodes (from the server's log): ${episodeSummary(standingEpisodes)}.`,
      '',
      `Slopes (Theil–Sen: the median of all pairwise slopes, robust to the rebuild's transient; least squares beside it) over the whole run after a ${warmupMinutes}-minute warm-up, and over the steady stretches before the rebuild began and after it ended. "Flat" = the fitted change over the stretch within the limit (RSS ±${(FLAT.rssMiB.relative ?? 0) * 100}% of its median, V8 heap live after a full GC ±${(FLAT.heapLiveMiB.relative ?? 0) * 100}%, open fds ±${FLAT.fds.absolute}, search p99 ±${(FLAT.searchP99Ms.relative ?? 0) * 100}%); a leak shows as a slope inside a stretch, what the rebuild leaves behind as a step between them.`,
      '',
      markdownTable(
        ['metric', 'stretch', 'samples', 'median', 'slope /h (Theil–Sen)', 'slope /h (OLS)', 'change over stretch', 'flat limit', 'flat?'],
        Object.entries(t).flatMap(([k, byStretch]) =>
          Object.entries(byStretch).map(([stretch, v]) => [
            k,
            stretch,
            v.samples,
            v.median,
            v.theilSenPerHour,
            v.olsPerHour,
            v.change,
            `±${v.limit}`,
            v.flat ? 'yes' : '**no**',
          ]),
        ),
      ),
      '',
      `Samples (every ${every * sampleSeconds} s, and every one with errors or during the rebuild; all in the raw file):`,
      '',
      markdownTable(
        ['minute', 'rebuild', 'RSS MiB (anon / file)', 'heap MiB (live after GC)', 'fds', 'search p99 ms', 'write p99 ms', 'req/s', 'errors'],
        points
          .filter((p, i) => i % every === every - 1 || p.errors > 0 || p.rebuild === 'running')
          .map((p) => [
            p.minute,
            p.rebuild,
            `${p.rssMiB} (${p.rssAnonMiB} / ${p.rssFileMiB})`,
            `${p.heapMiB} (${p.heapLiveMiB})`,
            p.fds,
            p.searchP99Ms,
            p.writeP99Ms,
            p.rate,
            p.errors ? `${p.errors} ${JSON.stringify(p.errorsByStatus)}` : 0,
          ]),
      ),
      '',
      `Raw: \`${file.slice(file.indexOf('bench/results'))}\``,
    ].join('\n');
    console.log(body);
    if (!has(args, 'no-doc')) updateDoc('soak', result, body);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
