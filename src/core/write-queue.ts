import { QuarryError } from '../errors.ts';

/** Writes whose preparation (chunking, embedding) may run ahead of the write being committed. */
const PREPARE_AHEAD = 2;

/**
 * Serialises writes: their commits run one at a time, in arrival order. A write may have a preparation
 * stage (`runStaged`: chunk and embed) that runs ahead, overlapping the commits of the writes before it —
 * request N+1 is embedded while request N is stored — with at most PREPARE_AHEAD writes prepared or preparing
 * but not yet committing. Bounded: past `limit` waiting writes a new one is refused with `overloaded` (HTTP 503 +
 * Retry-After) instead of the queue growing without bound.
 */
export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private preparing = 0;
  private readonly prepareWaiters: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly prepareAhead = PREPARE_AHEAD,
  ) {}

  get depth(): number {
    return this.waiting;
  }

  /** A write with no preparation: it runs when every write before it has committed. */
  run<T>(task: () => Promise<T> | T, opts: { bypassLimit?: boolean } = {}): Promise<T> {
    return this.enqueue(null, task, opts);
  }

  /**
   * `prepare` starts as soon as a preparation slot is free (slots are taken in arrival order); `commit` gets its
   * result once every earlier write has committed. The caller's promise settles when `commit` has.
   */
  runStaged<P, T>(prepare: () => Promise<P>, commit: (prepared: P) => Promise<T> | T, opts: { bypassLimit?: boolean } = {}): Promise<T> {
    return this.enqueue(prepare, commit, opts);
  }

  /** Resolves when every task queued so far has finished. */
  drain(): Promise<void> {
    return this.run(() => undefined, { bypassLimit: true });
  }

  private enqueue<P, T>(prepare: (() => Promise<P>) | null, commit: (prepared: P) => Promise<T> | T, opts: { bypassLimit?: boolean }): Promise<T> {
    if (!opts.bypassLimit && this.waiting >= this.limit) {
      return Promise.reject(
        new QuarryError('overloaded', `the write queue is full (${this.limit} writes waiting); retry shortly`, { details: { retryAfterSeconds: 2 } }),
      );
    }
    this.waiting++;
    let slotHeld = false;
    const releaseSlot = () => {
      if (slotHeld) this.releasePrepareSlot();
      slotHeld = false;
    };
    const prepared: Promise<P> | null = prepare
      ? this.acquirePrepareSlot().then(() => {
          slotHeld = true;
          return prepare();
        })
      : null;
    // Its failure is reported through `result` below; handled here so it is not unhandled meanwhile.
    prepared?.catch(releaseSlot);
    const result = this.tail.then(async () => {
      const p = prepared ? await prepared : (undefined as P);
      // Committing now: the next write may start preparing.
      releaseSlot();
      return commit(p);
    });
    const done = () => {
      this.waiting--;
    };
    this.tail = result.then(done, done);
    return result;
  }

  private acquirePrepareSlot(): Promise<void> {
    if (this.preparing < this.prepareAhead && this.prepareWaiters.length === 0) {
      this.preparing++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.prepareWaiters.push(resolve));
  }

  /** Hands the slot to the oldest waiting write, or frees it. */
  private releasePrepareSlot(): void {
    const next = this.prepareWaiters.shift();
    if (next) next();
    else this.preparing--;
  }
}
