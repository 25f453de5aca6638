/**
 * `npm run bench -- queue-sim [--seeds 60] [--multiples 0.8,1,2,4] [--seconds 15] [--turn-ms 5]
 *   [--service-p50 8.6] [--service-sigma 0.31] [--two-slots-slower 1.5] ['label:K=V,K=V' …]`
 *
 * The search queue's admission policy in virtual time: the server's own BoundedQueue, built from the same settings
 * as `quarry serve` builds it (server/overload.ts, searchQueueSettings; K=V are QUARRY_* settings, none = the
 * defaults), fed Poisson arrivals from idle at each multiple of the simulated capacity, `--seeds` rows of `--seconds`
 * each per multiple. It prints, per setting and multiple, the admitted p99 over the row against the unloaded p99
 * (the 2× target: ≤ 3×), how many rows met 3×, the share refused, the episodes per row and when the first
 * began. A row takes a fraction of a second, so a policy change can be looked at over hundreds of rows before the
 * real server is measured (`overload`, whose 15-s rows on a shared 2-core machine vary more between runs than most
 * settings move them).
 *
 * What it models, and what it leaves out: a search's time is lognormal (`--service-p50` ms, `--service-sigma`;
 * 8.6 and 0.31 give the unloaded p50 and p99 of the bbc-news bench, 8.6 and 17.6 ms), `--two-slots-slower` times
 * longer when it starts beside another (two searches share two cores with the HTTP work: one slot finishes more than
 * half of what two do); the main thread reads arrivals at turns `--turn-ms` apart on average (exponential; 0 = each
 * at once), so arrivals reach the queue in small bursts as they do behind a busy event loop. Not modelled: the event
 * loop's lag itself (the overflow-while-behind rule never fires here), HTTP costs, GC, the load generator. The
 * figures are for ranking settings against each other; `overload` is the measurement of record.
 */
import { loadConfig } from '../src/config/config.ts';
import { searchQueueLimits, searchQueueSettings } from '../src/server/overload.ts';
import { BoundedQueue, type QueueLimits } from '../src/util/bounded-queue.ts';
import { flag } from './lib/args.ts';
import { mulberry32 } from './lib/corpus.ts';
import { newResult, writeResult } from './lib/results.ts';
import { median, percentile, round } from './lib/stats.ts';

interface Model {
  p50: number;
  sigma: number;
  twoSlotsSlower: number;
  turnMs: number;
}

/** The lognormal's 99th percentile: one search alone, the unloaded p99 the target is a multiple of. */
const unloadedP99 = (model: Model) => model.p50 * Math.exp(model.sigma * 2.326);

interface Row {
  p99Ratio: number;
  refused: number;
  episodes: number;
  firstEpisodeMs: number | null;
}

/** A clock and an event list in virtual milliseconds; the queue's deadline timers run on it too. */
class VirtualTime {
  now = 0;
  private events: Array<{ at: number; run: () => void }> = [];

  at(at: number, run: () => void): { cancel(): void } {
    const ev = { at, run };
    // Insert after every event due at or before it: equal times run in the order scheduled.
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.events[mid]!.at <= at) lo = mid + 1;
      else hi = mid;
    }
    this.events.splice(lo, 0, ev);
    return { cancel: () => (ev.run = () => {}) };
  }

  /** Runs every event in time order, letting the promise callbacks each one starts run before the next. */
  async drain(): Promise<void> {
    for (let ev = this.events.shift(); ev; ev = this.events.shift()) {
      this.now = ev.at;
      ev.run();
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** One row from idle: Poisson arrivals at `rate` per ms for `ms`, through the queue. */
async function simulateRow(settings: QueueLimits, model: Model, rate: number, ms: number, seed: number): Promise<Row> {
  const time = new VirtualTime();
  const random = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const exponential = (mean: number) => -Math.log(1 - random()) * mean;
  // The queue's deadline (queueTimeoutMs) is a real setTimeout: run it on the virtual clock for this row.
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const timers = new Map<number, { cancel(): void }>();
  let nextTimer = 1;
  globalThis.setTimeout = ((fn: () => void, after: number) => {
    const id = nextTimer++;
    timers.set(id, time.at(time.now + after, fn));
    return id;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id: number) => timers.get(id)?.cancel()) as typeof clearTimeout;
  try {
    const queue = new BoundedQueue('simulated search', settings, undefined, () => time.now);
    let episodes = 0;
    let firstEpisodeMs: number | null = null;
    queue.onStandingChange = (c) => {
      if (!c.standing || c.cause === 'fits') return;
      episodes++;
      firstEpisodeMs ??= time.now;
    };
    const latencies: number[] = [];
    let arrivals = 0;
    let refused = 0;
    const arrive = (at: number) => {
      arrivals++;
      // The front door first, then the pipeline's acquire, as the server does.
      if (queue.refusalNow() !== null) {
        refused++;
        return;
      }
      queue.acquire().then(
        () => {
          const service = model.p50 * Math.exp(model.sigma * normal()) * (queue.active >= 2 ? model.twoSlotsSlower : 1);
          time.at(time.now + service, () => {
            queue.release();
            latencies.push(time.now - at);
          });
        },
        () => refused++,
      );
    };
    const due: number[] = [];
    for (let t = exponential(1 / rate); t < ms; t += exponential(1 / rate)) due.push(t);
    if (model.turnMs > 0) {
      // The main thread reads what arrived since its last turn, all at once.
      for (let turn = 0, i = 0; i < due.length; ) {
        turn += exponential(model.turnMs);
        const batch: number[] = [];
        while (i < due.length && due[i]! <= turn) batch.push(due[i++]!);
        if (batch.length > 0) time.at(turn, () => batch.forEach(arrive));
      }
    } else for (const at of due) time.at(at, () => arrive(at));
    await time.drain();
    return { p99Ratio: percentile(latencies, 99) / unloadedP99(model), refused: refused / Math.max(1, arrivals), episodes, firstEpisodeMs };
  } finally {
    globalThis.setTimeout = realSetTimeout;
    globalThis.clearTimeout = realClearTimeout;
  }
}

export async function run(args: string[]): Promise<void> {
  const seeds = Number(flag(args, 'seeds', '60'));
  const seconds = Number(flag(args, 'seconds', '15'));
  const multiples = flag(args, 'multiples', '0.8,1,2,4').split(',').map(Number);
  const model: Model = {
    p50: Number(flag(args, 'service-p50', '8.6')),
    sigma: Number(flag(args, 'service-sigma', '0.31')),
    twoSlotsSlower: Number(flag(args, 'two-slots-slower', '1.5')),
    turnMs: Number(flag(args, 'turn-ms', '5')),
  };
  for (const [name, v] of [
    ['seeds', seeds],
    ['seconds', seconds],
    ...multiples.map((m) => ['multiples', m] as const),
    ['service-p50', model.p50],
    ['two-slots-slower', model.twoSlotsSlower],
  ] as const)
    if (!(v > 0)) throw new Error(`--${name}: a positive number, got ${v}`);
  if (!(model.sigma >= 0) || !(model.turnMs >= 0)) throw new Error('--service-sigma and --turn-ms: numbers ≥ 0');
  const specs = args.filter((a) => !a.startsWith('--') && /^[^:]+:/.test(a));
  if (specs.length === 0) specs.push('defaults:');
  // Two slots each taking twoSlotsSlower times the mean search: what the simulated server finishes per ms.
  const capacity = 2 / (model.twoSlotsSlower * model.p50 * Math.exp((model.sigma * model.sigma) / 2));
  const result = newResult('queue-sim', args);
  const rows: Array<Record<string, unknown>> = [];
  console.log(`capacity ${round(capacity * 1000, 1)}/s; unloaded p99 ${round(unloadedP99(model), 1)} ms; ${seeds} rows of ${seconds} s per cell`);
  for (const spec of specs) {
    const [label, settingsText = ''] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
    const env = Object.fromEntries(
      settingsText
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const settings = searchQueueSettings(searchQueueLimits(loadConfig({ env })), () => false);
    for (const multiple of multiples) {
      const cell: Row[] = [];
      for (let s = 0; s < seeds; s++) cell.push(await simulateRow(settings, model, multiple * capacity, seconds * 1000, 7919 * (s + 1)));
      const ratios = cell.map((r) => r.p99Ratio);
      const onsets = cell.flatMap((r) => (r.firstEpisodeMs === null ? [] : [r.firstEpisodeMs]));
      const summary = {
        label,
        settings: env,
        multiple,
        p99RatioMedian: round(median(ratios), 2),
        p99RatioMax: round(Math.max(...ratios), 2),
        within3: cell.filter((r) => r.p99Ratio <= 3).length,
        rows: cell.length,
        refusedMedianPct: round(100 * median(cell.map((r) => r.refused)), 1),
        refusedMaxPct: round(100 * Math.max(...cell.map((r) => r.refused)), 1),
        episodesPerRow: round(cell.reduce((a, r) => a + r.episodes, 0) / cell.length, 2),
        firstEpisodeMedianMs: onsets.length ? round(median(onsets), 0) : null,
        firstEpisodeMaxMs: onsets.length ? round(Math.max(...onsets), 0) : null,
      };
      rows.push(summary);
      console.log(
        `${label.padEnd(16)} ${String(multiple).padStart(4)}×: p99 ${summary.p99RatioMedian}× the unloaded (max ${summary.p99RatioMax}×), within 3× in ${summary.within3}/${summary.rows}; refused ${summary.refusedMedianPct}% (max ${summary.refusedMaxPct}%); episodes/row ${summary.episodesPerRow}; first began at ${summary.firstEpisodeMedianMs ?? '-'} ms (max ${summary.firstEpisodeMaxMs ?? '-'})`,
      );
    }
  }
  result.model = model;
  result.rows = rows;
  writeResult(result);
}
