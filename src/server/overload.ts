import type { RequestHandler } from 'express';
import { Counter, Gauge, type Registry } from 'prom-client';
import { QuarryError } from '../errors.ts';
import { BoundedQueue, type QueueLimits, type Refusal } from '../util/bounded-queue.ts';
import { LoopLagShedder } from '../util/loop-lag-shedder.ts';

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

/**
 * Admission control for searches: at most `concurrency` run at once, up to `queueLimit` wait at most
 * `queueTimeoutMs` for a slot, and anything past that is answered 503 + Retry-After at once. A search costs
 * milliseconds of CPU on two cores, so a queue longer than a few searches' worth adds latency to every request
 * without adding throughput (docs/benchmarks.md, overload). The running search itself is bounded by
 * `searchTimeoutMs` in the core; writes have the same shape in the core's write queue.
 */
export function searchAdmission(
  limits: Omit<QueueLimits, 'retryAfterSeconds'>,
  opts: { registry?: Registry; onRefuse?: (why: Refusal) => void; loopLagTargetMs?: number } = {},
): RequestHandler & { readonly queue: BoundedQueue } {
  const queue = new BoundedQueue('the search', { ...limits, retryAfterSeconds: 1 }, opts.onRefuse);
  const lagTarget = opts.loopLagTargetMs ?? 0;
  const shedder = lagTarget > 0 ? new LoopLagShedder(lagTarget) : null;
  const lagMonitor = shedder ? LoopLagShedder.monitor(shedder) : null;
  if (opts.registry) {
    new Gauge({
      name: 'quarry_search_in_flight',
      help: 'Searches running now (at most QUARRY_SEARCH_CONCURRENCY)',
      registers: [opts.registry],
      collect() {
        this.set(queue.active);
      },
    });
    new Gauge({
      name: 'quarry_search_queue_depth',
      help: 'Searches waiting for a slot (at most QUARRY_SEARCH_QUEUE_LIMIT)',
      registers: [opts.registry],
      collect() {
        this.set(queue.waiting);
      },
    });
  }

  const admit: RequestHandler = (req, res, next) => {
    lagMonitor?.touch();
    if (shedder?.shed) {
      opts.onRefuse?.('loop_lag');
      next(
        new QuarryError('overloaded', `the server is running behind (event loop lag over ${lagTarget} ms); retry shortly`, {
          details: { retryAfterSeconds: 1, reason: 'loop_lag' },
        }),
      );
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
  return Object.assign(admit, { queue });
}
