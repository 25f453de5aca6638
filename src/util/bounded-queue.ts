import { QuarryError } from '../errors.ts';

export interface QueueLimits {
  /** Tasks that run at once. */
  concurrency: number;
  /** Tasks that may wait for a slot beyond those running; one more is refused at once. */
  queueLimit: number;
  /**
   * The longest a task waits for a slot before it is refused (0: no deadline). With `targetWaitMs` this is
   * CoDel's interval: how long waits past the target must last before the queue counts as standing, see below.
   */
  queueTimeoutMs: number;
  /**
   * CoDel-style admission (0 or absent: off; off too when queueTimeoutMs is 0). Once every task that started for
   * `queueTimeoutMs` had waited past this target (a standing queue: not a burst, nor a busy queue that keeps
   * moving), the wait allowed drops to the target: in arrival order a new task is refused at once while the head
   * has already waited longer, and a waiting task past it is refused instead of started, until the queue drains;
   * newest first (see newestFirst) every task past the target is shed and the newest is served. Under sustained
   * overload admitted tasks then wait about the target, not the whole queue (Nichols & Jacobson's CoDel: the
   * minimum wait over an interval; as Facebook applies it to RPC queues).
   */
  targetWaitMs?: number;
  /**
   * While standing, serve the newest task first, shed every task that has waited past the target (a full queue,
   * once they are shed, still refuses the new one: refused on arrival, it costs the HTTP front door least), and
   * stand until a slot has sat free for calmMs: Facebook's adaptive LIFO (searches). Without it the
   * queue keeps arrival order throughout (writes must commit in it): standing, it refuses a new task while the head
   * has waited past the target, sheds the head past it, and stops standing once a task starts within the target
   * with nothing left waiting.
   */
  newestFirst?: boolean;
  /**
   * Newest first only: tasks that run at once while the queue overflows — stands because it refused tasks for
   * being full throughout an interval (overflowGapMs) — until it calms (default: concurrency). Admitting at full
   * concurrency under such overload keeps every core busy, and an admitted task then waits where no queue sees it
   * (on this machine: for the event loop, behind the other searches' main-thread work); fewer leave the slack
   * that keeps an admitted task's latency near the unloaded one, at the price of throughput until the load falls.
   * A queue that stands only because its tasks waited past the target (a milder overload: a rebuild, a burst)
   * keeps every slot: there, fewer slots only refused more (147 searches in one soak window during a rebuild).
   */
  overflowConcurrency?: number;
  /**
   * Whether waits past the target alone (every start for an interval) make the queue stand (default true). The
   * search queue turns it off and stands only when it overflows: its queue limit already bounds the wait, and with
   * fewer clients than the limit (a page's users, the soak's 8) waits never overflow it. There standing on waits
   * only turned waits into refusals: after a stall or a dip in the machine's speed, the clients' next searches came
   * late in a row, the queue stood, and it shed 35-64 searches a window at 80-90% load in the soak (docs/history/soak.md).
   */
  standOnWaits?: boolean;
  /**
   * Newest first only: how long a slot must sit free with nothing waiting to end a standing queue (default: the
   * target). It must be a gap that overload practically never leaves between arrivals.
   */
  calmMs?: number;
  /**
   * Newest first only (0 or absent: off): a queue that refuses tasks for being full again and again, never more than
   * this many ms apart, for a whole interval (overflowIntervalMs), stands. Such a queue never shows its wait to the
   * CoDel measure when arrivals reach it in bursts (after the event loop was busy): the first of each burst starts at once.
   */
  overflowGapMs?: number;
  /** Newest first only: how long the run of refusals (overflowGapMs) must last to overflow (default: queueTimeoutMs). */
  overflowIntervalMs?: number;
  /**
   * Newest first only (0 or absent: off): a run of full-queue refusals (overflowGapMs) overflows before its interval
   * once it holds at least this many refusals and no fewer than the tasks that started meanwhile: arrivals at twice
   * what the slots finish, which a burst at a load the slots can carry does not keep up. At the onset of an overload
   * from idle, the interval's wait is when admitted tasks are slowest (two slots against a swamped main thread).
   */
  overflowQuickRefusals?: number;
  /**
   * Newest first only: while this says the server is behind (searches: the event loop's latest lag over a bound), a
   * refusal for a full queue overflows it at once. Requests the busy main thread has not read yet wait where the
   * queue cannot see them, so a full queue with the loop behind is an overload; a burst at a load the server carries
   * fills the queue without putting the loop that far behind. For the same reason an episode does not end while it
   * says so: neither the review (overflowStayRatio: the arrivals it counts leave out those not yet read) nor a slot
   * sitting free for calmMs (free while the loop was stalled, not idle). Both had let episodes go mid-overload, and
   * the searches due just after waited 100-180 ms (docs/history/overload.md).
   */
  serverBehind?: () => boolean;
  /**
   * Newest first only (0 or absent: off): an overflowing queue reviews each interval (queueTimeoutMs) the tasks that
   * arrived (queued, or refused for a full queue) against those that finished, and stops overflowing when fewer than
   * this many arrived per task finished: the load now fits the full concurrency, so it gets every slot back without
   * waiting for one to sit free (calmMs); it still stands (newest first, late tasks shed) until one does. Running
   * overflowConcurrency slots lowers throughput, so a load just below capacity keeps such a queue full and it never
   * calms on its own: 80% of capacity right after an overload was refused 13-16% by the search queue on one slot,
   * 1.3-1.7% with this exit (docs/history/overload.md). With one slot of two, 2 is about the full capacity: one slot
   * finishes more than half of what two do, so the ratio falls under 2 a little above it.
   */
  overflowStayRatio?: number;
  /**
   * How many of the latest intervals the review (overflowStayRatio) counts arrivals and finishes over (default 1;
   * fewer while the episode is younger). Under overload the event loop hands arrivals over unevenly: at 2x capacity
   * one 250-ms window in about sixty held 50 arrivals against 65-135 in the others, fell under the ratio alone, and
   * gave the slot back mid-overload; summed with its neighbour it does not. An episode's first review still counts
   * its one interval, so a burst taken for an overload is let go as soon as before.
   */
  overflowReviewWindows?: number;
  /**
   * Newest first only: while the queue keeps arrival order (not standing), a task that finds it full takes the place
   * of the oldest task waiting, which is refused (`queue_full`) instead of the arrival: drop from the front. The same
   * arrivals meet a full queue, and each drop counts as the same overflow, but what is admitted waits for the
   * queue to turn over (about queueLimit arrivals) rather than for it to be worked off (queueLimit tasks' work): at
   * twice capacity half as long. Until the queue is found overflowing (a tenth to a third of a second from idle)
   * arrival order with the arrival refused admitted a whole queue's wait (45-55 ms on this machine), and rows whose
   * onset took that long missed the 2x target (docs/history/overload.md). On the server the dropped search has been
   * through the pipeline already, where a refused arrival costs the front door least: below capacity it refused more.
   */
  dropOldestWhenFull?: boolean;
  /**
   * With dropOldestWhenFull, before the queue is found overflowing: while it keeps dropping (the last drop within
   * overflowGapMs, the gap that keeps a run of full-queue refusals going), a free slot takes the newest task waiting,
   * not the oldest. Dropping from the front bounds an admitted task's wait by the queue's turnover (about queueLimit
   * arrivals: 20-25 ms at twice capacity here, most of the 3x budget beside a search's own time), and onsets the rules
   * found overflowing only 0.3-0.5 s in still missed the target; newest first it waits for about one slot to free,
   * and the tasks it pushes down are the ones the next arrivals drop. Those the arrivals leave behind (a burst at or
   * below capacity) waited until the drops stopped and made the tail there (1x p99 74-143 ms against 46-63 in
   * arrival order), unless lateWhileDroppingMs refuses them; serving them once they had waited 30 ms instead missed
   * the 2x target again (docs/history/overload.md, "Runs of 2026-12-02 13:35-15:45" and "16:24-17:18").
   */
  newestFirstWhileDropping?: boolean;
  /**
   * With newestFirstWhileDropping (0 or absent: off): while the queue keeps dropping, a task pushed down that has
   * waited longer than this is refused (`queue_full`) as a slot frees, not left to be served once the drops stop.
   * The next arrivals would have dropped it anyway; left waiting, a burst's pushed-down tasks were what the tail at
   * and below capacity was made of (see newestFirstWhileDropping).
   */
  lateWhileDroppingMs?: number;
  /** What a refusal tells the client to wait before retrying (HTTP Retry-After). */
  retryAfterSeconds: number;
}

/**
 * A standing queue's episode, as it begins (and again if waits past the target turn into a full queue: `overflow`
 * then means fewer slots) and as it ends: what an operator needs to tell a real overload from a stall.
 */
export type StandingChange =
  | { standing: true; cause: 'waits' }
  /** Overflowing, and which rule found it: refusals throughout the interval, the quick count, or the server behind. */
  | { standing: true; cause: 'overflow'; by: OverflowRule }
  /**
   * Still standing, no longer overflowing: the review found the arrivals fit every slot (overflowStayRatio), so the
   * slots come back, and it goes on serving newest first and shedding late tasks until a slot sits free (calmMs).
   */
  | { standing: true; cause: 'fits' }
  | {
      standing: false;
      /** How long it stood. */
      forMs: number;
      /** Tasks refused meanwhile. */
      refused: number;
      /**
       * What ended it: a slot sat free for calmMs (`idle`), or, in arrival order, a task started within the target
       * with nothing left waiting (`drained`).
       */
      why: StandingEnd;
    };

/** Which rule found a full queue overflowing (overflowIntervalMs, overflowQuickRefusals, serverBehind). */
export type OverflowRule = 'interval' | 'quick' | 'behind';

/** What ends a standing queue's episode (StandingChange). */
export type StandingEnd = 'idle' | 'drained';

/** Why a task never ran. */
export type Refusal = 'queue_full' | 'queue_timeout' | 'aborted' | 'loop_lag';

interface Waiter {
  start: () => void;
  /** Refuses it without starting it: it waited too long (queue_timeout), or gave its place to a newer task (queue_full). */
  expire: (why?: 'queue_timeout' | 'queue_full') => void;
  since: number;
  /** Never refused (checkpoints, shutdown). */
  bypass: boolean;
}

/**
 * Bounded concurrency in front of a bounded FIFO queue with a deadline: the shape shared by search admission
 * (server/overload.ts) and the write queue (core/write-queue.ts). Past the queue limit a task is refused at
 * once, and one that waited past the deadline is refused then, both as `overloaded` with a Retry-After hint,
 * so a client learns early that it should come back later instead of waiting behind work that cannot finish
 * in time. A task's slot is held until the task settles, so the bound is on work actually running.
 */
export class BoundedQueue {
  private running = 0;
  private readonly waiters: Waiter[] = [];
  /**
   * CoDel's measure of a standing queue: since when every task that started had waited past the target (null: the
   * last one started within it). A queue that is never empty but keeps moving, its tasks starting within the
   * target, is busy, not standing: the first version counted any queue not emptied for an interval as standing
   * and refused searches at 80% of capacity in the soak.
   */
  private aboveTargetSince: number | null = null;
  /**
   * Once found standing, a newest-first queue stays so until a slot has sat free with nothing waiting for calmMs:
   * the arrivals no longer keep it busy (one in arrival order: see newestFirst). Served newest first, a standing
   * queue under overload does empty now and then (its newest task starts at once, the late ones are shed); ending
   * on that, it went back to arrival order and let waits grow for a whole interval before standing again, and at 2x
   * capacity p99 came from those swings. Under overload the next arrival comes well within calmMs (searches: three
   * targets); below capacity a slot soon waits that long.
   */
  private standing = false;
  /** Since when a slot has been free with nothing waiting (null: every slot busy, or a task waiting). */
  private freeSince: number | null = null;
  /**
   * The current run of refusals for a full queue, none more than overflowGapMs after the one before (null: none now):
   * when it began, its last refusal, how many, and the tasks started since it began (overflowQuickRefusals).
   */
  private refusalRun: { since: number; last: number; refused: number; started: number } | null = null;
  /** Standing because it overflowed (see overflowConcurrency): fewer slots until it calms. */
  private overflowing = false;
  /**
   * The overflowing queue's review (overflowStayRatio): when the current interval began, and the tasks that arrived
   * and finished in each of the episode's latest intervals (overflowReviewWindows), oldest first, the current last.
   */
  private review = { since: 0, windows: [{ arrived: 0, finished: 0 }] };
  /** Since when the queue stands, and what it refused since (StandingChange). */
  private standingSince = 0;
  private refusedWhileStanding = 0;
  /** Told when the queue begins or ends standing (the server logs it). */
  onStandingChange: (change: StandingChange) => void = () => {};

  constructor(
    readonly name: string,
    private readonly limits: QueueLimits,
    private readonly onRefuse: (why: Refusal) => void = () => {},
    /** Milliseconds, monotonic; tests pass their own. */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Slots for running tasks: fewer while the queue overflows (overflowConcurrency). */
  get slots(): number {
    const { concurrency, overflowConcurrency } = this.limits;
    return this.overflowing && overflowConcurrency !== undefined ? Math.min(concurrency, overflowConcurrency) : concurrency;
  }

  /** A refusal for a full queue: one more in a run of them that, lasting an interval, makes the queue stand. */
  private noteOverflow(now: number): void {
    const gap = this.limits.overflowGapMs ?? 0;
    if (gap <= 0 || !this.limits.newestFirst || (this.limits.targetWaitMs ?? 0) <= 0) return;
    if (this.refusalRun === null || now - this.refusalRun.last > gap) this.refusalRun = { since: now, last: now, refused: 0, started: 0 };
    const run = this.refusalRun;
    run.last = now;
    run.refused++;
    const quick = this.limits.overflowQuickRefusals ?? 0;
    const lasted = now - run.since >= (this.limits.overflowIntervalMs ?? this.limits.queueTimeoutMs);
    const outpaced = quick > 0 && run.refused >= quick && run.refused >= run.started;
    const by: OverflowRule | null = lasted ? 'interval' : outpaced ? 'quick' : this.limits.serverBehind?.() ? 'behind' : null;
    if (by !== null && !this.overflowing) {
      this.beginStanding(now, { standing: true, cause: 'overflow', by });
      this.overflowing = true;
      this.review = { since: now, windows: [{ arrived: 0, finished: 0 }] };
    }
  }

  /**
   * An overflowing queue's review, once an interval has passed since the last (overflowStayRatio): it stops standing
   * if, over the latest overflowReviewWindows intervals, fewer tasks arrived than the ratio times those that
   * finished. Windows in which nothing finished (a stall) never end it.
   */
  private reviewOverflow(now: number): void {
    const ratio = this.limits.overflowStayRatio ?? 0;
    if (ratio <= 0 || !this.overflowing || now - this.review.since < this.limits.queueTimeoutMs) return;
    const { windows } = this.review;
    let arrived = 0;
    let finished = 0;
    for (const w of windows) {
      arrived += w.arrived;
      finished += w.finished;
    }
    // The next interval begins; it and the latest ones before it are what the next review counts.
    this.review.since = now;
    windows.push({ arrived: 0, finished: 0 });
    windows.splice(0, windows.length - Math.max(1, this.limits.overflowReviewWindows ?? 1));
    if (!(finished > 0 && arrived < ratio * finished)) return;
    // Arrivals the busy main thread has not read yet are not counted: while it is behind, they are a backlog, not a fall.
    if (this.limits.serverBehind?.()) return;
    // The slots come back, the episode does not end: served newest first, an admitted task still waits at most the
    // target, and the queue calms once a slot sits free (noteIdle). Ended here, the queue went back to arrival order,
    // filled, and admitted a full queue's waits (45-55 ms) until it overflowed again; at 2x capacity on a machine
    // where one slot does nearly what two do, the review's ratio was a coin toss, and rows that let the episode go
    // two to five times had their p99 from those waits (2026-12-02, docs/history/overload.md).
    this.endOverflow();
    this.onStandingChange({ standing: true, cause: 'fits' });
    // Back to every slot: the tasks waiting may start now.
    this.pump();
  }

  /** A task arrived: queued, or refused for a full queue (overflowStayRatio counts them while overflowing). */
  private noteArrival(now: number): void {
    if (!this.overflowing) return;
    this.review.windows.at(-1)!.arrived++;
    this.reviewOverflow(now);
  }

  private beginStanding(now: number, change: Extract<StandingChange, { cause: 'waits' | 'overflow' }>): void {
    if (!this.standing) {
      this.standing = true;
      this.standingSince = now;
      this.refusedWhileStanding = 0;
    }
    this.onStandingChange(change);
  }

  /** A newest-first queue's episode is over (a slot sat free, or arrivals fell, see overflowStayRatio): every measure starts afresh. */
  private calm(now: number, why: StandingEnd): void {
    this.endStanding(now, why);
    this.aboveTargetSince = null;
    this.endOverflow();
  }

  /** Every slot back, and a new run of refusals needed to overflow again (the episode itself may go on). */
  private endOverflow(): void {
    this.refusalRun = null;
    this.overflowing = false;
  }

  private endStanding(now: number, why: StandingEnd): void {
    if (!this.standing) return;
    this.standing = false;
    this.onStandingChange({ standing: false, forMs: now - this.standingSince, refused: this.refusedWhileStanding, why });
  }

  /** CoDel's bookkeeping as a task starts, after waiting `waited` ms. */
  private noteStart(waited: number, now: number): void {
    if (this.refusalRun) this.refusalRun.started++;
    if ((this.limits.targetWaitMs ?? 0) <= 0) return;
    if (waited > (this.limits.targetWaitMs ?? 0)) this.aboveTargetSince ??= now;
    else if (!this.standing) this.aboveTargetSince = null;
    else if (!this.limits.newestFirst && this.waiters.length === 0) {
      this.aboveTargetSince = null;
      this.endStanding(now, 'drained');
    }
  }

  /** Keeps freeSince, and ends a standing queue whose free slot has waited calmMs for work (see standing). */
  private noteIdle(now: number): void {
    if (this.running >= this.slots || this.waiters.length > 0) {
      this.freeSince = null;
      return;
    }
    this.freeSince ??= now;
    const calmMs = this.limits.calmMs ?? this.limits.targetWaitMs ?? 0;
    // A slot that sat free while the main thread was behind (its arrivals unread) is a stall, not a lull.
    if (this.limits.newestFirst && this.standing && now - this.freeSince >= calmMs && !this.limits.serverBehind?.()) {
      this.calm(now, 'idle');
    }
  }

  /**
   * Tasks wait past the target now, or the last to start had (or the queue stands): the work it admits is at
   * its limit, and background work should give way (LivePressure).
   */
  get pressed(): boolean {
    const head = this.waiters[0];
    return this.standing || this.aboveTargetSince !== null || (head !== undefined && this.now() - head.since > (this.limits.targetWaitMs ?? 0));
  }

  /**
   * Whether the queue stands: every task that started for an interval had waited past the target, or (in arrival
   * order only) the head has waited a whole interval (nothing started at all), or (newest first, overflowGapMs) it
   * has refused tasks for being full throughout an interval. Once standing, a newest-first queue stays so until a
   * slot has sat free, nothing waiting, for calmMs (noteIdle).
   */
  private isStanding(now: number): boolean {
    const target = this.limits.targetWaitMs ?? 0;
    const interval = this.limits.queueTimeoutMs;
    // No deadline (timeout 0) means no interval either: such a queue never refuses on time, whatever the target.
    if (target <= 0 || interval <= 0) return false;
    if (!this.standing) {
      const head = this.waiters[0];
      // Newest first, a head that waited a whole interval with nothing started is one stall of the main thread (a
      // generation swap, a GC), whose backlog drains in a few searches; standing then shed every search that waited
      // through it past the target (13 in one soak sample at a rebuild's swap). Its deadline's timer still refuses
      // a search that waits the whole interval.
      const stalled = !this.limits.newestFirst && head !== undefined && now - head.since >= interval;
      const late = this.limits.standOnWaits !== false && this.aboveTargetSince !== null && now - this.aboveTargetSince >= interval;
      if (stalled || late) this.beginStanding(now, { standing: true, cause: 'waits' });
    }
    return this.standing;
  }

  /** In arrival order: the queue stands and its head has waited past the target (a new task would wait longer). */
  private overTarget(now: number): boolean {
    const head = this.waiters[0];
    return head !== undefined && now - head.since > (this.limits.targetWaitMs ?? 0) && this.isStanding(now);
  }

  /** A standing queue sheds every task that has waited past the target: it could only be answered late. */
  private shedLate(now: number): void {
    if (this.isStanding(now)) this.refuseWaitedPast(now, this.limits.targetWaitMs ?? 0, 'queue_timeout');
  }

  /** Refuses every waiting task that may be refused and has waited longer than `ms`. */
  private refuseWaitedPast(now: number, ms: number, why: 'queue_timeout' | 'queue_full'): void {
    for (const w of [...this.waiters]) if (!w.bypass && now - w.since > ms) w.expire(why);
  }

  /** Whether the queue stands now (see isStanding); a gauge for operators. */
  get standingNow(): boolean {
    return this.standing;
  }

  /** Tasks running now. */
  get active(): number {
    return this.running;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Runs `task` once a slot is free. `bypassLimit` (checkpoints, shutdown) queues past the limit and the
   * deadline: such a task is never refused. `signal` withdraws a task that is still waiting; its reason (a
   * QuarryError) is what the caller gets. A task that already started is not interrupted.
   */
  async run<T>(task: () => Promise<T> | T, opts: { signal?: AbortSignal; bypassLimit?: boolean } = {}): Promise<T> {
    await this.acquire(opts);
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /**
   * What acquire() would answer a new task right now, without queueing it: the refusal, or null when it would
   * run or wait. Lets a caller refuse before spending anything on the task (the HTTP front door, server/overload.ts);
   * the caller refuses on a refusal, so a `queue_full` counts as an overflow (overflowGapMs) and as an arrival
   * (overflowStayRatio), whose review may end an episode and start waiting tasks on the slots it gives back.
   */
  refusalNow(): 'queue_full' | 'queue_timeout' | null {
    if (this.running < this.slots && this.waiters.length === 0) return null;
    const now = this.now();
    // A full queue in arrival order admits the arrival in place of its oldest task (dropOldestWhenFull): acquire()
    // decides that, and counts it, once the task reaches it.
    if (this.dropsOldest() && this.waiters.some((w) => !w.bypass)) return null;
    if (this.limits.newestFirst) {
      // Standing, the tasks past the target are about to be shed: they leave room.
      const target = this.limits.targetWaitMs ?? 0;
      const waiting = this.isStanding(now) ? this.waiters.filter((w) => w.bypass || now - w.since <= target).length : this.waiters.length;
      if (waiting < this.limits.queueLimit) return null;
      // The caller refuses the task on this answer (the front door), so it counts as an overflow and an arrival.
      this.noteOverflow(now);
      this.noteArrival(now);
      if (this.standing) this.refusedWhileStanding++;
      return 'queue_full';
    }
    if (this.waiters.length >= this.limits.queueLimit) return 'queue_full';
    return this.overTarget(now) ? 'queue_timeout' : null;
  }

  /** Whether a free slot takes the newest task before the queue stands: a drop within overflowGapMs (newestFirstWhileDropping). */
  private newestWhileDropping(now: number): boolean {
    const run = this.refusalRun;
    return this.limits.newestFirstWhileDropping === true && this.dropsOldest() && run !== null && now - run.last <= (this.limits.overflowGapMs ?? 0);
  }

  /** While dropping, refuses the tasks pushed down past lateWhileDroppingMs: they could only be served late (see there). */
  private shedLateWhileDropping(now: number): void {
    const late = this.limits.lateWhileDroppingMs ?? 0;
    if (late > 0 && this.newestWhileDropping(now)) this.refuseWaitedPast(now, late, 'queue_full');
  }

  /** Whether a task finding the queue full would take the oldest waiting task's place (dropOldestWhenFull). */
  private dropsOldest(): boolean {
    return this.limits.dropOldestWhenFull === true && this.limits.newestFirst === true && !this.standing;
  }

  /** Waits for a slot (see run); the caller must call release() exactly once after. */
  acquire(opts: { signal?: AbortSignal; bypassLimit?: boolean } = {}): Promise<void> {
    const { signal, bypassLimit = false } = opts;
    if (signal?.aborted) return Promise.reject(this.refusal('aborted', signal));
    if (!bypassLimit) this.noteArrival(this.now());
    if (this.running < this.slots && this.waiters.length === 0) {
      const now = this.now();
      this.noteIdle(now);
      this.running++;
      this.noteStart(0, now);
      this.noteIdle(now);
      return Promise.resolve();
    }
    const now = this.now();
    if (!bypassLimit && this.limits.newestFirst) this.shedLate(now);
    if (!bypassLimit && this.waiters.length >= this.limits.queueLimit) {
      this.noteOverflow(now);
      const oldest = this.dropsOldest() ? this.waiters.find((w) => !w.bypass) : undefined;
      if (oldest === undefined) return Promise.reject(this.refusal('queue_full'));
      oldest.expire('queue_full');
    }
    if (!bypassLimit && !this.limits.newestFirst && this.overTarget(now)) return Promise.reject(this.refusal('queue_timeout'));
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const leave = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        leave();
        reject(this.refusal('aborted', signal));
      };
      const waiter: Waiter = {
        since: now,
        bypass: bypassLimit,
        start: () => {
          leave();
          this.running++;
          const at = this.now();
          this.noteStart(at - now, at);
          resolve();
        },
        expire: (why = 'queue_timeout') => {
          leave();
          reject(this.refusal(why));
        },
      };
      this.waiters.push(waiter);
      this.freeSince = null;
      signal?.addEventListener('abort', onAbort, { once: true });
      if (!bypassLimit && this.limits.queueTimeoutMs > 0) {
        timer = setTimeout(() => {
          leave();
          reject(this.refusal('queue_timeout'));
        }, this.limits.queueTimeoutMs);
      }
    });
  }

  release(): void {
    this.running--;
    if (this.overflowing) {
      this.review.windows.at(-1)!.finished++;
      this.reviewOverflow(this.now());
    }
    this.pump();
    this.noteIdle(this.now());
  }

  private pump(): void {
    while (this.running < this.slots && this.waiters.length > 0) {
      if (!this.limits.newestFirst) {
        // In arrival order, a standing queue past its target sheds from the head (those that waited longest).
        const head = this.waiters[0]!;
        if (!head.bypass && this.overTarget(this.now())) head.expire();
        else head.start();
        continue;
      }
      this.shedLate(this.now());
      this.shedLateWhileDropping(this.now());
      if (this.waiters.length === 0) break;
      // Adaptive LIFO (Maurer, "Fail at Scale", ACM Queue 2015): a queue in order of arrival while it copes; once
      // standing, newest first, so a task that is admitted starts within the target and those that have waited too
      // long are the ones refused. A task that may not be refused (a checkpoint) is not left behind, though. With
      // newestFirstWhileDropping a full queue that keeps dropping serves newest first before it stands, too, having
      // refused the tasks it pushed down past lateWhileDroppingMs.
      const newest = this.standing || this.newestWhileDropping(this.now());
      const next = newest ? (this.waiters.find((w) => w.bypass) ?? this.waiters.at(-1)!) : this.waiters[0]!;
      next.start();
    }
  }

  private refusal(why: 'queue_full' | 'queue_timeout' | 'aborted', signal?: AbortSignal): unknown {
    this.onRefuse(why);
    if (this.standing && why !== 'aborted') this.refusedWhileStanding++;
    if (why === 'aborted') return signal?.reason instanceof QuarryError ? signal.reason : new QuarryError('timeout', `${this.name}: the request was withdrawn`);
    return this.refusalError(why);
  }

  /** The refusal acquire() gives for `why` (an `overloaded` QuarryError), without counting it. */
  refusalError(why: 'queue_full' | 'queue_timeout'): QuarryError {
    const { queueLimit, queueTimeoutMs, retryAfterSeconds } = this.limits;
    const message =
      why === 'queue_full'
        ? `${this.name} queue is full (${queueLimit} waiting); retry shortly`
        : this.limits.targetWaitMs
          ? `${this.name} queue is running late (waits past ${this.limits.targetWaitMs} ms, or ${queueTimeoutMs} ms in a burst); retry shortly`
          : `${this.name} waited ${queueTimeoutMs} ms without a free slot; retry shortly`;
    return new QuarryError('overloaded', message, { details: { retryAfterSeconds, reason: why } });
  }
}
