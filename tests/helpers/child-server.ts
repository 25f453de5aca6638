import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { CHILD_HANG_GUARD_MS } from './poll.ts';

const ROOT = resolve(import.meta.dirname, '../..');

export interface ChildServer {
  url: string;
  pid: number;
  /** Everything the child wrote to stdout and stderr so far (for failure messages). */
  output(): string;
  /** Resolves when the child has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs `quarry serve` in a child process — one node process (`node bin/quarry.js`, as `npm start` runs it;
 * not through npm, which would put a wrapper process between us and the server and make SIGKILL miss it) — and resolves with its
 * URL once it prints it. Settings come from QUARRY_* variables only: the parent's are dropped.
 */
export function startChildServer(opts: {
  indexDir: string;
  seedsDir: string;
  env?: Record<string, string>;
  /** Hang guard for the start (default CHILD_HANG_GUARD_MS). */
  timeoutMs?: number;
  /** Where Quarry is installed (default: this checkout). */
  cwd?: string;
  /**
   * Start it as users do, `npm start` (its start script's environment included): `pid` is then npm's, and a signal
   * goes to npm, as a service manager's would.
   */
  npmStart?: boolean;
}): Promise<ChildServer> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_') && k !== 'PORT'));
  Object.assign(env, {
    QUARRY_INDEX_DIR: opts.indexDir,
    QUARRY_SEEDS_DIR: opts.seedsDir,
    QUARRY_MODELS_DIR: resolve(ROOT, 'models'),
    PORT: '0',
    QUARRY_LOG_LEVEL: 'warn',
    ...opts.env,
  });
  // Under `npm test` npm says where its CLI is; elsewhere the `npm` on the PATH.
  const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath] : ['npm'];
  const [command, ...args] = opts.npmStart ? [...npm, 'start'] : [process.execPath, 'bin/quarry.js', 'serve'];
  const child: ChildProcess = spawn(command!, args, { cwd: opts.cwd ?? ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));

  return new Promise((resolveStart, rejectStart) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rejectStart(new Error(`quarry serve did not print its URL within ${opts.timeoutMs ?? CHILD_HANG_GUARD_MS} ms (hung?):\n${out}`));
    }, opts.timeoutMs ?? CHILD_HANG_GUARD_MS);
    const onData = () => {
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolveStart({
        url: m[1]!,
        pid: child.pid!,
        output: () => out,
        exited,
        kill: (signal = 'SIGKILL') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rejectStart(new Error(`quarry serve exited (code ${code}, signal ${signal}) before serving:\n${out}`));
    });
  });
}
