/**
 * `npm run bench -- serve-memory [--rounds 2] [--dtypes q8,q4] [--searches 200] [--batches 10] [--no-doc]`
 *
 * Resident memory of a serving process, dtype against dtype: `quarry serve` (both embedding workers: the query
 * worker and the passage session(s), the defaults) in a child process on a fresh index of the project's
 * seeds, then the work that wakes every session — `searches` hybrid searches (SciFact test queries and bbc-news
 * titles, each different) and `batches` POST /articles of 16 bbc-news articles each. RSS is read from
 * /proc/<pid>/status after start, after the searches and after the writes, with VmHWM (the peak). The
 * dtypes alternate round by round (the order reversed every other round), so both see the same machine.
 * Memory here is mostly ONNX Runtime: each session's weights and the arena it keeps at its peak batch.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, has, ROOT } from './lib/args.ts';
import { bbcArticles } from './lib/bbc-index.ts';
import { bbcTitles, scifactQueries, seededShuffle } from './lib/corpus.ts';
import { markdownTable, newResult, updateDoc, writeResult } from './lib/results.ts';
import { type ServeChild, startServe } from './lib/serve-child.ts';
import { median, round } from './lib/stats.ts';

const API_KEY = 'bench-serve-memory-key-0123456789';
const BATCH = 16;

function memory(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssMiB: round(kib('VmRSS') / 1024, 0), hwmMiB: round(kib('VmHWM') / 1024, 0) };
}

async function expectOk(res: Response, what: string): Promise<void> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

async function measure(dtype: string, searches: string[], batches: number, round: number): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'quarry-bench-memory-'));
  let server: ServeChild | null = null;
  try {
    const seeds = join(work, 'seeds');
    cpSync(join(ROOT, 'seeds'), seeds, { recursive: true });
    server = await startServe({
      QUARRY_DTYPE: dtype,
      QUARRY_INDEX_DIR: join(work, 'index'),
      QUARRY_SEEDS_DIR: seeds,
      QUARRY_API_KEY: API_KEY,
      QUARRY_SEARCH_RATE: '0',
      QUARRY_WRITE_RATE: '0',
      QUARRY_QUERY_CACHE_SIZE: '0',
    });
    const started = memory(server.pid);
    for (const q of searches) await expectOk(await fetch(`${server.url}/search?q=${encodeURIComponent(q)}`), 'search');
    const afterSearches = memory(server.pid);
    const articles = bbcArticles();
    for (let b = 0; b < batches; b++) {
      const batch = articles.slice(b * BATCH, (b + 1) * BATCH);
      const res = await fetch(`${server.url}/articles`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ articles: batch }),
      });
      await expectOk(res, 'POST /articles');
    }
    const afterWrites = memory(server.pid);
    const row = { round, dtype, started, afterSearches, afterWrites, load: round2(loadavg()[0]!) };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const round2 = (x: number) => round(x, 2);

export async function run(args: string[]): Promise<void> {
  const rounds = Number(flag(args, 'rounds', '2'));
  const dtypes = flag(args, 'dtypes', 'q8,q4').split(',');
  const nSearches = Number(flag(args, 'searches', '200'));
  const batches = Number(flag(args, 'batches', '10'));
  const sq = scifactQueries();
  const bt = seededShuffle(bbcTitles());
  const searches = Array.from({ length: nSearches }, (_, i) => (i % 2 === 0 ? sq[i >> 1] : bt[i >> 1])!);
  const result = newResult('serve-memory', args);
  const runs: Array<Record<string, unknown>> = [];
  for (let r = 0; r < rounds; r++) {
    for (const dtype of r % 2 === 0 ? dtypes : dtypes.slice().reverse()) runs.push(await measure(dtype, searches, batches, r));
  }
  result.runs = runs;
  type Mem = { rssMiB: number; hwmMiB: number };
  const by = dtypes.map((dtype) => {
    const mine = runs.filter((x) => x.dtype === dtype) as Array<{ started: Mem; afterSearches: Mem; afterWrites: Mem }>;
    return {
      dtype,
      startedMiB: median(mine.map((x) => x.started.rssMiB)),
      afterSearchesMiB: median(mine.map((x) => x.afterSearches.rssMiB)),
      afterWritesMiB: median(mine.map((x) => x.afterWrites.rssMiB)),
      peakMiB: Math.max(...mine.map((x) => x.afterWrites.hwmMiB)),
    };
  });
  result.byDtype = by;
  const ref = by[0]!;
  const rows = by.map((b) => [b.dtype, b.startedMiB, b.afterSearchesMiB, b.afterWritesMiB, b.peakMiB, round(b.afterWritesMiB / ref.afterWritesMiB, 2)]);
  const table = markdownTable(['dtype', 'RSS after start (MiB)', 'after searches', 'after writes', 'peak (VmHWM)', `after writes vs ${ref.dtype}`], rows);
  console.log(table);
  const file = writeResult(result);
  console.log(`wrote ${file}`);
  if (!has(args, 'no-doc'))
    updateDoc(
      'serve-memory',
      result,
      `${table}\n\nMedians over ${rounds} rounds; ${nSearches} hybrid searches, then ${batches} POST /articles of ${BATCH} bbc-news articles, on a fresh index of the seeds; both embedding workers on (the defaults).`,
    );
}
