import { describe, expect, it } from 'vitest';
import { WriteQueue } from '../../src/core/write-queue.ts';
import { QuarryError } from '../../src/errors.ts';
import { HTTP_STATUS } from '../../src/server/errors.ts';
import { pollUntil } from '../helpers/poll.ts';

/** A promise the test settles when it chooses: tasks wait on these instead of sleeping. */
function gate(): { promise: Promise<void>; open: () => void; fail: (e: Error) => void } {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    open = res;
    fail = rej;
  });
  return { promise, open, fail };
}

describe('WriteQueue', () => {
  it('tells when it begins standing (writes waited an interval) and when it is calm again, for the log', async () => {
    let t = 0;
    const changes: unknown[] = [];
    const q = new WriteQueue(10, { queueTimeoutMs: 1000, targetWaitMs: 100, now: () => t, onStandingChange: (c) => changes.push(c) });
    const slow = gate();
    const a = q.run(() => slow.promise);
    const b = q.run(() => 'b');
    t = 1500; // b has waited past the interval behind a stalled commit: the queue stands
    await expect(q.run(() => 'c')).rejects.toMatchObject({ code: 'overloaded' });
    expect(changes).toEqual([{ standing: true, cause: 'waits' }]);
    slow.open();
    await Promise.allSettled([a, b]);
    t = 2000; // a write that starts at once, nothing waiting: calm again
    expect(await q.run(() => 'd')).toBe('d');
    expect(changes).toHaveLength(2);
    expect(changes[1]).toMatchObject({ standing: false, forMs: 500, why: 'drained' });
    expect((changes[1] as { refused: number }).refused).toBeGreaterThanOrEqual(1);
  });

  it('runs tasks one at a time, in arrival order', async () => {
    const q = new WriteQueue(10);
    const log: string[] = [];
    let running = 0;
    const gates = { a: gate(), b: gate(), c: gate() };
    const task = (name: keyof typeof gates) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await gates[name].promise;
      log.push(`end ${name}`);
      running--;
      return name;
    };
    const results = Promise.all([q.run(task('a')), q.run(task('b')), q.run(task('c'))]);
    // The later tasks may finish first (their gates open first); they must still wait their turn.
    await pollUntil(() => log.includes('start a'), { what: 'task a to start' });
    gates.c.open();
    gates.b.open();
    gates.a.open();
    expect(await results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(q.depth).toBe(0);
  });

  it('refuses a task past the limit with `overloaded` and a retry hint, and takes tasks again once drained', async () => {
    const q = new WriteQueue(2);
    let release!: () => void;
    const first = q.run(() => new Promise<void>((r) => (release = r)));
    const second = q.run(() => 'second');
    expect(q.depth).toBe(2);
    const refused = q.run(() => 'third');
    await expect(refused).rejects.toBeInstanceOf(QuarryError);
    await expect(refused).rejects.toMatchObject({ code: 'overloaded', details: { retryAfterSeconds: expect.any(Number) } });
    expect(HTTP_STATUS.overloaded).toBe(503);
    // Checkpoints and shutdown bypass the limit: they must never be refused.
    const checkpoint = q.run(() => 'checkpoint', { bypassLimit: true });
    release();
    await first;
    expect(await second).toBe('second');
    expect(await checkpoint).toBe('checkpoint');
    expect(q.depth).toBe(0);
    expect(await q.run(() => 'fourth')).toBe('fourth');
  });

  it('keeps going after a task fails, and reports that failure only to its caller', async () => {
    const q = new WriteQueue(5);
    const boom = gate();
    const failing = q.run(async () => {
      await boom.promise;
    });
    const next = q.run(() => 'next');
    boom.fail(new Error('boom'));
    await expect(failing).rejects.toThrow('boom');
    expect(await next).toBe('next');
    expect(q.depth).toBe(0);
  });

  it('drain() waits for everything queued before it', async () => {
    const q = new WriteQueue(5);
    const done: number[] = [];
    const gates = [gate(), gate()];
    void q.run(async () => {
      await gates[0]!.promise;
      done.push(1);
    });
    void q.run(async () => {
      await gates[1]!.promise;
      done.push(2);
    });
    let drained = false;
    const drain = q.drain().then(() => (drained = true));
    gates[1]!.open();
    // Task 2's gate is open, but it is queued behind task 1: after a turn of the event loop nothing has
    // finished, and drain() has not resolved.
    await new Promise((r) => setImmediate(r));
    expect(done).toEqual([]);
    expect(drained).toBe(false);
    gates[0]!.open();
    await drain;
    expect(done).toEqual([1, 2]);
  });

  describe('staged writes (prepare, then commit)', () => {
    it('prepares the next write while the previous one commits, and commits in arrival order', async () => {
      const q = new WriteQueue(10);
      const log: string[] = [];
      const commitGates = { a: gate(), b: gate(), c: gate() };
      const prepareGates = { a: gate(), b: gate(), c: gate() };
      const write = (name: keyof typeof commitGates) =>
        q.runStaged(
          async () => {
            log.push(`prepare ${name}`);
            await prepareGates[name].promise;
            log.push(`prepared ${name}`);
            return name.toUpperCase();
          },
          async (prepared) => {
            log.push(`commit ${name} (${prepared})`);
            await commitGates[name].promise;
            log.push(`committed ${name}`);
            return prepared;
          },
        );
      const results = Promise.all([write('a'), write('b'), write('c')]);
      // Two writes prepare at once (a and b); c waits for a slot.
      await pollUntil(() => log.includes('prepare b'), { what: 'b to start preparing' });
      expect(log).not.toContain('prepare c');
      // b finishes preparing first, but commits only after a.
      prepareGates.b.open();
      await pollUntil(() => log.includes('prepared b'), { what: 'b to be prepared' });
      expect(log).not.toContain('commit b (B)');
      prepareGates.a.open();
      await pollUntil(() => log.includes('commit a (A)'), { what: 'a to commit' });
      // a is committing: its slot went to c, which prepares while a commits.
      await pollUntil(() => log.includes('prepare c'), { what: 'c to start preparing while a commits' });
      expect(log).not.toContain('committed a');
      prepareGates.c.open();
      commitGates.c.open();
      commitGates.b.open();
      commitGates.a.open();
      expect(await results).toEqual(['A', 'B', 'C']);
      const commits = log.filter((l) => l.startsWith('commit'));
      expect(commits).toEqual(['commit a (A)', 'committed a', 'commit b (B)', 'committed b', 'commit c (C)', 'committed c']);
      expect(q.depth).toBe(0);
    });

    it('holds at most prepareAhead writes prepared but not committing', async () => {
      const q = new WriteQueue(10, { prepareAhead: 1 });
      const started: number[] = [];
      const commitGate = gate();
      const writes = [1, 2, 3].map((n) =>
        q.runStaged(
          async () => {
            started.push(n);
            return n;
          },
          async (p) => {
            if (p === 1) await commitGate.promise;
            return p;
          },
        ),
      );
      // 1 is committing (blocked), 2 is prepared and waits for it: 3 may not prepare yet.
      await pollUntil(() => started.includes(2), { what: 'write 2 to prepare' });
      await new Promise((r) => setImmediate(r));
      expect(started).toEqual([1, 2]);
      commitGate.open();
      expect(await Promise.all(writes)).toEqual([1, 2, 3]);
      expect(started).toEqual([1, 2, 3]);
    });

    it('a failed preparation fails its own write only, frees its slot, and counts against the limit until then', async () => {
      const q = new WriteQueue(2, { prepareAhead: 1 });
      const boom = gate();
      const failing = q.runStaged(
        async () => {
          await boom.promise;
          return 0;
        },
        () => 'never',
      );
      const next = q.runStaged(
        async () => 1,
        (p) => `next ${p}`,
      );
      expect(q.depth).toBe(2);
      await expect(q.runStaged(async () => 2, String)).rejects.toMatchObject({ code: 'overloaded' });
      boom.fail(new Error('embedding failed'));
      await expect(failing).rejects.toThrow('embedding failed');
      expect(await next).toBe('next 1');
      expect(q.depth).toBe(0);
    });

    it('a plain task queued between staged writes commits in its arrival place', async () => {
      const q = new WriteQueue(10);
      const order: string[] = [];
      const slow = gate();
      const a = q.runStaged(
        async () => {
          await slow.promise;
          return 'a';
        },
        (p) => void order.push(p),
      );
      const del = q.run(() => void order.push('delete'));
      const b = q.runStaged(
        async () => 'b',
        (p) => void order.push(p),
      );
      slow.open();
      await Promise.all([a, del, b]);
      expect(order).toEqual(['a', 'delete', 'b']);
    });
  });
});
