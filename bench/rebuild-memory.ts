/**
 * `npm run bench -- rebuild-memory [--rebuilds 3] [--index bbc|fresh] [--articles 200] [--bulk] [--trickle-ms 0] [--server-env K=V,…] [--no-doc]`
 *
 * Whether a live rebuild leaves the server's memory higher each time (a leak) or once (a high-water mark): the
 * soak (docs/benchmarks.md) found RSS flat before and after its one rebuild but +650 MiB across it. `quarry serve`
 * (as `npm start` runs it) on a copy of the bbc-news index (`--index bbc`, as the soak: 2,225 articles) or a fresh one
 * (`--index fresh`), then `articles` bbc-news articles written through the API (as the soak's pool), no other load;
 * then `rebuilds` times `POST /admin/rebuild`, each followed by waiting for the rebuild to succeed and for its
 * background passage sessions to close (the process's thread count back to where it was before). `--bulk` first
 * writes the same articles again in one request (one big call to the live passage session); `--trickle-ms` writes
 * one of them every that many ms while each rebuild runs, as the soak's clients do, so its catch-up rounds replay
 * writes (the last one with writes held, on the live passage session). After the writes and after each rebuild:
 * RSS, its anonymous memory by region (lib/serve-child.ts anonSplit), V8's heap, the largest anonymous mappings, the
 * threads. Found (docs/benchmarks.md, soak): a rebuild leaves nothing behind; the first large batch on the live
 * passage session (a bulk write, or a rebuild's catch-up under writes) raises RSS once by ~500 MiB (ONNX Runtime's
 * arena keeping that batch's working set), and nothing after it does.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, has, serverEnv } from './lib/args.ts';
import { bbcArticles, ensureBbcIndex } from './lib/bbc-index.ts';
import { seededShuffle } from './lib/corpus.ts';
import { markdownTable, newResult, updateDoc, writeResult } from './lib/results.ts';
import { anonSplit, largestAnonMappings, metricValue, procStats, type ServeChild, startServe } from './lib/serve-child.ts';
import { round } from './lib/stats.ts';

const API_KEY = 'bench-rebuild-memory-key-0123456789';

async function sample(server: ServeChild, label: string): Promise<Record<string, unknown>> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const p = procStats(server.pid);
  const split = anonSplit(server.pid);
  const mib = (name: string) => round((metricValue(metrics, name) ?? 0) / 2 ** 20, 1);
  return {
    label,
    rssMiB: round(p.rssMiB, 1),
    brk: round(split.brk, 1),
    arenas: round(split.arenas, 1),
    other: round(split.other, 1),
    v8UsedMiB: mib('nodejs_heap_size_used_bytes'),
    v8CommittedMiB: mib('nodejs_heap_size_total_bytes'),
    externalMiB: mib('nodejs_external_memory_bytes'),
    threads: p.threads,
    largestAnonMiB: largestAnonMappings(server.pid).map((m) => round(m, 1)),
  };
}

/** Polls until `done` holds, every 500 ms, for at most `limitMs`. */
async function until(done: () => Promise<boolean> | boolean, limitMs: number, what: string): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${limitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function run(args: string[]): Promise<void> {
  const rebuilds = Number(flag(args, 'rebuilds', '3'));
  const count = Number(flag(args, 'articles', '200'));
  const index = flag(args, 'index', 'bbc');
  if (index !== 'bbc' && index !== 'fresh') throw new Error(`--index: bbc or fresh, got ${index}`);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const work = mkdtempSync(join(tmpdir(), 'quarry-bench-rebuild-memory-'));
  const result = newResult('rebuild-memory', args);
  const loadAtStart = round(loadavg()[0]!, 2);
  const env = { QUARRY_INDEX_DIR: join(work, 'index'), QUARRY_SEEDS_DIR: join(work, 'none'), QUARRY_API_KEY: API_KEY, ...serverEnv(args) };
  const auth = { authorization: `Bearer ${API_KEY}` };
  mkdirSync(env.QUARRY_SEEDS_DIR, { recursive: true });
  if (index === 'bbc') cpSync(ensureBbcIndex(), env.QUARRY_INDEX_DIR, { recursive: true });
  const server = await startServe(env);
  const rows: Array<Record<string, unknown>> = [];
  try {
    const articles = seededShuffle(bbcArticles(), 3).slice(0, count);
    const write = async (batch: typeof articles, offset: number) => {
      const res = await fetch(`${server.url}/articles`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ articles: batch.map((a, j) => ({ ...a, id: `pool-${offset + j}` })) }),
      });
      if (!res.ok) throw new Error(`writing articles: HTTP ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    };
    for (let i = 0; i < articles.length; i += 16) await write(articles.slice(i, i + 16), i);
    const threadsAtRest = procStats(server.pid).threads;
    rows.push(await sample(server, `after ${count} writes (16 a request)`));
    log(JSON.stringify(rows.at(-1)));
    if (has(args, 'bulk')) {
      const started = performance.now();
      await write(articles, 0);
      const bulkSeconds = round((performance.now() - started) / 1000, 1);
      rows.push({ ...(await sample(server, `after the ${count} again in one request`)), bulkSeconds });
      log(JSON.stringify(rows.at(-1)));
    }
    const trickleMs = Number(flag(args, 'trickle-ms', '0'));
    let trickled = 0;
    let trickleRefused = 0;
    for (let r = 1; r <= rebuilds; r++) {
      const started = performance.now();
      const res = await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: auth });
      if (res.status !== 202) throw new Error(`POST /admin/rebuild: HTTP ${res.status} ${await res.text()}`);
      let peakRss = 0;
      let rebuilding = true;
      const trickle = (async () => {
        for (let n = 0; trickleMs > 0 && rebuilding; n++) {
          // A write refused while the rebuild holds writes (503) is not the bench's failure: counted, not thrown.
          await write([articles[n % articles.length]!], n % articles.length).then(
            () => trickled++,
            () => trickleRefused++,
          );
          await new Promise((res) => setTimeout(res, trickleMs));
        }
      })();
      await until(
        async () => {
          peakRss = Math.max(peakRss, procStats(server.pid).rssMiB);
          const status = (await (await fetch(`${server.url}/admin/rebuild`, { headers: auth })).json()) as { state: string };
          if (status.state === 'failed') throw new Error(`rebuild ${r} failed: ${JSON.stringify(status)}`);
          return status.state === 'succeeded';
        },
        30 * 60_000,
        `rebuild ${r}`,
      ).finally(() => (rebuilding = false));
      await trickle;
      const seconds = round((performance.now() - started) / 1000, 1);
      // Its background sessions close once idle (worker-embedder.ts): the threads they started are gone then.
      await until(() => procStats(server.pid).threads <= threadsAtRest, 5 * 60_000, `rebuild ${r}'s sessions closing`);
      rows.push({
        ...(await sample(server, `after rebuild ${r}`)),
        rebuildSeconds: seconds,
        peakRssMiB: round(peakRss, 1),
        writesDuring: trickled,
        writesRefused: trickleRefused,
      });
      trickled = 0;
      trickleRefused = 0;
      log(JSON.stringify(rows.at(-1)));
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
  Object.assign(result, { rebuilds, index, articles: count, serverEnv: serverEnv(args), loadAtStart, rows });
  const raw = writeResult(result);
  log(`raw: ${raw}`);
  if (has(args, 'no-doc')) return;
  const table = markdownTable(
    ['after', 'RSS MiB', 'main arena', 'other arenas', 'other anon', 'V8 committed', 'external', 'threads', 'largest anon mappings (MiB)'],
    rows.map((r) => [
      String(r.label),
      String(r.rssMiB),
      String(r.brk),
      String(r.arenas),
      String(r.other),
      String(r.v8CommittedMiB),
      String(r.externalMiB),
      String(r.threads),
      (r.largestAnonMiB as number[]).join(', '),
    ]),
  );
  updateDoc('rebuild-memory', result, `${table}\n\nRaw: \`${raw}\`.`);
}
