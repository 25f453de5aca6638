/**
 * `npm run bench -- snapshot [--chunks 100000] [--seconds 15] [--build-only] [--no-doc]`
 *
 * How long a snapshot holds writes back, and what it costs the requests around it, on an index of ~100k
 * chunks: a `quarry serve` child on a copy of the index, one client writing one article at a time (the real
 * model embeds it) and one searching, continuously; `POST /admin/snapshot` in the middle. Reports the server's
 * own measure of the hold (`writesHeldMs`: the capture inside the mutation queue), the snapshot's duration
 * and size, write and search latency before / during / after it, and how long `quarry restore` takes.
 *
 * The index (bench/cache, built once) has the real text of bbc-news, SciFact and Reuters-21578 chunked by
 * Quarry's chunker with the real tokenizer; its vectors are perturbed copies of 1,000 real paragraph
 * embeddings (bench/lib/dataset.ts): what is measured is copying files and holding locks, which does not
 * depend on what the vectors mean, and embedding 100k paragraphs would take this machine half an hour.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { buildIndex } from '../src/core/build-index.ts';
import { identityOf } from '../src/core/open-or-build.ts';
import { createEmbedder } from '../src/runtime.ts';
import { openStore } from '../src/store/open-store.ts';
import { currentGenerationDir } from '../src/store/sqlite/index-dir.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { articlesFor, bbcTitles, paragraphs, seededShuffle } from './lib/corpus.ts';
import { vectorSet } from './lib/dataset.ts';
import { closedLoop, type LoadRequest, type Sample } from './lib/http-load.ts';
import { precomputedEmbedder } from './lib/precomputed-embedder.ts';
import { markdownTable, newResult, updateDoc, writeResult } from './lib/results.ts';
import { startServe } from './lib/serve-child.ts';
import { percentile, round } from './lib/stats.ts';
import { CACHE_DIR, type LoadedCache } from './lib/vector-cache.ts';

const API_KEY = 'bench-snapshot-key-0123456789';

async function buildSyntheticIndex(indexDir: string, target: number): Promise<Record<string, unknown>> {
  const config = loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, logLevel: 'silent' } });
  const real = await createEmbedder(config);
  try {
    const sample = seededShuffle(paragraphs('bbc-news')).slice(0, 1000);
    const vectors = await real.embedPassages(sample.map((p) => p.text));
    const dims = real.info.dims;
    const flat = new Float32Array(vectors.length * dims);
    vectors.forEach((v, i) => flat.set(v, i * dims));
    const cache = { header: { dims, count: vectors.length }, vectors: flat, queries: new Float32Array() } as unknown as LoadedCache;
    const synthetic = vectorSet(cache, target);
    let next = 0;
    const pre = precomputedEmbedder(real, new Map(), () => {
      const i = next++ % synthetic.n;
      return synthetic.data.subarray(i * dims, (i + 1) * dims);
    });
    const articles = articlesFor(target);
    const t0 = performance.now();
    const store = await openStore(config, { identity: identityOf(config, pre.info), access: 'write' });
    const report = await buildIndex(store, pre, config, { articles, source: { kind: 'empty' } });
    await store.close();
    return { articles: articles.length, chunks: report.chunks, seconds: round((performance.now() - t0) / 1000, 1) };
  } finally {
    await real.close();
  }
}

const stats = (xs: number[]) => ({
  n: xs.length,
  p50: round(percentile(xs, 50), 1),
  p99: round(percentile(xs, 99), 1),
  max: round(xs.length ? Math.max(...xs) : Number.NaN, 1),
});

export async function run(args: string[]): Promise<void> {
  const target = Number(flag(args, 'chunks', '100000'));
  const seconds = Number(flag(args, 'seconds', '15'));
  const cached = join(CACHE_DIR, `snapshot-index-${target}`);
  const result = newResult('snapshot', args);
  if (!currentGenerationDir(cached)) {
    process.stderr.write(`building ${cached} (once)…\n`);
    result.build = await buildSyntheticIndex(cached, target);
  }
  if (has(args, 'build-only')) return;
  const work = mkdtempSync(join(tmpdir(), 'quarry-bench-snapshot-'));
  try {
    const live = join(work, 'index');
    cpSync(cached, live, { recursive: true });
    const server = await startServe({
      QUARRY_INDEX_DIR: live,
      QUARRY_SEEDS_DIR: join(work, 'none'),
      QUARRY_API_KEY: API_KEY,
      QUARRY_SNAPSHOTS_DIR: join(work, 'snaps'),
      QUARRY_SEARCH_RATE: '0',
    });
    let snapshot: Record<string, unknown>;
    let phases: { snapshotStart: number; snapshotEnd: number };
    const samples: Sample[] = [];
    try {
      const titles = seededShuffle(bbcTitles());
      let n = 0;
      const write = (): LoadRequest => {
        const id = `bench-write-${n++}`;
        const title = titles[n % titles.length]!;
        return {
          method: 'POST',
          path: '/articles',
          kind: 'write',
          headers: { authorization: `Bearer ${API_KEY}` },
          body: JSON.stringify({
            id,
            title,
            paragraphs: [`${title}: a first paragraph written while the snapshot runs, number ${n}.`, `A second paragraph about ${title.toLowerCase()}.`],
          }),
        };
      };
      const search = (): LoadRequest => ({ method: 'GET', path: `/search?q=${encodeURIComponent(titles[n % titles.length]!)}`, kind: 'search' });
      await closedLoop({ url: server.url, connections: 1, seconds: 3, next: write });
      const start = performance.now();
      let snapshotStart = 0;
      let snapshotEnd = 0;
      const snap = (async () => {
        await new Promise((r) => setTimeout(r, seconds * 1000));
        snapshotStart = performance.now() - start;
        const res = await fetch(`${server.url}/admin/snapshot`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
        snapshotEnd = performance.now() - start;
        if (res.status !== 201) throw new Error(`POST /admin/snapshot answered ${res.status}: ${await res.text()}`);
        return (await res.json()) as Record<string, unknown>;
      })();
      const loadSeconds = seconds * 2 + 30;
      const [writes, searches, s] = await Promise.all([
        closedLoop({ url: server.url, connections: 1, seconds: loadSeconds, next: write }),
        closedLoop({ url: server.url, connections: 1, seconds: loadSeconds, next: search }),
        snap,
      ]);
      snapshot = s;
      phases = { snapshotStart, snapshotEnd };
      samples.push(...writes, ...searches);
    } finally {
      await server.stop();
    }
    const errors = samples.filter((s) => s.status < 200 || s.status >= 300).length;
    // A request belongs to the snapshot when it overlapped it at all.
    const during = (s: Sample) => s.at + s.ms >= phases.snapshotStart && s.at <= phases.snapshotEnd;
    const window = (kind: string, f: (s: Sample) => boolean) => stats(samples.filter((s) => s.kind === kind && f(s)).map((s) => s.ms));
    const latency = {
      writeBefore: window('write', (s) => s.at + s.ms < phases.snapshotStart),
      writeDuring: window('write', during),
      writeAfter: window('write', (s) => s.at > phases.snapshotEnd),
      searchBefore: window('search', (s) => s.at + s.ms < phases.snapshotStart),
      searchDuring: window('search', during),
      searchAfter: window('search', (s) => s.at > phases.snapshotEnd),
    };

    // Restore it into a fresh folder with the CLI, as an operator would.
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
    const t0 = performance.now();
    const restore = spawnSync(process.execPath, ['bin/quarry.js', 'restore', snapshot.dir as string], {
      cwd: ROOT,
      env: { ...base, QUARRY_INDEX_DIR: join(work, 'restored'), QUARRY_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    const restoreSeconds = round((performance.now() - t0) / 1000, 2);
    if (restore.status !== 0) throw new Error(`quarry restore failed: ${restore.stderr}`);

    const report = snapshot as { seconds: number; writesHeldMs: number; bytes: number; chunks: number; articles: number; details: Record<string, unknown> };
    Object.assign(result, {
      target,
      seconds,
      snapshot: { ...report, files: undefined },
      latency,
      errors,
      restoreSeconds,
      restoreCommandIncludesProcessStart: true,
    });
    const file = writeResult(result);
    const body = [
      `Index: ${report.chunks} chunks (${report.articles} articles), ${round(report.bytes / 2 ** 20, 1)} MiB in the snapshot. One client writing one article per request and one searching, continuously; the snapshot taken ${seconds} s in.`,
      '',
      markdownTable(
        ['writes held (server, capture)', 'snapshot s', 'database copy ms', 'changes to replay', 'restore s (CLI, incl. start)', 'errors'],
        [[report.writesHeldMs, report.seconds, String(report.details.databaseCopyMs), String(report.details.changesToReplay), restoreSeconds, errors]],
      ),
      '',
      markdownTable(
        ['requests', 'before: p50 / p99 / max ms', 'during: p50 / p99 / max ms', 'after: p50 / p99 / max ms'],
        (['write', 'search'] as const).map((k) => {
          const b = latency[`${k}Before`];
          const d = latency[`${k}During`];
          const a = latency[`${k}After`];
          return [`${k} (n during = ${d.n})`, `${b.p50} / ${b.p99} / ${b.max}`, `${d.p50} / ${d.p99} / ${d.max}`, `${a.p50} / ${a.p99} / ${a.max}`];
        }),
      ),
      '',
      `Raw: \`${file.slice(file.indexOf('bench/results'))}\``,
    ].join('\n');
    console.log(body);
    if (!has(args, 'no-doc')) updateDoc('snapshot', result, body);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
