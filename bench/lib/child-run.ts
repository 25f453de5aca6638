import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

export interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallS: number;
  /** Peak resident memory (VmHWM) of the child, all of its threads, in MiB. */
  peakRssMiB: number;
  /** CPU seconds (user + system, every thread) per wall second: how many cores it kept busy. */
  coresBusy: number;
  /** 1-minute load average when it started and when it ended. */
  loadStart: number;
  loadEnd: number;
}

const CLK_TCK = 100;

/** utime + stime of a live process, in seconds (fields 14 and 15 of /proc/PID/stat). */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

function peakRssKiB(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Runs a command to its end, sampling its peak RSS and CPU time from /proc while it runs (Linux; the last sample
 * before it exits is kept, so a run shorter than the interval reports zeros).
 */
export function runChild(command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; sampleMs?: number }): Promise<ChildRun> {
  const loadStart = loadavg()[0] ?? 0;
  const started = performance.now();
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = 0;
  let cpu = 0;
  const sample = () => {
    peak = Math.max(peak, peakRssKiB(child.pid!) ?? 0);
    cpu = cpuSeconds(child.pid!) ?? cpu;
  };
  const timer = setInterval(sample, opts.sampleMs ?? 200);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      clearInterval(timer);
      const wallS = (performance.now() - started) / 1000;
      resolve({ code, stdout, stderr, wallS, peakRssMiB: Math.round(peak / 1024), coresBusy: cpu / wallS, loadStart, loadEnd: loadavg()[0] ?? 0 });
    });
  });
}
