/**
 * `npm run bench -- startup [--rounds 5] [--articles 300] [--baseline DIR]`
 *
 * Wall time of what a person waits for at a terminal: `quarry --help`, a one-shot `quarry search` on an index of
 * ~300 bbc-news articles + the seed, and a server's start until GET /health answers 200 (the index already
 * built). Each is a fresh process, as a person runs it. With `--baseline DIR` (a checkout of an older commit with
 * its node_modules and models), the same commands run there too, interleaved round by round, so both sides see
 * the same machine load. An old checkout runs `tsx src/cli/main.ts`; this one `node bin/quarry.js` (compiled dist/).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, ROOT } from './lib/args.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { percentile, round } from './lib/stats.ts';

interface Side {
  name: string;
  dir: string;
  /** argv (after node) that runs the CLI in this checkout. */
  cli: string[];
}

function sideOf(name: string, dir: string): Side {
  const compiled = existsSync(join(dir, 'bin/quarry.js')) && existsSync(join(dir, 'scripts/build.mjs'));
  return { name, dir, cli: compiled ? [join(dir, 'bin/quarry.js')] : ['--import', 'tsx', join(dir, 'src/cli/main.ts')] };
}

function timeCommand(side: Side, args: string[], env: NodeJS.ProcessEnv): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, [...side.cli, ...args], { cwd: side.dir, env, encoding: 'utf8' });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${side.name}: ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return ms;
}

/** Spawns `serve` and polls /health until 200; returns the milliseconds from spawn to that answer. */
async function timeToHealthy(side: Side, env: NodeJS.ProcessEnv): Promise<number> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const t = performance.now();
  const child = spawn(process.execPath, [...side.cli, 'serve'], { cwd: side.dir, env: { ...env, PORT: String(port) }, stdio: 'ignore' });
  try {
    for (let i = 0; i < 1200; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        if (res.status === 200) return performance.now() - t;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${side.name}: no healthy answer within 30 s`);
  } finally {
    child.kill('SIGKILL');
  }
}

export async function run(args: string[]): Promise<void> {
  const rounds = Number(flag(args, 'rounds', '5'));
  const articles = Number(flag(args, 'articles', '300'));
  const baseline = flag(args, 'baseline', undefined);
  const sides = [sideOf('this checkout', ROOT), ...(baseline ? [sideOf(`baseline ${baseline}`, baseline)] : [])];
  const work = mkdtempSync(join(tmpdir(), 'quarry-startup-'));
  const seeds = join(work, 'seeds');
  mkdirSync(seeds);
  execFileSync('cp', ['-r', join(ROOT, 'seeds/.'), seeds]);
  execFileSync(process.execPath, [join(ROOT, 'scripts/dataset-to-articles.mjs'), 'bbc-news', seeds, '--limit', String(articles)]);
  // A baseline from before articles had tags refuses the field: it gets the same articles without it.
  const untagged = join(work, 'seeds-untagged');
  if (baseline) {
    execFileSync('cp', ['-r', seeds, untagged]);
    for (const f of readdirSync(untagged).filter((n) => n.endsWith('.jsonl'))) {
      const lines = readFileSync(join(untagged, f), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '');
      const stripped = lines.map((l) => {
        const { tags: _tags, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return JSON.stringify(rest);
      });
      writeFileSync(join(untagged, f), `${stripped.join('\n')}\n`);
    }
  }
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  const envOf = (side: Side) => ({
    ...base,
    QUARRY_INDEX_DIR: join(work, `index-${sides.indexOf(side)}`),
    QUARRY_SEEDS_DIR: side.dir === ROOT ? seeds : untagged,
    QUARRY_LOG_LEVEL: 'warn',
  });
  const result = newResult('startup', args);
  try {
    for (const side of sides) timeCommand(side, ['rebuild-index'], envOf(side)); // each side builds its own index
    const samples: Record<string, Record<string, number[]>> = Object.fromEntries(sides.map((s) => [s.name, { help: [], search: [], healthy: [] }]));
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
        const env = envOf(side);
        const s = samples[side.name]!;
        s.help!.push(timeCommand(side, ['--help'], env));
        s.search!.push(timeCommand(side, ['search', 'China-Belarus industrial cooperation', '-k', '3'], env));
        s.healthy!.push(await timeToHealthy(side, env));
      }
      console.log(`round ${r + 1}/${rounds}`);
    }
    const summary = Object.fromEntries(
      Object.entries(samples).map(([name, s]) => [
        name,
        Object.fromEntries(
          Object.entries(s).map(([k, xs]) => [k, { p50: round(percentile(xs, 50), 0), min: round(Math.min(...xs), 0), max: round(Math.max(...xs), 0) }]),
        ),
      ]),
    );
    result.summary = summary;
    result.samples = samples;
    const rows: Row[] = [];
    for (const what of ['help', 'search', 'healthy'] as const) {
      const label = { help: '`quarry --help`', search: `one-shot \`quarry search\` (${articles + 1} articles)`, healthy: '`serve` start to healthy' }[what];
      const cells = sides.map((s) => {
        const x = summary[s.name]![what]!;
        return `${x.p50} ms (${x.min}–${x.max})`;
      });
      const ratio = sides.length === 2 ? [`${round(summary[sides[1]!.name]![what]!.p50 / summary[sides[0]!.name]![what]!.p50, 2)}×`] : [];
      rows.push([label, ...cells, ...ratio]);
    }
    const header = ['wall time (p50, min–max)', ...sides.map((s) => s.name), ...(sides.length === 2 ? ['baseline / this'] : [])];
    const table = markdownTable(header, rows);
    console.log(table);
    console.log(`results: ${writeResult(result)}`);
    updateDoc('startup', result, `${rounds} rounds, sides interleaved.\n\n${table}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
