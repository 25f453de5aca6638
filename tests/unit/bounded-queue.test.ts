import { describe, expect, it } from 'vitest';
import { untilCommitted, withTimeout } from '../../src/core/time-limits.ts';
import { QuarryError } from '../../src/errors.ts';
import { TokenBucketStore } from '../../src/server/token-bucket.ts';
import { BoundedQueue, type QueueLimits, type Refusal, type StandingChange } from '../../src/util/bounded-queue.ts';

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
/** Lets queued promise callbacks run. */
const settle = () => new Promise((r) => setImmediate(r));

/**
 * Tasks on `q` that each run until the test lets them finish: submit() queues one (a refusal is its outcome),
 * finishOne() lets the longest-running finish, finishAll() lets every one finish, those that start meanwhile too.
 */
function gatedTasks(q: BoundedQueue) {
  const running: Array<() => void> = [];
  const all: Promise<unknown>[] = [];
  return {
    submit() {
      const gate = deferred();
      all.push(
        q
          .run(() => {
            running.push(gate.resolve);
            return gate.promise;
          })
          .catch(() => 'refused'),
      );
    },
    finishOne() {
      running.shift()?.();
    },
    async finishAll() {
      for (let i = 0; i < 20 && running.length > 0; i++) {
        for (const done of running.splice(0)) done();
        await settle();
      }
      await Promise.all(all);
    },
  };
}

/**
 * The CoDel scenario both orders are tested on: a task holds the only slot; A waits past the target, B and a checkpoint
 * come in a burst, C once the queue has stood a whole interval; then the slot frees and D comes to an empty queue.
 * A clock the test moves: no timing. The interval (queueTimeoutMs) is a minute so its real timer never fires.
 */
async function codelScenario(targetWaitMs: number, extra: Partial<QueueLimits> = {}) {
  let t = 0;
  const reasons: Refusal[] = [];
  const q = new BoundedQueue(
    'test',
    { concurrency: 1, queueLimit: 10, queueTimeoutMs: 60_000, retryAfterSeconds: 1, targetWaitMs, ...extra },
    (why) => reasons.push(why),
    () => t,
  );
  const gate = deferred();
  const first = q.run(() => gate.promise);
  const outcome = (p: Promise<unknown>) =>
    p.then(
      () => 'ran',
      (e: QuarryError) => String(e.details?.reason),
    );
  const a = outcome(q.run(() => 'a'));
  t = 30_000; // A has waited 30 s, past the 1 s target, but the queue has stood for less than the interval: a burst.
  const b = outcome(q.run(() => 'b'));
  const checkpoint = outcome(q.run(() => 'checkpoint', { bypassLimit: true }));
  t = 61_000; // The queue has not emptied for a whole interval and its head waited past the target.
  const c = outcome(q.run(() => 'c'));
  await settle();
  gate.resolve();
  await first;
  const results = { a: await a, b: await b, c: await c, checkpoint: await checkpoint };
  // Emptied: a new task is admitted again.
  const d = await outcome(q.run(() => 'd'));
  return { results, d, reasons };
}

describe('BoundedQueue', () => {
  it('runs at most `concurrency` tasks at once, the rest in arrival order', async () => {
    const q = new BoundedQueue('test', { concurrency: 2, queueLimit: 10, queueTimeoutMs: 0, retryAfterSeconds: 1 });
    const gates = Array.from({ length: 5 }, () => deferred());
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const runs = gates.map((g, i) =>
      q.run(async () => {
        started.push(i);
        peak = Math.max(peak, ++running);
        await g.promise;
        running--;
        return i;
      }),
    );
    await settle();
    expect(started).toEqual([0, 1]);
    expect(q.active).toBe(2);
    expect(q.waiting).toBe(3);
    gates[1]!.resolve();
    await settle();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
    expect(q.active + q.waiting).toBe(0);
  });

  it('refuses at once past the queue limit, as `overloaded` with a Retry-After hint, and counts why', async () => {
    const reasons: Refusal[] = [];
    const q = new BoundedQueue('test', { concurrency: 1, queueLimit: 1, queueTimeoutMs: 0, retryAfterSeconds: 3 }, (why) => reasons.push(why));
    const gate = deferred();
    const first = q.run(() => gate.promise);
    const second = q.run(() => 'second');
    const third = q.run(() => 'third');
    await expect(third).rejects.toMatchObject({ code: 'overloaded', details: { retryAfterSeconds: 3, reason: 'queue_full' } });
    expect(reasons).toEqual(['queue_full']);
    // bypassLimit (checkpoints, shutdown) is never refused.
    const bypass = q.run(() => 'bypass', { bypassLimit: true });
    gate.resolve();
    await first;
    expect(await second).toBe('second');
    expect(await bypass).toBe('bypass');
  });

  it('refuses a task that waited past the deadline, and the queue keeps working after', async () => {
    const reasons: Refusal[] = [];
    const q = new BoundedQueue('test', { concurrency: 1, queueLimit: 5, queueTimeoutMs: 20, retryAfterSeconds: 1 }, (why) => reasons.push(why));
    const gate = deferred();
    const first = q.run(() => gate.promise);
    let ran = false;
    const late = q.run(() => {
      ran = true;
    });
    await expect(late).rejects.toMatchObject({ code: 'overloaded', details: { reason: 'queue_timeout' } });
    expect(q.waiting).toBe(0);
    gate.resolve();
    await first;
    expect(ran).toBe(false);
    expect(reasons).toEqual(['queue_timeout']);
    expect(await q.run(() => 'after')).toBe('after');
  });

  it('withdraws a waiting task when its signal aborts, with the signal reason, and never runs it', async () => {
    const q = new BoundedQueue('test', { concurrency: 1, queueLimit: 5, queueTimeoutMs: 0, retryAfterSeconds: 1 });
    const gate = deferred();
    const first = q.run(() => gate.promise);
    const controller = new AbortController();
    let ran = false;
    const waiting = q.run(
      () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    const reason = new QuarryError('timeout', 'gave up');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(q.waiting).toBe(0);
    gate.resolve();
    await first;
    await settle();
    expect(ran).toBe(false);
  });

  it('CoDel target: a burst may wait the interval, a standing queue past the target sheds at once and from the head', async () => {
    const codel = await codelScenario(1_000);
    expect(codel.results).toEqual({ a: 'queue_timeout', b: 'queue_timeout', c: 'queue_timeout', checkpoint: 'ran' });
    expect(codel.d).toBe('ran');
    expect(codel.reasons).toEqual(['queue_timeout', 'queue_timeout', 'queue_timeout']);
    // Off (0): the same sequence admits and runs everything (the interval alone is the deadline).
    const off = await codelScenario(0);
    expect(off.results).toEqual({ a: 'ran', b: 'ran', c: 'ran', checkpoint: 'ran' });
  });

  describe('CoDel: standing means every start for an interval waited past the target', () => {
    // A clock the test moves; the interval is 100 s so no real timer fires.
    const limits = { concurrency: 1, queueLimit: 10, queueTimeoutMs: 100_000, targetWaitMs: 10_000, retryAfterSeconds: 1 };
    const setup = () => {
      const clock = { t: 0 };
      const reasons: Refusal[] = [];
      const q = new BoundedQueue(
        'test',
        limits,
        (why) => reasons.push(why),
        () => clock.t,
      );
      const all: Array<Promise<unknown>> = [];
      const task = () => {
        const d = deferred();
        all.push(q.run(() => d.promise).catch((e: QuarryError) => String(e.details?.reason)));
        return d;
      };
      return { clock, reasons, q, all, task };
    };

    it('a busy queue that never empties but keeps moving within the target refuses nothing', async () => {
      const { clock, reasons, all, task } = setup();
      let running = task();
      let head = task();
      for (let i = 0; i < 30; i++) {
        clock.t += 11_000; // the head has waited past the target: a probe arrives now
        const probe = task();
        running.resolve();
        await settle(); // the head starts, 11 s late
        const next = task(); // the queue never empties
        clock.t += 1_000;
        head.resolve();
        await settle(); // the probe starts 1 s after it came: the queue moves within the target
        running = probe;
        head = next;
      }
      running.resolve();
      await settle();
      head.resolve();
      await Promise.all(all);
      // The rule before counted a queue not emptied for an interval as standing, and refused here from the 10th round.
      expect(reasons).toEqual([]);
    });

    it('when every start for an interval waited past the target, a late arrival is refused; once drained, admitted again', async () => {
      const { clock, reasons, q, all, task } = setup();
      let running = task();
      let head = task();
      for (let i = 0; i < 5; i++) {
        clock.t += 20_000;
        running.resolve();
        await settle(); // every head starts 20 s late (at 20, 40, … 100 s)
        running = head;
        head = task();
      }
      // 120 s: every start for the last 100 s (the interval) waited past the target, and the head has waited 20 s.
      clock.t += 20_000;
      await expect(q.run(() => 'late')).rejects.toMatchObject({ details: { reason: 'queue_timeout' } });
      running.resolve();
      await settle(); // the head, past the target in a standing queue, is shed instead of started
      await Promise.all(all);
      expect(reasons).toEqual(['queue_timeout', 'queue_timeout']);
      // Drained: a task starts at once, and the standing state is gone.
      const gate = deferred();
      const first = q.run(() => gate.promise);
      const second = q.run(() => 'second');
      clock.t += 15_000; // the second has waited past the target, but the queue does not stand any more
      const third = q.run(() => 'third');
      gate.resolve();
      expect([await first, await second, await third]).toEqual([undefined, 'second', 'third']);
      expect(reasons).toEqual(['queue_timeout', 'queue_timeout']);
    });
  });

  it('no deadline (queueTimeoutMs 0) means no CoDel interval: a standing queue past the target still runs everything', async () => {
    let t = 0;
    const reasons: Refusal[] = [];
    const q = new BoundedQueue(
      'test',
      { concurrency: 1, queueLimit: 10, queueTimeoutMs: 0, targetWaitMs: 10, retryAfterSeconds: 1 },
      (why) => reasons.push(why),
      () => t,
    );
    const gate = deferred();
    const first = q.run(() => gate.promise);
    const a = q.run(() => 'a');
    t = 5_000; // the head has waited 500× the target, and the queue has never emptied
    const b = q.run(() => 'b');
    gate.resolve();
    await first;
    expect([await a, await b]).toEqual(['a', 'b']);
    expect(reasons).toEqual([]);
  });

  it('is pressed (background work should give way) while a task waits past the target, or the last one started past it', async () => {
    let t = 0;
    const q = new BoundedQueue(
      'test',
      { concurrency: 1, queueLimit: 10, queueTimeoutMs: 60_000, targetWaitMs: 1_000, retryAfterSeconds: 1 },
      undefined,
      () => t,
    );
    expect(q.pressed).toBe(false);
    const gate = deferred();
    const first = q.run(() => gate.promise);
    const second = deferred();
    const waiting = q.run(() => second.promise);
    t = 500;
    expect(q.pressed).toBe(false); // waiting, but within the target
    t = 1_500;
    expect(q.pressed).toBe(true); // the head is past the target
    gate.resolve();
    await first;
    await settle();
    expect(q.waiting).toBe(0);
    expect(q.pressed).toBe(true); // nothing waits, but the last start had waited past the target
    second.resolve();
    await waiting;
    expect(await q.run(() => 'next')).toBe('next'); // starts at once, within the target
    expect(q.pressed).toBe(false);
  });

  it('frees the slot of a task that fails', async () => {
    const q = new BoundedQueue('test', { concurrency: 1, queueLimit: 1, queueTimeoutMs: 0, retryAfterSeconds: 1 });
    await expect(q.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(q.active).toBe(0);
    expect(await q.run(() => 'next')).toBe('next');
  });
});

describe('BoundedQueue, newest first while standing (adaptive LIFO: searches)', () => {
  it('a stall (nothing starts for an interval) does not make the queue stand: its backlog is served in arrival order', async () => {
    const codel = await codelScenario(1_000, { newestFirst: true });
    // The slot was held for a whole interval with nothing started: one stall of the main thread (a GC, a generation
    // swap), whose backlog drains in a few tasks. Nothing is shed for it (the deadline's own timer still refuses a
    // task that waits past it; this test's clock never fires it). In arrival order (the test above) the stall alone
    // makes the queue stand and shed A and B.
    expect(codel.results).toEqual({ a: 'ran', b: 'ran', c: 'ran', checkpoint: 'ran' });
    expect(codel.d).toBe('ran');
    expect(codel.reasons).toEqual([]);
    // Off (0): the same sequence admits and runs everything (the interval alone is the deadline).
    const off = await codelScenario(0, { newestFirst: true });
    expect(off.results).toEqual({ a: 'ran', b: 'ran', c: 'ran', checkpoint: 'ran' });
  });

  it('standing (every start for an interval waited past the target), it serves newest first, refuses the new when full of tasks within the target, and stands until a slot sits free for the target', async () => {
    let t = 0;
    const reasons: Refusal[] = [];
    const q = new BoundedQueue(
      'test',
      { concurrency: 1, queueLimit: 2, queueTimeoutMs: 60_000, targetWaitMs: 1_000, retryAfterSeconds: 1, newestFirst: true },
      (why) => reasons.push(why),
      () => t,
    );
    const order: string[] = [];
    const outcome = (name: string) =>
      q
        .run(() => void order.push(name))
        .then(
          () => 'ran',
          (e: QuarryError) => String(e.details?.reason),
        );
    const gate = deferred();
    const warm = deferred();
    const w0 = q.run(() => warm.promise);
    const first = q.run(() => gate.promise);
    t = 2_000;
    warm.resolve();
    await w0;
    await settle(); // `first` starts 2 s late, past the target
    const a = outcome('a');
    t = 62_000; // every start for an interval (60 s) waited past the target: the queue stands, and A is past the target
    const x = outcome('x');
    const y = outcome('y');
    t = 62_500;
    const z = outcome('z'); // two waiting within the target, the limit is two: Z is refused on arrival
    expect(q.refusalNow()).toBe('queue_full');
    await settle();
    expect(reasons).toEqual(['queue_timeout', 'queue_full']);
    gate.resolve();
    await first;
    expect({ a: await a, x: await x, y: await y, z: await z }).toEqual({ a: 'queue_timeout', x: 'ran', y: 'ran', z: 'queue_full' });
    expect(order).toEqual(['y', 'x']);
    // Drained, but work comes again before a slot has sat free for the target: still the same overload, newest first.
    const again = async () => {
      const gate2 = deferred();
      const busy = q.run(() => gate2.promise);
      order.length = 0;
      const [p, r] = [outcome('p'), outcome('r')];
      gate2.resolve();
      await busy;
      expect([await p, await r]).toEqual(['ran', 'ran']);
      return [...order];
    };
    t = 63_000;
    expect(await again()).toEqual(['r', 'p']);
    // A slot free, nothing waiting, for the target's length (1 s): the overload is over, arrival order again.
    t = 64_000;
    expect(await again()).toEqual(['p', 'r']);
    expect(reasons).toEqual(['queue_timeout', 'queue_full']);
  });
});

describe('BoundedQueue, fewer slots while it overflows (searches under sustained overload)', () => {
  const outcomeOf = (p: Promise<unknown>) =>
    p.then(
      () => 'ran',
      (e: QuarryError) => String(e.details?.reason),
    );
  /** Two slots, one while overflowing; a 1-s target, a minute's interval (its timer never fires), calm after 3 s. */
  const overflowLimits = (queueLimit: number): QueueLimits => ({
    concurrency: 2,
    overflowConcurrency: 1,
    queueLimit,
    queueTimeoutMs: 60_000,
    targetWaitMs: 1_000,
    calmMs: 3_000,
    overflowGapMs: 100,
    newestFirst: true,
    retryAfterSeconds: 1,
  });
  /** Tasks held open by a gate, counting how many run at once now and at most. */
  const counted = () => {
    const c = {
      running: 0,
      most: 0,
      task: (gate: Promise<void>) => async () => {
        c.running++;
        c.most = Math.max(c.most, c.running);
        await gate;
        c.running--;
      },
    };
    return c;
  };

  it('a queue refusing for being full throughout an interval stands, and then runs overflowConcurrency tasks at once until a slot sits free for calmMs', async () => {
    let t = 0;
    const reasons: Refusal[] = [];
    const q = new BoundedQueue(
      'test',
      overflowLimits(1),
      (why) => reasons.push(why),
      () => t,
    );
    const c = counted();
    // Two slots busy, one waiting: full. Arrivals refused for a full queue every 50 ms (within the 100-ms gap).
    const gates = [deferred(), deferred(), deferred()];
    const busy = gates.map((g) => outcomeOf(q.run(c.task(g.promise))));
    for (t = 0; t < 60_000; t += 50) expect(q.refusalNow()).toBe('queue_full');
    expect(q.standingNow).toBe(false); // 59.95 s of overflow: less than the interval
    t = 60_000;
    expect(q.refusalNow()).toBe('queue_full');
    expect(q.standingNow).toBe(true);
    // Standing: a slot that frees is not refilled while the other still runs (one slot while standing). The task
    // that waited through the overflow, 60 s past the target, is shed as the new one X queues.
    gates[0]!.resolve();
    await settle();
    const xGate = deferred();
    const x = outcomeOf(q.run(c.task(xGate.promise)));
    await settle();
    expect(c.running).toBe(1); // X waits, though a second slot is free
    gates[1]!.resolve();
    await settle();
    expect(c.running).toBe(1); // X runs, alone
    xGate.resolve();
    expect(await Promise.all(busy)).toEqual(['ran', 'ran', 'queue_timeout']);
    expect(await x).toBe('ran');
    expect(c.most).toBe(2);
    // Still standing: the next two arrivals do not run side by side.
    t = 61_000; // a slot free for 1 s < calmMs
    c.most = 0;
    const [g1, g2] = [deferred(), deferred()];
    const pair = [outcomeOf(q.run(c.task(g1.promise))), outcomeOf(q.run(c.task(g2.promise)))];
    await settle();
    expect(c.running).toBe(1);
    g1.resolve();
    g2.resolve();
    expect(await Promise.all(pair)).toEqual(['ran', 'ran']);
    expect(c.most).toBe(1);
    // A slot free with nothing waiting for calmMs: the overload is over, two slots again.
    t = 64_000;
    expect(q.refusalNow()).toBeNull();
    const [h1, h2] = [deferred(), deferred()];
    const again = [outcomeOf(q.run(c.task(h1.promise))), outcomeOf(q.run(c.task(h2.promise)))];
    await settle();
    expect(q.standingNow).toBe(false);
    expect(c.running).toBe(2);
    h1.resolve();
    h2.resolve();
    expect(await Promise.all(again)).toEqual(['ran', 'ran']);
    expect(reasons.filter((r) => r !== 'queue_full')).toEqual(['queue_timeout']);
  });

  it('a queue standing only on waits past the target keeps every slot (overflowConcurrency is for overflow)', async () => {
    let t = 0;
    const q = new BoundedQueue(
      'test',
      overflowLimits(10),
      () => {},
      () => t,
    );
    const [g1, g2, ga] = [deferred(), deferred(), deferred()];
    const held = [q.run(() => g1.promise), q.run(() => g2.promise)];
    const a = q.run(() => ga.promise); // waits
    t = 2_000;
    g1.resolve();
    await held[0];
    await settle(); // A starts 2 s late, past the target
    t = 62_000; // every start for an interval waited past the target: standing
    expect(q.refusalNow()).toBeNull();
    expect(q.standingNow).toBe(true);
    expect(q.slots).toBe(2);
    g2.resolve();
    ga.resolve();
    await Promise.all([held[1], a]);
    // Still standing (no slot free for calmMs yet), and two run side by side.
    const c = counted();
    const [x, y] = [deferred(), deferred()];
    const both = [q.run(c.task(x.promise)), q.run(c.task(y.promise))];
    await settle();
    expect(q.standingNow).toBe(true);
    expect(c.most).toBe(2);
    x.resolve();
    y.resolve();
    await Promise.all(both);
  });

  it('with standOnWaits off (searches), waits past the target alone never make it stand: late tasks run, none is shed', async () => {
    const scenario = async (standOnWaits: boolean) => {
      let t = 0;
      const reasons: Refusal[] = [];
      const q = new BoundedQueue(
        'test',
        { ...overflowLimits(10), standOnWaits },
        (why) => reasons.push(why),
        () => t,
      );
      const [g1, g2, ga] = [deferred(), deferred(), deferred()];
      const order: string[] = [];
      const held = [q.run(() => g1.promise), q.run(() => g2.promise)];
      const a = q.run(() => ga.promise);
      const rest = ['b', 'c'].map((name) =>
        q
          .run(() => void order.push(name))
          .then(
            () => 'ran',
            (e: QuarryError) => String(e.details?.reason),
          ),
      );
      t = 2_000;
      g1.resolve();
      await held[0];
      await settle(); // A starts 2 s late, past the target; B and C wait on
      t = 62_000; // a whole interval of late starts (the interval is 60 s)
      ga.resolve();
      g2.resolve();
      await Promise.all([held[1], a]);
      const outcomes = await Promise.all(rest);
      return { outcomes, order, reasons, standing: q.standingNow };
    };
    // Off: B and C, 62 s late, still run in arrival order, and the queue never stood.
    expect(await scenario(false)).toEqual({ outcomes: ['ran', 'ran'], order: ['b', 'c'], reasons: [], standing: false });
    // On (the default, as writes use it): the same waits make it stand, and both are shed.
    expect(await scenario(true)).toEqual({
      outcomes: ['queue_timeout', 'queue_timeout'],
      order: [],
      reasons: ['queue_timeout', 'queue_timeout'],
      standing: true,
    });
  });

  it('overflowIntervalMs sets how long the run of full-queue refusals must last, apart from the deadline', async () => {
    const standsAfter = async (extra: Partial<QueueLimits>) => {
      let t = 0;
      const q = new BoundedQueue('test', { ...overflowLimits(1), ...extra }, undefined, () => t);
      const gates = [deferred(), deferred(), deferred()];
      const busy = gates.map((g) => q.run(() => g.promise).catch(() => 'refused'));
      let at: number | null = null;
      for (t = 0; t <= 70_000 && at === null; t += 50) {
        expect(q.refusalNow()).toBe('queue_full');
        if (q.standingNow) at = t;
      }
      for (const g of gates) g.resolve();
      await Promise.all(busy);
      return at;
    };
    // The deadline (a minute) is the interval by default; a 1-s overflow interval stands a second in.
    expect(await standsAfter({})).toBe(60_000);
    expect(await standsAfter({ overflowIntervalMs: 1_000 })).toBe(1_000);
  });

  it('overflowQuickRefusals overflows a run as soon as its refusals reach the count and keep up with the tasks started', async () => {
    /** Every 50 ms, `finishing` running tasks finish (as many waiters start and as many new ones queue) and one is refused. */
    const standsAfter = async (finishing: number, extra: Partial<QueueLimits>) => {
      let t = 0;
      const q = new BoundedQueue('test', { ...overflowLimits(2), ...extra }, undefined, () => t);
      const tasks = gatedTasks(q);
      for (let i = 0; i < 4; i++) tasks.submit(); // two running, two waiting: full
      await settle();
      let at: number | null = null;
      for (t = 0; t <= 5_000 && at === null; t += 50) {
        for (let i = 0; i < finishing; i++) tasks.finishOne();
        await settle();
        for (let i = 0; i < finishing; i++) tasks.submit();
        expect(q.refusalNow()).toBe('queue_full');
        if (q.standingNow) at = t;
      }
      await tasks.finishAll();
      return at;
    };
    // Nothing finishes: the fifth refusal (200 ms in) overflows, long before the minute's interval...
    expect(await standsAfter(0, { overflowQuickRefusals: 5 })).toBe(200);
    // ...one finishes per refusal: still twice what the slots finish arrives, so it overflows at the fifth too...
    expect(await standsAfter(1, { overflowQuickRefusals: 5 })).toBe(200);
    // ...but two finish per refusal (the slots carry two of every three arrivals: a burst, not overload): not before
    // the interval, and without the option not before it either.
    expect(await standsAfter(2, { overflowQuickRefusals: 5 })).toBeNull();
    expect(await standsAfter(0, {})).toBeNull();
  });

  describe('dropOldestWhenFull: before it overflows, a full queue admits the arrival in place of its oldest task', () => {
    /** Two running (held), then `waiting` queued, each task's outcome recorded by its name. */
    const fullQueue = async (extra: Partial<QueueLimits>, waiting: string[]) => {
      let t = 0;
      const reasons: Refusal[] = [];
      const q = new BoundedQueue(
        'test',
        { ...overflowLimits(2), dropOldestWhenFull: true, ...extra },
        (why) => reasons.push(why),
        () => t,
      );
      const gates = [deferred(), deferred()];
      const running = gates.map((g) => q.run(() => g.promise));
      const started: string[] = [];
      const outcomes = new Map<string, Promise<string>>();
      const submit = (name: string, opts: { bypassLimit?: boolean } = {}) =>
        outcomes.set(
          name,
          outcomeOf(
            q.run(() => {
              started.push(name);
            }, opts),
          ),
        );
      for (const name of waiting) submit(name, { bypassLimit: name.startsWith('checkpoint') });
      await settle();
      const finish = async () => {
        for (const g of gates) g.resolve();
        await Promise.all(running);
        await settle();
      };
      /** One of the two running tasks finishes: its slot takes a waiting task, and so on while they finish at once. */
      const finishOne = async () => {
        gates.shift()?.resolve();
        await settle();
      };
      return { q, reasons, submit, outcomes, started, finish, finishOne, tick: (ms: number) => (t += ms) };
    };

    it('refuses the oldest waiting (queue_full) instead of the arrival, and still counts it as an overflow', async () => {
      const f = await fullQueue({}, ['a', 'b']);
      // The front door lets the arrival through: the queue, not the door, decides whom to refuse.
      expect(f.q.refusalNow()).toBeNull();
      f.submit('c');
      expect(await f.outcomes.get('a')).toBe('queue_full');
      expect(f.reasons).toEqual(['queue_full']);
      expect(f.q.waiting).toBe(2);
      f.submit('d');
      expect(await f.outcomes.get('b')).toBe('queue_full');
      await f.finish();
      // The rest ran in arrival order (the queue is not standing).
      expect(f.started).toEqual(['c', 'd']);
      expect(await f.outcomes.get('c')).toBe('ran');
      expect(f.q.standingNow).toBe(false);
    });

    it('counts the drops as a run of full-queue refusals: the quick rule overflows it, and then the arrival is refused', async () => {
      const f = await fullQueue({ overflowQuickRefusals: 3 }, ['a', 'b']);
      const changes: StandingChange[] = [];
      f.q.onStandingChange = (c) => changes.push(c);
      for (const name of ['c', 'd']) {
        f.tick(10);
        f.submit(name);
      }
      await settle();
      expect(f.q.standingNow).toBe(false);
      f.tick(10);
      // The third refusal in the run overflows the queue: newest first now, so the arrival is the one refused.
      f.submit('e');
      expect(await f.outcomes.get('e')).toBe('queue_full');
      expect(f.q.standingNow).toBe(true);
      expect(f.reasons).toEqual(['queue_full', 'queue_full', 'queue_full']);
      expect(changes).toEqual([{ standing: true, cause: 'overflow', by: 'quick' }]);
      // Standing, the front door refuses a full queue's arrival itself again.
      expect(f.q.refusalNow()).toBe('queue_full');
      await f.finish();
      // Newest first on one slot; c waited 20 ms, within the 1-s target, so it runs after d.
      expect(f.started).toEqual(['d', 'c']);
    });

    it('never drops a task that may not be refused (a checkpoint); with only such tasks waiting the arrival is refused', async () => {
      const f = await fullQueue({}, ['checkpoint1', 'a']);
      f.submit('b');
      expect(await f.outcomes.get('a')).toBe('queue_full');
      const g = await fullQueue({ queueLimit: 1 }, ['checkpoint2']);
      expect(g.q.refusalNow()).toBe('queue_full');
      g.submit('c');
      expect(await g.outcomes.get('c')).toBe('queue_full');
      await f.finish();
      await g.finish();
      expect(f.started).toEqual(['checkpoint1', 'b']);
      expect(g.started).toEqual(['checkpoint2']);
    });

    it('newestFirstWhileDropping: a slot freed within the gap after a drop takes the newest task; later, the oldest', async () => {
      /** Three waiting, then d drops a; after `quietMs` without a drop a slot frees, and the waiting tasks run. */
      const order = async (extra: Partial<QueueLimits>, quietMs: number) => {
        const f = await fullQueue({ queueLimit: 3, ...extra }, ['a', 'b', 'c']);
        f.submit('d');
        f.tick(quietMs);
        await f.finishOne();
        await f.finish();
        expect(f.q.standingNow).toBe(false);
        const refused = [];
        for (const [name, outcome] of f.outcomes) if ((await outcome) === 'queue_full') refused.push(name);
        return { started: f.started, refused };
      };
      expect(await order({ newestFirstWhileDropping: true }, 50)).toEqual({ started: ['d', 'c', 'b'], refused: ['a'] });
      // No drop within overflowGapMs (100 ms): arrival order again.
      expect(await order({ newestFirstWhileDropping: true }, 150)).toEqual({ started: ['b', 'c', 'd'], refused: ['a'] });
      expect(await order({}, 50)).toEqual({ started: ['b', 'c', 'd'], refused: ['a'] });
      // Only with dropping from the front: a refused arrival leaves the waiting tasks in arrival order.
      expect(await order({ newestFirstWhileDropping: true, dropOldestWhenFull: false }, 50)).toEqual({
        started: ['a', 'b', 'c'],
        refused: ['d'],
      });
    });

    it('lateWhileDroppingMs: while dropping, a pushed-down task past it is refused as a slot frees, not served late', async () => {
      /** b waits from 0, c from 40 ms, when d drops a; `quietMs` later a slot frees. */
      const outcome = async (extra: Partial<QueueLimits>, quietMs: number) => {
        const f = await fullQueue({ queueLimit: 3, newestFirstWhileDropping: true, ...extra }, ['a', 'b']);
        f.tick(40);
        f.submit('c');
        f.submit('d');
        f.tick(quietMs);
        await f.finishOne();
        await f.finish();
        const refused = [];
        for (const [name, result] of f.outcomes) if ((await result) === 'queue_full') refused.push(name);
        return { started: f.started, refused, reasons: f.reasons };
      };
      // 10 ms after the drop b has waited 50 ms, past 30: refused; c and d (10 ms) are served, newest first.
      expect(await outcome({ lateWhileDroppingMs: 30 }, 10)).toEqual({
        started: ['d', 'c'],
        refused: ['a', 'b'],
        reasons: ['queue_full', 'queue_full'],
      });
      // Without it, b is served after them.
      expect((await outcome({}, 10)).started).toEqual(['d', 'c', 'b']);
      // Once the drops have stopped (none within overflowGapMs), nothing is refused for its wait: arrival order.
      expect(await outcome({ lateWhileDroppingMs: 30 }, 150)).toEqual({
        started: ['b', 'c', 'd'],
        refused: ['a'],
        reasons: ['queue_full'],
      });
      // A task that may not be refused (a checkpoint) is never shed for its wait.
      const f = await fullQueue({ queueLimit: 4, newestFirstWhileDropping: true, lateWhileDroppingMs: 30 }, ['checkpoint', 'a', 'b']);
      f.tick(40);
      f.submit('c');
      f.submit('d');
      f.tick(10);
      await f.finishOne();
      await f.finish();
      expect(f.started).toEqual(['checkpoint', 'd', 'c']);
      expect(await f.outcomes.get('b')).toBe('queue_full');
    });

    it('off (the default), the arrival is the one refused', async () => {
      const f = await fullQueue({ dropOldestWhenFull: false }, ['a', 'b']);
      expect(f.q.refusalNow()).toBe('queue_full');
      f.submit('c');
      expect(await f.outcomes.get('c')).toBe('queue_full');
      await f.finish();
      expect(f.started).toEqual(['a', 'b']);
    });
  });

  it('serverBehind overflows at the first full-queue refusal while it says the server is behind, and not otherwise', async () => {
    let behind = false;
    const q = new BoundedQueue('test', { ...overflowLimits(2), serverBehind: () => behind }, undefined, () => 0);
    const changes: StandingChange[] = [];
    q.onStandingChange = (c) => changes.push(c);
    const tasks = gatedTasks(q);
    for (let i = 0; i < 4; i++) tasks.submit(); // two running, two waiting: full
    await settle();
    // A full queue with the loop keeping up: a burst, refused but not standing.
    expect(q.refusalNow()).toBe('queue_full');
    expect(q.standingNow).toBe(false);
    expect(q.slots).toBe(2);
    // The same refusal with the server behind: overflowing at once, on one slot.
    behind = true;
    expect(q.refusalNow()).toBe('queue_full');
    expect(q.standingNow).toBe(true);
    expect(q.slots).toBe(1);
    // The episode's line says which rule found it.
    expect(changes).toEqual([{ standing: true, cause: 'overflow', by: 'behind' }]);
    await tasks.finishAll();
  });

  it('while serverBehind says the server is behind, a slot sitting free for calmMs does not end the episode', async () => {
    let t = 0;
    let behind = true;
    const q = new BoundedQueue('test', { ...overflowLimits(2), serverBehind: () => behind }, undefined, () => t);
    const tasks = gatedTasks(q);
    for (let i = 0; i < 4; i++) tasks.submit(); // two running, two waiting: full
    await settle();
    expect(q.refusalNow()).toBe('queue_full'); // behind: overflowing at once
    expect(q.standingNow).toBe(true);
    await tasks.finishAll(); // the slot sits free, nothing waiting, from 0 s
    // 10 s later (calmMs is 3 s) the next task comes, but the main thread was behind: the free slot was a stall.
    t = 10_000;
    tasks.submit();
    await settle();
    expect(q.standingNow).toBe(true);
    expect(q.slots).toBe(1);
    await tasks.finishAll(); // free again from 10 s
    // Caught up: a slot free for calmMs is a lull, and the episode ends.
    behind = false;
    t = 13_000;
    tasks.submit();
    await settle();
    expect(q.standingNow).toBe(false);
    expect(q.slots).toBe(2);
    await tasks.finishAll();
  });

  /**
   * Overflows a two-slot queue (one slot while overflowing), then keeps its one slot busy until `until` (65 s: one
   * review interval and some): each half second a task finishes and `arrivals` arrive (a count, or one by the time),
   * the first through run() (it waits), the rest through refusalNow() (the front door's refusals, for a full queue).
   * Whether it still stands at the end, its slots then, and when it first had both slots back.
   */
  async function standsAfterSteadyLoad(
    arrivals: number | ((t: number) => number),
    overflowStayRatio?: number,
    opts: { overflowReviewWindows?: number; until?: number; behind?: (t: number) => boolean } = {},
  ) {
    let t = 0;
    const q = new BoundedQueue(
      'test',
      {
        concurrency: 2,
        overflowConcurrency: 1,
        queueLimit: 1,
        queueTimeoutMs: 60_000,
        targetWaitMs: 1_000,
        calmMs: 3_000,
        overflowGapMs: 1_000,
        overflowIntervalMs: 2_000,
        newestFirst: true,
        retryAfterSeconds: 1,
        ...(overflowStayRatio === undefined ? {} : { overflowStayRatio }),
        ...(opts.overflowReviewWindows === undefined ? {} : { overflowReviewWindows: opts.overflowReviewWindows }),
        ...(opts.behind === undefined ? {} : { serverBehind: () => opts.behind!(t) }),
      },
      undefined,
      () => t,
    );
    const tasks = gatedTasks(q);
    const step = async (n: number, viaFrontDoor: boolean) => {
      tasks.finishOne();
      await settle();
      tasks.submit();
      for (let i = 1; i < n; i++) viaFrontDoor ? q.refusalNow() : tasks.submit();
      await settle();
    };
    // Four arrivals a step against one finish: full within a step, overflowing after 2 s.
    for (t = 0; t <= 2_000; t += 500) await step(4, false);
    expect(q.standingNow).toBe(true);
    expect(q.slots).toBe(1);
    let slotsBackAt: number | null = null;
    for (t = 2_500; t <= (opts.until ?? 67_500); t += 500) {
      await step(typeof arrivals === 'number' ? arrivals : arrivals(t), true);
      if (q.slots === 2) slotsBackAt ??= t;
    }
    const stands = q.standingNow;
    const slots = q.slots;
    await tasks.finishAll();
    return { stands, slots, slotsBackAt };
  }

  it('overflowStayRatio gives an overflowing queue its slots back once fewer tasks arrive than the ratio times those finished', async () => {
    // The load fell to one arrival per task finished: the one slot is kept busy, so it never calms on its own...
    expect(await standsAfterSteadyLoad(1)).toEqual({ stands: true, slots: 1, slotsBackAt: null });
    // ...but with the ratio, the review at the end of an interval (a minute here, from 2 s) finds it calmer and gives
    // back both slots (the episode goes on: no slot has sat free, see the next test).
    expect(await standsAfterSteadyLoad(1, 2)).toEqual({ stands: true, slots: 2, slotsBackAt: 62_000 });
    // Three arrivals per task finished (two of them refused at the front door) is still overload: one slot.
    expect(await standsAfterSteadyLoad(3, 2)).toEqual({ stands: true, slots: 1, slotsBackAt: null });
  });

  it('once the review gives the slots back, the episode goes on newest first until a slot sits free for calmMs', async () => {
    let t = 0;
    const changes: StandingChange[] = [];
    const q = new BoundedQueue(
      'test',
      {
        concurrency: 2,
        overflowConcurrency: 1,
        queueLimit: 2,
        queueTimeoutMs: 60_000,
        targetWaitMs: 1_000,
        calmMs: 3_000,
        overflowGapMs: 1_000,
        overflowIntervalMs: 2_000,
        overflowStayRatio: 2,
        newestFirst: true,
        retryAfterSeconds: 1,
      },
      undefined,
      () => t,
    );
    q.onStandingChange = (c) => changes.push(c);
    const started: string[] = [];
    const finish = new Map<string, () => void>();
    const outcomes = new Map<string, Promise<string>>();
    const submit = (name: string) =>
      outcomes.set(
        name,
        q
          .run(() => {
            started.push(name);
            return new Promise<void>((r) => finish.set(name, r));
          })
          .then(
            () => 'ran',
            () => 'refused',
          ),
      );
    for (const name of ['a', 'b', 'c', 'd']) submit(name); // two running, two waiting: full
    await settle();
    // Refused for being full throughout the 2-s interval: it overflows onto one slot.
    for (t = 0; t <= 2_000; t += 500) expect(q.refusalNow()).toBe('queue_full');
    expect([q.standingNow, q.slots]).toEqual([true, 1]);
    // At 62 s (one interval on) a task finishes: one arrival per finish is under the ratio, so both slots come back,
    // the two that waited a minute are shed, and the queue still stands.
    t = 62_000;
    finish.get('a')!();
    await settle();
    expect([q.standingNow, q.slots]).toEqual([true, 2]);
    expect(changes.map((c) => (c.standing ? c.cause : c.why))).toEqual(['overflow', 'fits']);
    expect([await outcomes.get('c'), await outcomes.get('d')]).toEqual(['refused', 'refused']);
    // Newest first still: with both slots busy, of two waiting the later starts first.
    submit('e');
    t = 62_100;
    submit('f');
    t = 62_200;
    submit('g');
    await settle();
    expect(started).toEqual(['a', 'b', 'e']);
    finish.get('b')!();
    await settle();
    expect(started).toEqual(['a', 'b', 'e', 'g']);
    // It calms once a slot has sat free, nothing waiting, for calmMs: f (waited past the target) is shed, e and g finish.
    t = 64_000;
    finish.get('e')!();
    finish.get('g')!();
    await settle();
    expect(await outcomes.get('f')).toBe('refused');
    expect(q.standingNow).toBe(true);
    t = 67_500;
    submit('h');
    await settle();
    expect(q.standingNow).toBe(false);
    expect(changes.at(-1)).toMatchObject({ standing: false, why: 'idle' });
    finish.get('h')!();
    await Promise.all(outcomes.values());
  });

  it('overflowReviewWindows counts the latest intervals together, so one thin interval amid overload does not end it', async () => {
    // Overload (three arrivals per finish) for the first review's interval (2-62 s), one thin interval (one per
    // finish, 62-122 s), overload again: reviewed alone the thin interval gives the slot back at its end (122 s);
    // summed with the one before (four arrivals per two finishes: not under the ratio) it does not, and the queue
    // keeps one slot throughout.
    const thinOnce = (t: number) => (t > 62_000 && t <= 122_000 ? 1 : 3);
    expect((await standsAfterSteadyLoad(thinOnce, 2, { until: 187_500 })).slotsBackAt).toBe(122_000);
    expect(await standsAfterSteadyLoad(thinOnce, 2, { overflowReviewWindows: 2, until: 187_500 })).toEqual({ stands: true, slots: 1, slotsBackAt: null });
    // A load that has fallen for good gets them back at the next review after that...
    const fallsAt62 = (t: number) => (t > 62_000 ? 1 : 3);
    expect(await standsAfterSteadyLoad(fallsAt62, 2, { overflowReviewWindows: 2, until: 187_500 })).toEqual({ stands: true, slots: 2, slotsBackAt: 182_000 });
    // ...and an episode's first review counts its one interval: a load that was never over the ratio gets them back at once.
    expect(await standsAfterSteadyLoad(1, 2, { overflowReviewWindows: 2 })).toEqual({ stands: true, slots: 2, slotsBackAt: 62_000 });
  });

  it('while serverBehind says the server is behind, the review does not give the slots back on arrivals', async () => {
    // One arrival per finish is under the ratio, but arrivals the busy server has not read are not counted: while it
    // is behind, the review keeps one slot. Behind from the start, it overflowed at the first full-queue refusal
    // (0 s), so its reviews fall at 60 s (behind: one slot) and 120 s (no longer behind: both back).
    expect(await standsAfterSteadyLoad(1, 2, { behind: () => true })).toEqual({ stands: true, slots: 1, slotsBackAt: null });
    expect(await standsAfterSteadyLoad(1, 2, { behind: (t) => t < 100_000, until: 127_500 })).toEqual({ stands: true, slots: 2, slotsBackAt: 120_000 });
    // Not behind: the same load gets its slots back at the first review, as without the hook.
    expect(await standsAfterSteadyLoad(1, 2, { behind: () => false })).toEqual({ stands: true, slots: 2, slotsBackAt: 62_000 });
  });

  it('overflow with a gap longer than overflowGapMs is a burst, not a standing queue', async () => {
    let t = 0;
    const q = new BoundedQueue(
      'test',
      { concurrency: 1, queueLimit: 1, queueTimeoutMs: 60_000, targetWaitMs: 1_000, overflowGapMs: 100, newestFirst: true, retryAfterSeconds: 1 },
      () => {},
      () => t,
    );
    const [a, b] = [deferred(), deferred()];
    const runs = [q.run(() => a.promise), q.run(() => b.promise)];
    // Refusals for 2 minutes, but every 150 ms: each gap starts the run again.
    for (t = 0; t < 120_000; t += 150) expect(q.refusalNow()).toBe('queue_full');
    expect(q.standingNow).toBe(false);
    // The same queue in arrival order (writes) never stands on overflow, whatever the gaps.
    const fifo = new BoundedQueue(
      'fifo',
      { concurrency: 1, queueLimit: 1, queueTimeoutMs: 60_000, targetWaitMs: 1_000, overflowGapMs: 100, retryAfterSeconds: 1 },
      () => {},
      () => t,
    );
    const [c, d] = [deferred(), deferred()];
    const fifoRuns = [fifo.run(() => c.promise), fifo.run(() => d.promise)];
    const start = t;
    for (; t < start + 120_000; t += 10) expect(fifo.refusalNow()).toBe('queue_full');
    expect(fifo.standingNow).toBe(false);
    for (const g of [a, b, c, d]) g.resolve();
    await Promise.all(runs);
    // (The FIFO queue's waiter, its head for two minutes, is shed by the stall rule of arrival order.)
    await Promise.allSettled(fifoRuns);
  });

  it('tells when an episode begins (and why) and when it ends (how long, how many refused)', async () => {
    let t = 0;
    const q = new BoundedQueue('test', overflowLimits(1), undefined, () => t);
    const changes: StandingChange[] = [];
    q.onStandingChange = (c) => changes.push(c);
    const gates = [deferred(), deferred(), deferred()];
    const busy = gates.map((g) => outcomeOf(q.run(() => g.promise)));
    for (t = 0; t < 60_000; t += 50) q.refusalNow();
    expect(changes).toEqual([]);
    t = 60_000;
    expect(q.refusalNow()).toBe('queue_full'); // standing from here, and this refusal is counted in the episode
    expect(q.refusalNow()).toBeNull(); // standing, the waiter past the target is about to be shed: room for one
    expect(changes).toEqual([{ standing: true, cause: 'overflow', by: 'interval' }]);
    for (const g of gates) g.resolve();
    expect(await Promise.all(busy)).toEqual(['ran', 'ran', 'queue_timeout']); // the waiter, past the target, is shed
    t = 63_000; // a slot free, nothing waiting, for calmMs
    expect(q.refusalNow()).toBeNull();
    await q.run(() => 'calm');
    expect(changes).toEqual([
      { standing: true, cause: 'overflow', by: 'interval' },
      { standing: false, forMs: 3_000, refused: 2, why: 'idle' },
    ]);
  });
});

describe('time limits', () => {
  it('withTimeout answers with the error once the time passes, and with the result before', async () => {
    const never = new Promise<string>(() => {});
    await expect(withTimeout(never, 10, () => new QuarryError('timeout', 'late'))).rejects.toMatchObject({ code: 'timeout' });
    expect(await withTimeout(Promise.resolve('fast'), 10_000, () => new Error('no'))).toBe('fast');
  });

  it('untilCommitted gives up on work not yet committing, and waits for work that is', async () => {
    const controller = new AbortController();
    const work = deferred<string>();
    const committed = false;
    const answer = untilCommitted(work.promise, controller.signal, () => committed);
    controller.abort(new QuarryError('timeout', 'too slow'));
    await expect(answer).rejects.toMatchObject({ code: 'timeout' });
    work.resolve('late');

    const c2 = new AbortController();
    const work2 = deferred<string>();
    const answer2 = untilCommitted(work2.promise, c2.signal, () => true);
    c2.abort(new QuarryError('timeout', 'too slow'));
    work2.resolve('stored');
    expect(await answer2).toBe('stored');
  });
});

describe('TokenBucketStore (a token bucket per client)', () => {
  const clock = () => {
    let now = 1_000_000;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it('allows a burst, then one request per 1/rate seconds, and says when the next token comes', () => {
    const c = clock();
    const store = new TokenBucketStore(2, 5, c.now); // 2/s, burst 5
    expect(store.windowMs).toBe(2500);
    const hits = Array.from({ length: 5 }, () => store.increment('a').totalHits);
    expect(hits).toEqual([1, 2, 3, 4, 5]);
    const refused = store.increment('a');
    expect(refused.totalHits).toBeGreaterThan(5);
    expect(refused.resetTime!.getTime() - c.now()).toBe(500);
    // A refused request costs nothing: after 500 ms exactly one token is back.
    c.advance(500);
    expect(store.increment('a').totalHits).toBe(5);
    expect(store.increment('a').totalHits).toBeGreaterThan(5);
    // Other clients have their own bucket.
    expect(store.increment('b').totalHits).toBe(1);
  });

  it('refills the whole burst after burst/rate seconds and forgets idle clients', () => {
    const c = clock();
    const store = new TokenBucketStore(10, 3, c.now);
    for (let i = 0; i < 3; i++) store.increment('a');
    expect(store.increment('a').totalHits).toBe(4);
    c.advance(300);
    expect(store.increment('b').totalHits).toBe(1);
    // 'a' was full again by then and is swept; it starts a fresh bucket.
    expect(store.clients).toBe(1);
    expect(store.increment('a').totalHits).toBe(1);
  });

  it('sustains exactly the rate over a long run of requests', () => {
    const c = clock();
    const store = new TokenBucketStore(5, 10, c.now);
    let allowed = 0;
    // One attempt every 10 ms from t = 0 to t = 20 s inclusive: the burst of 10, then one per 200 ms.
    for (let i = 0; i <= 2000; i++) {
      if (store.increment('a').totalHits <= 10) allowed++;
      c.advance(10);
    }
    expect(allowed).toBe(5 * 20 + 10);
  });
});
