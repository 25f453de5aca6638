import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './args.ts';

/**
 * The environment `npm start` gives the server: the `KEY=value` words before `node` in package.json's start script
 * (glibc's MALLOC_MMAP_THRESHOLD_, see README "Memory"), so a benchmark's server is the one users start.
 */
export function startScriptEnv(): Record<string, string> {
  const start: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.start;
  const env: Record<string, string> = {};
  for (const word of start.split(/\s+/)) {
    const m = /^([A-Z_][A-Z0-9_]*)=(\S*)$/.exec(word);
    if (!m) break;
    env[m[1]!] = m[2]!;
  }
  return env;
}

export interface ServeChild {
  url: string;
  pid: number;
  /** Everything the server printed (for failure messages). */
  output(): string;
  /** SIGTERM, then resolves with the exit code once it exited. */
  stop(): Promise<number | null>;
}

/**
 * `quarry serve` in its own process, as `npm start` runs it (its environment included), so the load generator in
 * this process never shares its event loop. `env` adds QUARRY_* settings (and may override the start script's);
 * the parent's own QUARRY_* variables are dropped so a benchmark measures what it says it does.
 */
export function startServe(
  env: Record<string, string>,
  opts: { timeoutMs?: number; nice?: number; nodeArgs?: string[]; cpus?: string } = {},
): Promise<ServeChild> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_') && k !== 'PORT'));
  // A lower priority (nice) for the server than for the load generator in this process: on a shared 2-core
  // machine the generator would otherwise be starved at saturation and report its own lateness as latency.
  // `nice` execs node, so the pid is the server's and every thread it starts inherits the priority.
  // `taskset -c` (opts.cpus) likewise: the server and every thread it starts run only on those CPUs.
  const command = [
    ...(opts.cpus === undefined ? [] : ['taskset', '-c', opts.cpus]),
    ...(opts.nice === undefined ? [] : ['nice', '-n', String(opts.nice)]),
    process.execPath,
  ];
  const child = spawn(command[0]!, [...command.slice(1), ...(opts.nodeArgs ?? []), 'bin/quarry.js', 'serve'], {
    cwd: ROOT,
    env: { ...base, ...startScriptEnv(), PORT: '0', QUARRY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`quarry serve did not start within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = () => {
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      resolve({
        url: m[1]!,
        pid: child.pid!,
        output: () => out,
        stop: async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`quarry serve exited (${code}) before serving:\n${out}`));
    });
  });
}

/** Resident memory (MiB) and open file descriptors of a process, from /proc (Linux). */
export function procStats(pid: number): { rssMiB: number; rssAnonMiB: number; rssFileMiB: number; fds: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return {
    rssMiB: kib('VmRSS') / 1024,
    rssAnonMiB: kib('RssAnon') / 1024,
    rssFileMiB: kib('RssFile') / 1024,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    threads: kib('Threads'),
  };
}

/** One Prometheus sample value from /metrics text (the first line of that name and labels). */
export function metricValue(text: string, name: string, labels = ''): number | null {
  const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}}` : `${name} `) || (!labels && l.startsWith(`${name}{`)));
  return line === undefined ? null : Number(line.split(' ').at(-1));
}

/** A process's memory mappings (/proc/<pid>/smaps): start address, path ('' for an unnamed one), resident and anonymous KiB. */
function smapsEntries(pid: number): Array<{ start: bigint; path: string; rssKiB: number; anonKiB: number }> {
  const entries: Array<{ start: bigint; path: string; rssKiB: number; anonKiB: number }> = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-[0-9a-f]+ (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      entries.push({ start: BigInt(`0x${head[1]}`), path: head[3]!, rssKiB: 0, anonKiB: 0 });
      continue;
    }
    const last = entries.at(-1);
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (last && field) last[field[1] === 'Rss' ? 'rssKiB' : 'anonKiB'] = Number(field[2]);
  }
  return entries;
}

/**
 * Where a process's anonymous resident memory sits (MiB, /proc/<pid>/smaps): `brk` is glibc's main arena ([heap]);
 * `arenas` the other glibc arenas, which glibc maps at 64-MiB-aligned addresses (HEAP_MAX_SIZE) — native allocations
 * of the worker threads (ONNX runtime, hnswlib, SQLite); `other` the rest: V8's heap pages, blocks mmapped on their own
 * (past MALLOC_MMAP_THRESHOLD_), thread stacks. A growth in one of them says where to look.
 */
export function anonSplit(pid: number): { brk: number; arenas: number; other: number } {
  const out = { brk: 0, arenas: 0, other: 0 };
  for (const { start, path, anonKiB } of smapsEntries(pid)) {
    const kind = path === '[heap]' ? 'brk' : path === '' ? (start % (64n << 20n) === 0n ? 'arenas' : 'other') : path.startsWith('[') ? 'other' : null;
    if (kind) out[kind] += anonKiB / 1024;
  }
  return out;
}

/** The largest unnamed mappings' resident MiB, largest first: one big block (an arena's) tells from many small ones. */
export function largestAnonMappings(pid: number, n = 5): number[] {
  return smapsEntries(pid)
    .filter((e) => e.path === '')
    .map((e) => e.rssKiB / 1024)
    .sort((a, b) => b - a)
    .slice(0, n);
}
