/** CoDel's interval by default: how long the lag must stay over its target before shedding starts. */
export const LAG_INTERVAL_MS = 100;
/** How often the event loop's lag is sampled (a timer's lateness). */
const SAMPLE_MS = 5;
/** The sampling timer stops after this long without a request. */
const IDLE_STOP_MS = 1000;

/**
 * Sheds requests at the front door while the event loop itself is behind: requests wait in the socket, before any
 * queue of ours sees them, for as long as the loop is busy, so a queue bound alone cannot bound their latency once
 * the main thread is the bottleneck (on 2 cores, HTTP parsing, BM25 and grouping of ~170 searches/s fill it).
 * CoDel on the loop's lag: shedding starts once every sample for `LAG_INTERVAL_MS` was later than `targetMs` (a
 * GC or a write's commit is a spike, not a standing backlog; `intervalMs`, 100 by default), stops at the first sample back under the target,
 * and starts again at once if the lag comes back within an interval of stopping (the backlog is still there).
 */
export class LoopLagShedder {
  private aboveSince: number | null = null;
  private shedding = false;
  private stoppedAt = Number.NEGATIVE_INFINITY;
  private lastSampleAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly targetMs: number,
    private readonly intervalMs: number = LAG_INTERVAL_MS,
  ) {}

  /** One sample: the loop's lag (ms) observed at `now` (ms, monotonic). */
  observe(lagMs: number, now: number): void {
    this.lastSampleAt = now;
    if (lagMs <= this.targetMs) {
      this.aboveSince = null;
      if (this.shedding) this.stoppedAt = now;
      this.shedding = false;
      return;
    }
    this.aboveSince ??= now;
    if (!this.shedding && (now - this.aboveSince >= this.intervalMs || now - this.stoppedAt < this.intervalMs)) this.shedding = true;
  }

  /** True while new requests should be refused at once. */
  get shed(): boolean {
    return this.shedding;
  }

  /**
   * True while shedding and for an interval after it stopped: the backlog that made it shed is likely still
   * arriving, so what is admitted meanwhile should not queue deep (server/overload.ts keeps the search queue short).
   */
  get strained(): boolean {
    return this.shedding || this.lastSampleAt - this.stoppedAt < this.intervalMs;
  }

  /**
   * Samples the loop's lag with a timer (unref'd) while requests come: `touch()` on each request starts it, and it
   * stops itself after a second without one (an idle server, or a test's app, keeps no timer running).
   */
  static monitor(shedder: Pick<LoopLagShedder, 'observe'>, now: () => number = () => performance.now()): { touch: () => void } {
    let timer: NodeJS.Timeout | null = null;
    let lastTouch = 0;
    let due = 0;
    return {
      touch: () => {
        lastTouch = now();
        if (timer) return;
        due = lastTouch + SAMPLE_MS;
        timer = setInterval(() => {
          const t = now();
          shedder.observe(Math.max(0, t - due), t);
          due = t + SAMPLE_MS;
          if (t - lastTouch > IDLE_STOP_MS && timer) {
            clearInterval(timer);
            timer = null;
          }
        }, SAMPLE_MS);
        timer.unref();
      },
    };
  }
}
