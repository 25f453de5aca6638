import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Config } from '../config/config.ts';
import { QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { BoundedQueue, type QueueLimits, type Refusal } from '../util/bounded-queue.ts';
import { LoopLagShedder } from '../util/loop-lag-shedder.ts';
import { errorBody, errorHead } from './errors.ts';
import { REQUEST_ID_HEADER, requestIdFrom } from './request-log.ts';

export type RefusedQueue = 'search' | 'write';
export type RefusedReason = Exclude<Refusal, 'aborted'> | 'timeout';

/** `quarry_overload_refused_total`: requests answered 503 to keep latency bounded, by queue and reason. */
export function overloadCounter(registry: Registry): (queue: RefusedQueue, why: Refusal | 'timeout') => void {
  const refused = new Counter({
    name: 'quarry_overload_refused_total',
    help: 'Requests refused with 503 to keep latency bounded: by queue (search, write) and reason (queue_full, queue_timeout, timeout)',
    labelNames: ['queue', 'reason'],
    registers: [registry],
  });
  for (const queue of ['search', 'write']) for (const reason of ['queue_full', 'queue_timeout', 'timeout']) refused.inc({ queue, reason }, 0);
  refused.inc({ queue: 'search', reason: 'loop_lag' }, 0);
  return (queue, why) => {
    // A client that went away is not a refusal.
    if (why !== 'aborted') refused.inc({ queue, reason: why });
  };
}

/** The search routes' requests, as the front door sees them (before Express parses anything). */
function isSearchRequest(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  if (!(url === '/search' || url.startsWith('/search?'))) return false;
  return req.method === 'GET' || req.method === 'POST' || req.method === 'HEAD';
}

/**
 * The loop-lag rule: refuse while the shedder sheds, and while it is strained (just stopped) if the search would
 * wait behind `strainedQueueLimit` or more searches.
 */
export function refusedForLag(shedder: Pick<LoopLagShedder, 'shed' | 'strained'>, waiting: number, strainedQueueLimit: number): boolean {
  return shedder.shed || (shedder.strained && waiting >= strainedQueueLimit);
}

/** How often the front door's refusals are summarised in the log (one line per window, not one per refusal). */
const REFUSAL_LOG_WINDOW_MS = 1000;

/** The search queue's configurable limits (the rest is fixed by searchQueueSettings). */
export type SearchLimits = Omit<QueueLimits, 'retryAfterSeconds'>;

/** The search queue's limits from the server's configuration (QUARRY_SEARCH_*). */
export function searchQueueLimits(config: Config): SearchLimits {
  return {
    concurrency: config.searchConcurrency,
    queueLimit: config.searchQueueLimit,
    queueTimeoutMs: config.searchQueueTimeoutMs,
    targetWaitMs: config.searchQueueTargetMs,
    overflowConcurrency: config.searchOverflowConcurrency,
    ...(config.searchOverflowIntervalMs > 0 ? { overflowIntervalMs: config.searchOverflowIntervalMs } : {}),
    overflowStayRatio: config.searchOverflowStayRatio,
    overflowReviewWindows: config.searchOverflowReviewWindows,
    overflowQuickRefusals: config.searchOverflowQuickRefusals,
    dropOldestWhenFull: config.searchQueueDropOldest,
    newestFirstWhileDropping: config.searchQueueNewestWhileDropping,
  };
}

/**
 * Everything the search queue runs with: `limits`, and what is fixed for searches. `serverBehind` says when the event
 * loop is behind (searchAdmission's lag sampler; absent: never). Also what bench/queue-sim.ts simulates.
 */
export function searchQueueSettings(limits: SearchLimits, serverBehind?: () => boolean): QueueLimits {
  const target = limits.targetWaitMs ?? 0;
  return {
    // Standing ends after a slot sat free for three targets: at 2x the capacity of one slot, Poisson arrivals leave
    // a 10-ms gap 2-5% of the time, and each such gap had put the queue back in arrival order for a whole interval
    // (the p99 at 2x came from those swings); a 30-ms gap, about 1 in 10,000. Below capacity one comes within a second.
    calmMs: 3 * target,
    // With newestFirstWhileDropping: a search pushed down 30 ms while the queue keeps dropping is answered 503 rather
    // than served once the drops stop, which at and below capacity had put such searches in the tail (1x p99 74-143
    // ms against 46-63). The 3x bound leaves a search's own time beside it; served at 30 ms instead, they missed it.
    lateWhileDroppingMs: 3 * target,
    // Refusals for a full queue at most 100 ms apart (a busy event loop hands arrivals over in bursts) for an interval.
    overflowGapMs: 100,
    // Only an overflowing queue stands (see standOnWaits): with eight clients at 80-90% of capacity, standing on waits
    // refused 35-64 searches a window after a stall, which the queue limit had bounded anyway.
    standOnWaits: false,
    ...(serverBehind ? { serverBehind } : {}),
    ...limits,
    newestFirst: true,
    retryAfterSeconds: 1,
  };
}

export interface SearchAdmission extends RequestHandler {
  readonly queue: BoundedQueue;
  /**
   * The first middleware of the app: a search that would be refused anyway (the queue is full or late, or the
   * event loop is behind) is answered 503 here, with a body serialised once, before logging, metrics, CORS,
   * authentication or rate limits spend anything on it. Under overload most requests are refused, and every
   * millisecond a refusal costs the main thread is a millisecond the admitted searches wait for
   * (docs/history/overload.md). Anything else passes through to the full pipeline, which still decides (the state
   * can change).
   */
  readonly frontDoor: RequestHandler;
}

/**
 * Admission control for searches: at most `concurrency` run at once, up to `queueLimit` wait at most
 * `queueTimeoutMs` for a slot, and anything past that is answered 503 + Retry-After at once. A search costs
 * milliseconds of CPU on two cores, so a queue longer than a few searches' worth adds latency to every request
 * without adding throughput (docs/history/overload.md). The running search itself is bounded by
 * `searchTimeoutMs` in the core; writes have the same shape in the core's write queue.
 */
export function searchAdmission(
  limits: SearchLimits,
  opts: {
    registry?: Registry;
    onRefuse?: (why: Refusal) => void;
    loopLagTargetMs?: number;
    /** How long the lag must stand over its target before shedding starts (LoopLagShedder's interval). */
    loopLagIntervalMs?: number;
    /** Front-door refusals are logged here, summarised once a second. */
    logger?: Logger;
    /** Counts a front-door refusal as an HTTP request, with how long it took (the metrics middleware never sees it). */
    onFrontDoorRefusal?: (method: string, seconds: number) => void;
    /** While it says so (shutting down), the front door lets everything through to the pipeline that drains. */
    draining?: () => boolean;
    /** A refusal for a full search queue overflows it at once while the event loop's latest lag exceeds this (0 or absent: off). */
    overflowBehindLagMs?: number;
  } = {},
): SearchAdmission {
  // The event loop's lag, sampled every 5 ms while searches come, by one timer for both rules that read it: the
  // shedder's (loopLagTargetMs) and the overflow's, for which a full queue while the latest sample is over
  // overflowBehindLagMs is an overload, not a burst the slots will work off (QueueLimits.serverBehind).
  const behindLagMs = opts.overflowBehindLagMs ?? 0;
  const lagTarget = opts.loopLagTargetMs ?? 0;
  const shedder = lagTarget > 0 ? new LoopLagShedder(lagTarget, opts.loopLagIntervalMs) : null;
  let lagNowMs = 0;
  const lagMonitor =
    shedder || behindLagMs > 0
      ? LoopLagShedder.monitor({
          observe: (lag, at) => {
            lagNowMs = lag;
            shedder?.observe(lag, at);
          },
        })
      : null;
  const target = limits.targetWaitMs ?? 0;
  const queue = new BoundedQueue('the search', searchQueueSettings(limits, behindLagMs > 0 ? () => lagNowMs > behindLagMs : undefined), opts.onRefuse);
  // One line as an episode of shedding begins and one as it ends: whether the searches refused came from a sustained
  // overload or from one stall, and for how long (the soak bench reads them).
  queue.onStandingChange = (c) => {
    if (c.standing && c.cause === 'fits')
      opts.logger?.warn(
        { cause: c.cause, slots: queue.slots },
        // "search queue …" like the other episode lines: the benches find them by it (bench/lib/standing-episodes.ts).
        'search queue back to full concurrency: arrivals fit every slot again; still serving newest first until a slot sits free',
      );
    else if (c.standing)
      opts.logger?.warn(
        { cause: c.cause, ...(c.cause === 'overflow' ? { by: c.by } : {}), slots: queue.slots, targetMs: target, intervalMs: limits.queueTimeoutMs },
        c.cause === 'overflow'
          ? 'search queue overflowing: refused for being full throughout an interval; serving newest first with fewer slots'
          : 'search queue standing: every search that started in an interval had waited past the target; serving newest first, shedding late ones',
      );
    else opts.logger?.warn({ forMs: Math.round(c.forMs), refused: c.refused, why: c.why }, 'search queue calm again');
  };
  const loopLagError = () =>
    new QuarryError('overloaded', `the server is running behind (event loop lag over ${lagTarget} ms); retry shortly`, {
      details: { retryAfterSeconds: 1, reason: 'loop_lag' },
    });
  if (opts.registry) {
    const registry = opts.registry;
    // The queue's state, read at each scrape.
    const gauge = (name: string, help: string, value: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(value());
        },
      });
    gauge('quarry_search_in_flight', 'Searches running now (at most QUARRY_SEARCH_CONCURRENCY)', () => queue.active);
    gauge('quarry_search_queue_standing', 'Whether the search queue stands (1: sustained overload, served newest first)', () => (queue.standingNow ? 1 : 0));
    gauge('quarry_search_slots', 'Searches allowed to run at once now (QUARRY_SEARCH_OVERFLOW_CONCURRENCY while the queue overflows)', () => queue.slots);
    gauge('quarry_search_queue_depth', 'Searches waiting for a slot (at most QUARRY_SEARCH_QUEUE_LIMIT)', () => queue.waiting);
  }

  // While the loop is shedding, and for an interval after (the backlog is likely still arriving), a search is
  // admitted only if it would wait behind at most one search per slot: a deep queue then only adds latency to
  // what is admitted (docs/history/overload.md). Outside such an episode the whole queue absorbs bursts.
  const strainedQueueLimit = Math.min(limits.queueLimit, limits.concurrency);
  const lagRefusal = (): 'loop_lag' | null => (shedder && refusedForLag(shedder, queue.waiting, strainedQueueLimit) ? 'loop_lag' : null);

  // Each refusal's response, serialised once: the same status, Retry-After and body the error handler would send.
  const prepared = new Map<string, { status: number; headers: Record<string, string>; body: Buffer }>();
  const preparedFor = (why: 'queue_full' | 'queue_timeout' | 'loop_lag') => {
    let p = prepared.get(why);
    if (!p) {
      const e = why === 'loop_lag' ? loopLagError() : queue.refusalError(why);
      const head = errorHead(e);
      const body = Buffer.from(JSON.stringify(errorBody(e)));
      p = {
        status: head.status,
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': String(body.length),
          'X-Content-Type-Options': 'nosniff',
          ...(head.retryAfter !== null ? { 'Retry-After': head.retryAfter } : {}),
        },
        body,
      };
      prepared.set(why, p);
    }
    return p;
  };
  // Refusals since the last log line, by reason; one line per window while they continue.
  let unlogged: Record<string, number> = {};
  let logTimer: NodeJS.Timeout | null = null;
  const logRefusal = (why: string) => {
    if (!opts.logger) return;
    unlogged[why] = (unlogged[why] ?? 0) + 1;
    if (logTimer) return;
    logTimer = setTimeout(() => {
      logTimer = null;
      const counts = unlogged;
      unlogged = {};
      opts.logger?.warn(
        { refused: counts, windowMs: REFUSAL_LOG_WINDOW_MS },
        'searches refused at the front door: overloaded (503, counted in quarry_overload_refused_total)',
      );
    }, REFUSAL_LOG_WINDOW_MS);
    logTimer.unref();
  };

  const frontDoor: RequestHandler = (req, res, next) => {
    if (!isSearchRequest(req)) return next();
    const startedAt = performance.now();
    lagMonitor?.touch();
    // A browser on another origin needs the CORS headers to read the 503: the full pipeline answers it (and its
    // queue counts the request, once: refusalNow would count it as an arrival too).
    if (req.headers.origin !== undefined || opts.draining?.()) return next();
    const why = lagRefusal() ?? queue.refusalNow();
    if (why === null) return next();
    opts.onRefuse?.(why);
    logRefusal(why);
    const p = preparedFor(why);
    (res as ServerResponse).writeHead(p.status, { ...p.headers, [REQUEST_ID_HEADER]: requestIdFrom(req.headers['x-request-id']) });
    res.end(req.method === 'HEAD' ? undefined : p.body);
    opts.onFrontDoorRefusal?.(req.method, (performance.now() - startedAt) / 1000);
  };

  const admit: RequestHandler = (req, res, next) => {
    lagMonitor?.touch();
    if (lagRefusal()) {
      opts.onRefuse?.('loop_lag');
      next(loopLagError());
      return;
    }
    // The end of a request: its response closes, or its connection does. A response queued behind a pipelined
    // one on a connection that dies never emits 'close' (the fuzz test found that leak), so both are watched.
    const onEnd = (fn: () => void) => {
      let fired = false;
      const once = () => {
        // The socket's 'close' emits the response's: a listener removed mid-emit still runs once more.
        if (fired) return;
        fired = true;
        res.off('close', once);
        req.socket.off('close', once);
        fn();
      };
      res.once('close', once);
      req.socket.once('close', once);
      if (res.closed || req.socket.destroyed) once();
    };
    // A client that leaves while its search waits gives its place up.
    const gone = new AbortController();
    let waiting = true;
    onEnd(() => {
      if (waiting) gone.abort(new QuarryError('invalid_request', 'the client closed the connection'));
    });
    queue.acquire({ signal: gone.signal }).then(
      () => {
        waiting = false;
        // The slot is held until the answer is sent or the connection is gone.
        onEnd(() => queue.release());
        next();
      },
      (e: unknown) => {
        waiting = false;
        next(e);
      },
    );
  };
  return Object.assign(admit, { queue, frontDoor });
}
