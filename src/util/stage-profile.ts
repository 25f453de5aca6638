/**
 * Cheap per-stage timers for profiling a build (bench/rebuild.ts): wall time and the process's CPU time of each
 * stage, summed over its runs. Off unless a caller passes one in; nothing is logged. CPU time is process-wide
 * (every thread), so it belongs to one stage only while stages do not overlap (a serial profile run).
 */
export interface StageTotals {
  wallMs: number;
  cpuMs: number;
  runs: number;
}

export class StageProfile {
  readonly stages = new Map<string, StageTotals>();

  add(stage: string, wallMs: number, cpuMs = 0): void {
    const s = this.stages.get(stage) ?? { wallMs: 0, cpuMs: 0, runs: 0 };
    s.wallMs += wallMs;
    s.cpuMs += cpuMs;
    s.runs++;
    this.stages.set(stage, s);
  }

  /** Times a synchronous stage. */
  time<T>(stage: string, fn: () => T): T {
    const cpu = process.cpuUsage();
    const t = performance.now();
    try {
      return fn();
    } finally {
      const used = process.cpuUsage(cpu);
      this.add(stage, performance.now() - t, (used.user + used.system) / 1000);
    }
  }

  /** Times an asynchronous stage (its CPU includes whatever else ran meanwhile). */
  async timeAsync<T>(stage: string, fn: () => Promise<T>): Promise<T> {
    const cpu = process.cpuUsage();
    const t = performance.now();
    try {
      return await fn();
    } finally {
      const used = process.cpuUsage(cpu);
      this.add(stage, performance.now() - t, (used.user + used.system) / 1000);
    }
  }

  toJSON(): Record<string, StageTotals> {
    return Object.fromEntries(this.stages);
  }
}

/** `profile?.time(stage, fn)` without the optional chaining at every call site. */
export const timed = <T>(profile: StageProfile | undefined, stage: string, fn: () => T): T => (profile ? profile.time(stage, fn) : fn());
