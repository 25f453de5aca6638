import { BoundedQueue, type Refusal, type StandingChange } from '../util/bounded-queue.ts';

/** Writes whose preparation (chunking, embedding) may run ahead of the write being committed. */
const PREPARE_AHEAD = 2;

export interface WriteQueueOptions {
  /** The longest a write waits for its turn to commit before it is refused (0: no deadline). */
  queueTimeoutMs?: number;
  /** CoDel target for a standing queue (util/bounded-queue.ts); 0: off. */
  targetWaitMs?: number;
  onRefuse?: (why: Refusal) => void;
  /** Writes prepared or preparing but not yet committing, at most. */
  prepareAhead?: number;
  /** Told as the queue begins and ends standing (Quarry logs it, as the server does for searches). */
  onStandingChange?: (change: StandingChange) => void;
  /** Milliseconds, monotonic; tests pass their own. */
  now?: () => number;
}

export interface WriteOptions {
  /** Checkpoints, a rebuild's swap and shutdown are never refused. */
  bypassLimit?: boolean;
  /** Withdraws a write still waiting for its turn (its reason is the error the caller gets). */
  signal?: AbortSignal;
}

/**
 * Serialises writes: their commits run one at a time, in arrival order. A write may have a preparation stage
 * (`runStaged`: chunk and embed) that runs ahead, overlapping the commits of the writes before it — request
 * N+1 is embedded while request N is stored — with at most `prepareAhead` writes prepared or preparing but not
 * yet committing. Bounded the way searches are (util/bounded-queue.ts): `limit` counts the committing write
 * and those waiting, and past it a new one is refused with `overloaded` (HTTP 503 + Retry-After); one that
 * waited longer than `queueTimeoutMs` for its turn is refused then, having stored nothing.
 */
export class WriteQueue {
  private readonly commits: BoundedQueue;
  private readonly prepareAhead: number;
  private preparing = 0;
  private readonly prepareWaiters: Array<() => void> = [];

  constructor(limit: number, opts: WriteQueueOptions = {}) {
    this.commits = new BoundedQueue(
      'the write',
      {
        concurrency: 1,
        queueLimit: Math.max(0, limit - 1),
        queueTimeoutMs: opts.queueTimeoutMs ?? 0,
        targetWaitMs: opts.targetWaitMs ?? 0,
        retryAfterSeconds: 2,
      },
      opts.onRefuse,
      opts.now,
    );
    if (opts.onStandingChange) this.commits.onStandingChange = opts.onStandingChange;
    this.prepareAhead = opts.prepareAhead ?? PREPARE_AHEAD;
  }

  /** Writes committing or waiting for their turn. */
  get depth(): number {
    return this.commits.active + this.commits.waiting;
  }

  /** A write with no preparation: it runs when every write before it has committed. */
  run<T>(task: () => Promise<T> | T, opts: WriteOptions = {}): Promise<T> {
    return this.commits.run(task, opts);
  }

  /**
   * `prepare` starts as soon as a preparation slot is free (slots are taken in arrival order); `commit` gets its
   * result once every earlier write has committed. The caller's promise settles when `commit` has. A write
   * refused (queue full, its deadline, its signal) before its turn stores nothing; its preparation, if it
   * started, runs out and is dropped.
   */
  async runStaged<P, T>(prepare: () => Promise<P>, commit: (prepared: P) => Promise<T> | T, opts: WriteOptions = {}): Promise<T> {
    // The place in line is taken now, so commits keep arrival order; a full queue refuses before any work.
    const turn = this.commits.acquire(opts);
    let refused = false;
    turn.catch(() => {
      refused = true;
    });
    let slotHeld = false;
    const releaseSlot = () => {
      if (slotHeld) this.releasePrepareSlot();
      slotHeld = false;
    };
    const prepared = this.acquirePrepareSlot().then(() => {
      slotHeld = true;
      if (refused) throw new Error('refused before preparing');
      return prepare();
    });
    // Its failure is reported below once this write's turn comes; handled here so it is not unhandled meanwhile.
    prepared.catch(releaseSlot);
    try {
      await turn;
    } catch (e) {
      prepared.then(releaseSlot, releaseSlot);
      throw e;
    }
    try {
      const p = await prepared;
      // Committing now: the next write may start preparing.
      releaseSlot();
      return await commit(p);
    } finally {
      this.commits.release();
    }
  }

  /** Resolves when every write queued so far has finished. */
  drain(): Promise<void> {
    return this.run(() => undefined, { bypassLimit: true });
  }

  private acquirePrepareSlot(): Promise<void> {
    if (this.preparing < this.prepareAhead) {
      this.preparing++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.prepareWaiters.push(resolve));
  }

  private releasePrepareSlot(): void {
    const next = this.prepareWaiters.shift();
    if (next) next();
    else this.preparing--;
  }
}
