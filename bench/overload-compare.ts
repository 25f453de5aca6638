/**
 * `npm run bench -- overload-compare [--rate R] [--seconds 15] [--generator-nice 10] 'label:K=V,K=V' ...`
 *
 * Several admission settings side by side at one fixed offered rate, in one run (the machine's capacity drifts
 * between runs by more than the settings move the tail, docs/benchmarks.md overload): for each setting a fresh
 * `quarry serve` on the bbc-news index (as `overload`: real model, query cache off, rate limits off), then the
 * unloaded latency (1 client, 10 s), an open loop at `rate` (2× the saturating rate when --rate is left out: it is
 * then measured first, as `overload` does), at once an open loop at 0.4 × `rate` (80% of saturation right after the
 * overload: what must not be refused once it passes), and after 3 s idle another 15 s at 0.4 × `rate` from a calm
 * server (where a Poisson burst must not pass for an overload). For the overload it also gives the p99 from 1 s in
 * (the onset left out) and when the search queue's episodes began: one that begins again mid-row means the queue gave
 * its slot back too early. Prints one line per setting and writes bench/results/overload-compare-*.json. For choosing settings;
 * `overload` is the measurement of record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag } from './lib/args.ts';
import { ensureBbcIndex } from './lib/bbc-index.ts';
import { closedLoop, openLoop, p99AfterOnset, summarise } from './lib/http-load.ts';
import { newResult, writeResult } from './lib/results.ts';
import { atGeneratorPriority, searchRequests, unboundedSearch } from './lib/search-load.ts';
import { metricValue, startServe } from './lib/serve-child.ts';
import { countEpisodes } from './lib/standing-episodes.ts';
import { round } from './lib/stats.ts';

/** The capacity measurement: the shipped concurrency, nothing refused. */
const UNBOUNDED = unboundedSearch(2);

export async function run(args: string[]): Promise<void> {
  const seconds = Number(flag(args, 'seconds', '15'));
  const generatorNice = Number(flag(args, 'generator-nice', '10'));
  const specs = args.filter((a) => !a.startsWith('--') && /^[^:]+:/.test(a));
  const next = searchRequests();
  const seeds = mkdtempSync(join(tmpdir(), 'quarry-bench-noseeds-'));
  const baseEnv = { QUARRY_INDEX_DIR: ensureBbcIndex(), QUARRY_SEEDS_DIR: seeds, QUARRY_SEARCH_RATE: '0', QUARRY_QUERY_CACHE_SIZE: '0' };
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const generating = atGeneratorPriority(generatorNice, (line) => log(line));
  const serve = async (env: Record<string, string>) => {
    const s = await startServe({ ...baseEnv, ...env });
    await closedLoop({ url: s.url, connections: 2, seconds: 3, next });
    return s;
  };
  const result = newResult('overload-compare', args);
  const loadAtStart = round(loadavg()[0]!, 2);
  try {
    let rate = Number(flag(args, 'rate', '0'));
    if (!rate) {
      const cap = await serve(UNBOUNDED);
      try {
        const sat = summarise(await generating(() => closedLoop({ url: cap.url, connections: 16, seconds, next })), seconds);
        rate = round(sat.throughput * 2, 1);
        result.saturation = sat;
        log(`saturation ${sat.throughput} req/s (16 clients, queue unbounded): 2× = ${rate}/s`);
      } finally {
        await cap.stop();
      }
    }
    const rows: Array<Record<string, unknown>> = [];
    for (const spec of specs) {
      const label = spec.slice(0, spec.indexOf(':'));
      const env = Object.fromEntries(
        spec
          .slice(spec.indexOf(':') + 1)
          .split(',')
          .filter(Boolean)
          .map((kv) => kv.split('=') as [string, string]),
      );
      const s = await serve(env);
      try {
        const load = round(loadavg()[0]!, 2);
        const unloaded = summarise(await generating(() => closedLoop({ url: s.url, connections: 1, seconds: 10, next })), 10);
        const outputAt = s.output().length;
        const doubleStartedAt = Date.now();
        const doubleSamples = await generating(() => openLoop({ url: s.url, rate, seconds, next, seed: 2 }));
        const double = { ...summarise(doubleSamples, seconds), steadyP99: p99AfterOnset(doubleSamples) };
        const episodes = countEpisodes(s.output().slice(outputAt), doubleStartedAt);
        const light = summarise(await generating(() => openLoop({ url: s.url, rate: rate * 0.4, seconds: 10, next, seed: 1 })), 10);
        await new Promise((r) => setTimeout(r, 3_000));
        const calm = summarise(await generating(() => openLoop({ url: s.url, rate: rate * 0.4, seconds, next, seed: 3 })), seconds);
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        const refused = Object.fromEntries(
          ['queue_full', 'queue_timeout', 'loop_lag'].map((r) => [r, metricValue(metrics, 'quarry_overload_refused_total', `queue="search",reason="${r}"`)]),
        );
        const ratio = round(double.p99 / unloaded.p99, 2);
        const steadyRatio = round(double.steadyP99 / unloaded.p99, 2);
        rows.push({ label, env, load, unloaded, double, episodes, light, calm, refused, ratio, steadyRatio });
        log(
          `${label} (load ${load}): unloaded p50/p99 ${unloaded.p50}/${unloaded.p99} ms | at ${rate}/s: 2xx ${double.throughput}/s, p50/p99 ${double.p50}/${double.p99} ms, refused ${round(double.share503 * 100, 1)}%, generator late p99 ${double.lateP99} ms, ratio ${ratio}× (from 1 s in: p99 ${double.steadyP99} ms, ${steadyRatio}×; episodes began at ${JSON.stringify(episodes.beganAtS)} s, ended by ${JSON.stringify(episodes.endedBy)}) | at ${round(rate * 0.4, 1)}/s: p99 ${light.p99} ms, refused ${round(light.share503 * 100, 1)}%; from calm: p99 ${calm.p99} ms, refused ${round(calm.share503 * 100, 1)}%`,
        );
      } finally {
        await s.stop();
      }
    }
    Object.assign(result, { seconds, rate, generatorNice, loadAtStart, rows });
    log(`raw: ${writeResult(result)}`);
  } finally {
    rmSync(seeds, { recursive: true, force: true });
  }
}
