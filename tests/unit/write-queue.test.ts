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
});
