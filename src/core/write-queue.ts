import { QuarryError } from '../errors.ts';

/**
 * Serialises writes: one task at a time, in arrival order. Bounded: past `limit` waiting tasks a new one
 * is refused with `overloaded` (HTTP 503 + Retry-After) instead of the queue growing without bound.
 */
export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;

  constructor(private readonly limit: number) {}

  get depth(): number {
    return this.waiting;
  }

  run<T>(task: () => Promise<T> | T, opts: { bypassLimit?: boolean } = {}): Promise<T> {
    if (!opts.bypassLimit && this.waiting >= this.limit) {
      return Promise.reject(
        new QuarryError('overloaded', `the write queue is full (${this.limit} writes waiting); retry shortly`, { details: { retryAfterSeconds: 2 } }),
      );
    }
    this.waiting++;
    const result = this.tail.then(task);
    const done = () => {
      this.waiting--;
    };
    this.tail = result.then(done, done);
    return result;
  }

  /** Resolves when every task queued so far has finished. */
  drain(): Promise<void> {
    return this.run(() => undefined, { bypassLimit: true });
  }
}
