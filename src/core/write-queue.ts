import { BoundedQueue, type Refusal } from '../util/bounded-queue.ts';

/**
 * Serialises writes: one task at a time, in arrival order (each embeds, then commits one atomic store
 * write). Bounded the way searches are (util/bounded-queue.ts): `limit` counts the running write and
 * those waiting, and past it a new one is refused with `overloaded` (HTTP 503 + Retry-After); one that
 * waited longer than `queueTimeoutMs` for its turn is refused then, having stored nothing.
 */
export class WriteQueue {
  private readonly queue: BoundedQueue;

  constructor(limit: number, opts: { queueTimeoutMs?: number; onRefuse?: (why: Refusal) => void } = {}) {
    this.queue = new BoundedQueue(
      'the write',
      { concurrency: 1, queueLimit: Math.max(0, limit - 1), queueTimeoutMs: opts.queueTimeoutMs ?? 0, retryAfterSeconds: 2 },
      opts.onRefuse,
    );
  }

  /** Writes running or waiting. */
  get depth(): number {
    return this.queue.active + this.queue.waiting;
  }

  /**
   * `bypassLimit`: checkpoints, a rebuild's swap and shutdown are never refused. `signal` withdraws a write
   * still waiting for its turn (its reason is the error the caller gets).
   */
  run<T>(task: () => Promise<T> | T, opts: { bypassLimit?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    return this.queue.run(task, opts);
  }

  /** Resolves when every task queued so far has finished. */
  drain(): Promise<void> {
    return this.run(() => undefined, { bypassLimit: true });
  }
}
