/**
 * `npm run bench -- rebuild [--source bbc-news] [--limit N] [--rounds 2] [--variants 'q8 1x2,q8 2x1,q4 1x2']
 *   [--before REF] [--no-profile] [--profile-only] [--block NAME]`
 *
 * `npm run rebuild-index` end to end over a whole data set (../shared/data, converted at run time into a temporary
 * folder of article files with scripts/dataset-to-articles.mjs), each variant a child process (`node bin/quarry.js
 * rebuild-index`) on a fresh index, variants interleaved round by round (the order reversed every other round).
 * A variant is a dtype and a passage-session layout (`q8 2x1`: two sessions of one intra-op thread each), and
 * optionally a passage batch size (`q8 2x1 b8`: QUARRY_EMBED_BATCH_SIZE=8). With
 * `--before REF`, the same command from that commit (extracted with `git archive` into a temporary folder that
 * borrows this checkout's node_modules and models) runs as variants `before q8` and `before q4`.
 *
 * Then a stage profile, in this process, with the default configuration: read and parse, chunk and tokenise,
 * worker messaging, model (session.run), pooling, SQLite + FTS5, HNSW — once with the stages one after another
 * (each stage's CPU time is its own then) and once pipelined as `rebuild-index` runs them (wall only).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { buildIndex } from '../src/core/build-index.ts';
import { identityOf, loadFolderArticles } from '../src/core/open-or-build.ts';
import { createEmbedder } from '../src/runtime.ts';
import { openStore } from '../src/store/open-store.ts';
import { StageProfile } from '../src/util/stage-profile.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { runChild } from './lib/child-run.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { median, round } from './lib/stats.ts';

interface Variant {
  name: string;
  cwd: string;
  env: Record<string, string>;
}

const parseVariant = (name: string, cwd: string): Variant => {
  const m = /^(?:before )?(\w+)(?: (\d+)x(\d+))?(?: b(\d+))?$/.exec(name.trim());
  if (!m) throw new Error(`variant "${name}": expected e.g. "q8 2x1" or "q8 1x2 b8" (dtype, sessions x threads, batch size)`);
  const env: Record<string, string> = { QUARRY_DTYPE: m[1]! };
  if (m[2]) Object.assign(env, { QUARRY_PASSAGE_SESSIONS: m[2], QUARRY_PASSAGE_THREADS: m[3]! });
  if (m[4]) env.QUARRY_EMBED_BATCH_SIZE = m[4];
  return { name: name.trim(), cwd, env };
};

/** The tree of `ref`, built, in a temporary folder using this checkout's node_modules and models. */
function checkoutBefore(ref: string): string {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = join(tmpdir(), `quarry-before-${commit}`);
  if (!existsSync(join(dir, 'dist', '.build-stamp'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${dir}`], { cwd: ROOT });
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    rmSync(join(dir, 'models'), { recursive: true, force: true });
    symlinkSync(join(ROOT, 'models'), join(dir, 'models'));
    execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}

const LINE = /indexed (\d+) articles, (\d+) chunks in ([\d.]+) s \(([\d.]+) chunks\/s/;

export async function run(args: string[]): Promise<void> {
  const source = flag(args, 'source', 'bbc-news');
  const limit = flag(args, 'limit', undefined);
  const rounds = Number(flag(args, 'rounds', '2'));
  const before = flag(args, 'before', undefined);
  const variantNames = flag(args, 'variants', 'q8 1x2,q8 2x1,q4 1x2')
    .split(',')
    .filter((v) => v.trim() !== '');
  const result = newResult('rebuild', args);
  const work = mkdtempSync(join(tmpdir(), 'quarry-bench-rebuild-'));
  const seeds = join(work, 'articles');
  try {
    execFileSync(process.execPath, ['scripts/dataset-to-articles.mjs', source, seeds, ...(limit ? ['--limit', limit] : [])], { cwd: ROOT, stdio: 'inherit' });
    const variants = has(args, 'profile-only') ? [] : variantNames.map((n) => parseVariant(n, ROOT));
    if (before && !has(args, 'profile-only')) {
      const dir = checkoutBefore(before);
      variants.unshift(parseVariant('before q4', dir), parseVariant('before q8', dir));
    }

    const runs: Array<Record<string, unknown>> = [];
    for (let r = 0; r < rounds && variants.length > 0; r++) {
      for (const v of r % 2 === 0 ? variants : variants.slice().reverse()) {
        const index = join(work, 'index');
        rmSync(index, { recursive: true, force: true });
        const env = { ...process.env, ...v.env, QUARRY_LOG_LEVEL: 'warn' };
        const c = await runChild(process.execPath, ['bin/quarry.js', 'rebuild-index', '--seeds', seeds, '--index', index], { cwd: v.cwd, env });
        const m = LINE.exec(c.stdout);
        if (c.code !== 0 || !m) throw new Error(`${v.name}: rebuild-index exited with ${c.code}\n${c.stdout}\n${c.stderr}`);
        const row = {
          round: r,
          variant: v.name,
          articles: Number(m[1]),
          chunks: Number(m[2]),
          buildS: Number(m[3]),
          chunksPerS: Number(m[4]),
          processWallS: round(c.wallS, 1),
          peakRssMiB: c.peakRssMiB,
          coresBusy: round(c.coresBusy, 2),
          loadStart: round(c.loadStart, 2),
          loadEnd: round(c.loadEnd, 2),
        };
        runs.push(row);
        console.log(JSON.stringify(row));
      }
    }
    rmSync(join(work, 'index'), { recursive: true, force: true });
    result.runs = runs;

    // Per variant: medians over rounds, and the ratio to the reference (the first variant after the "before"
    // ones: Quarry's default) taken per round, then the median.
    const reference = variants.find((v) => !v.name.startsWith('before'))?.name;
    const byVariant = variants.map((v) => {
      const mine = runs.filter((x) => x.variant === v.name);
      const ratios = mine.map((x) => {
        const ref = runs.find((y) => y.variant === reference && y.round === x.round)!;
        return (x.chunksPerS as number) / (ref.chunksPerS as number);
      });
      return {
        variant: v.name,
        chunks: mine[0]?.chunks,
        chunksPerS: round(median(mine.map((x) => x.chunksPerS as number)), 1),
        allChunksPerS: mine.map((x) => x.chunksPerS),
        processWallS: round(median(mine.map((x) => x.processWallS as number)), 1),
        vsReference: round(median(ratios), 3),
        peakRssMiB: Math.max(...mine.map((x) => x.peakRssMiB as number)),
        coresBusy: round(median(mine.map((x) => x.coresBusy as number)), 2),
        load: mine.map((x) => `${x.loadStart}–${x.loadEnd}`).join(', '),
      };
    });
    result.variants = byVariant;

    // The profile, with the default configuration, in this process.
    let profileRows: Row[] = [];
    let profileNote = '';
    if (!has(args, 'no-profile')) {
      const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { logLevel: 'silent', indexDir: join(work, 'profile-index') } });
      const serial = new StageProfile();
      const readStarted = performance.now();
      const readCpu = process.cpuUsage();
      const { articles } = await loadFolderArticles(seeds);
      const readUsed = process.cpuUsage(readCpu);
      const readMs = performance.now() - readStarted;
      serial.add('read+parse', readMs, (readUsed.user + readUsed.system) / 1000);
      const profiled = async (overlap: boolean, profile: StageProfile) => {
        const embedder = await createEmbedder({ ...config, queryWorker: false }, { passagesOnly: true, profile });
        rmSync(config.indexDir, { recursive: true, force: true });
        const store = await openStore(config, { identity: identityOf(config, embedder.info), access: 'write' });
        const load = loadavg()[0] ?? 0;
        const cpu = process.cpuUsage();
        const t = performance.now();
        try {
          const report = await buildIndex(store, embedder, config, { articles, source: { kind: 'folder', path: seeds }, profile, overlap });
          const used = process.cpuUsage(cpu);
          return { ...report, wallMs: performance.now() - t, cpuMs: (used.user + used.system) / 1000, load };
        } finally {
          await store.close();
          await embedder.close();
        }
      };
      const serialRun = await profiled(false, serial);
      const pipelined = new StageProfile();
      const pipelinedRun = await profiled(true, pipelined);
      rmSync(config.indexDir, { recursive: true, force: true });
      const sessions = config.passageSessions;
      // The serial run's embedding (its wall and the process's CPU meanwhile) split by the workers' own timings:
      // model, pooling and messaging are summed over the sessions' batches (divided by the session count for wall
      // time); what is left of the wall is a session waiting (e.g. the other one finishing a group's last batch).
      const s = Object.fromEntries(serial.stages);
      const totalWall = readMs + serialRun.wallMs;
      const totalCpu = serial.stages.get('read+parse')!.cpuMs + serialRun.cpuMs;
      const embed = s.embed!;
      const worker = { model: s.model?.wallMs ?? 0, pool: s.pool?.wallMs ?? 0, messaging: s.messaging?.wallMs ?? 0 };
      const workerSum = worker.model + worker.pool + worker.messaging;
      const cpuShare = (x: number) => (workerSum > 0 ? (embed.cpuMs * x) / workerSum : 0);
      const stages: Array<[string, number, number]> = [
        ['read + parse (load the folder)', readMs, s['read+parse']!.cpuMs],
        ['chunk + tokenise (main thread)', s['chunk+tokenise']!.wallMs, s['chunk+tokenise']!.cpuMs],
        ['worker messaging (pad into tensors, post, receive)', worker.messaging / sessions, cpuShare(worker.messaging)],
        ['model (session.run)', worker.model / sessions, cpuShare(worker.model)],
        ['pooling + normalising', worker.pool / sessions, cpuShare(worker.pool)],
        ['a session waiting for the other (end of a group)', Math.max(0, embed.wallMs - workerSum / sessions), 0],
        ['SQLite + FTS5 insert', s['sqlite+fts5']!.wallMs, s['sqlite+fts5']!.cpuMs],
        ['HNSW insert', s.hnsw!.wallMs, s.hnsw!.cpuMs],
        ['publish (fsync, HNSW checkpoint, reopen)', s.publish?.wallMs ?? 0, 0],
      ];
      const accounted = stages.reduce((n, x) => n + x[1], 0);
      stages.push(['other (yields, store slicing, progress)', Math.max(0, totalWall - accounted), 0]);
      profileRows = stages.map(([name, wall, cpu]) => [
        name,
        round(wall / 1000, 2),
        `${((wall / totalWall) * 100).toFixed(1)}%`,
        round(cpu / 1000, 2),
        `${((cpu / totalCpu) * 100).toFixed(1)}%`,
      ]);
      profileRows.push(['total', round(totalWall / 1000, 1), '100%', round(totalCpu / 1000, 1), '100%']);
      result.profile = {
        config: { dtype: config.dtype, passageSessions: sessions, passageThreads: config.passageThreads, batch: config.embedBatchSize },
        serial: { ...serialRun, readMs, stages: serial.toJSON() },
        pipelined: { ...pipelinedRun, readMs, stages: pipelined.toJSON() },
      };
      profileNote = `Profile (in-process, ${config.dtype}, ${sessions} passage session${sessions > 1 ? 's' : ''} × ${config.passageThreads} thread${config.passageThreads > 1 ? 's' : ''}, batch ${config.embedBatchSize}), ${serialRun.chunks} chunks. Serial run (stages one after another, so each stage's CPU time is its own): ${round(serialRun.chunks / (totalWall / 1000), 1)} chunks/s including the read (load ${serialRun.load.toFixed(2)} at its start). Pipelined as \`rebuild-index\` runs it, same process right after: build ${round(pipelinedRun.seconds, 1)} s = **${round(pipelinedRun.chunksPerSecond, 1)} chunks/s** (+ ${round(readMs / 1000, 1)} s read), ${round(pipelinedRun.cpuMs / pipelinedRun.wallMs, 2)} cores busy (load ${pipelinedRun.load.toFixed(2)}); ${round(serialRun.seconds / pipelinedRun.seconds, 2)}× the serial run's build. Model, pooling and messaging split the serial run's embedding time by the workers' own timings; CPU of publish and of the remainder is not split out.`;
      console.log(profileNote);
      console.table(profileRows);
    }

    const path = writeResult(result);
    const variantRows: Row[] = byVariant.map((v) => [
      v.variant,
      (v.chunks as number | undefined) ?? 0,
      v.chunksPerS,
      (v.allChunksPerS as number[]).join(', '),
      `${v.vsReference.toFixed(2)}×`,
      v.processWallS,
      v.peakRssMiB,
      v.coresBusy,
      v.load,
    ]);
    updateDoc(
      flag(args, 'block', limit ? `rebuild-${source}-${limit}` : `rebuild-${source}`),
      result,
      [
        ...(variantRows.length > 0
          ? [
              `\`node bin/quarry.js rebuild-index\` over all of ${source}${limit ? ` (first ${limit} articles)` : ''}, one child process per run, ${rounds} round${rounds > 1 ? 's' : ''}, variants interleaved (order reversed every other round). chunks/s is the command's own figure (embedding + storing); process wall includes start-up and model load. Ratio to \`${reference}\` per round, then the median. Load: 1-minute average at each run's start–end.${before ? ` \`before\`: the command at ${before} (the pipeline before this work).` : ''}`,
              '',
              markdownTable(
                ['variant', 'chunks', 'chunks/s (median)', 'each round', `÷ ${reference}`, 'process wall s', 'peak RSS MiB', 'cores busy', 'load'],
                variantRows,
              ),
              '',
            ]
          : []),
        ...(profileRows.length > 0 ? [profileNote, '', markdownTable(['stage', 'wall s', 'share of wall', 'CPU s', 'share of CPU'], profileRows), ''] : []),
        `Raw: \`${path.slice(ROOT.length + 1)}\``,
      ].join('\n'),
    );
    console.log(`wrote ${path}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
