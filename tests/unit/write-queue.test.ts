import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteQueue } from '../../src/core/write-queue.ts';
import { QuarryError } from '../../src/errors.ts';
import { HTTP_STATUS } from '../../src/server/errors.ts';
import { type RealService, SEEDS_DIR, startRealService, testConfig } from '../helpers/real-service.ts';

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WriteQueue', () => {
  it('runs tasks one at a time, in arrival order', async () => {
    const q = new WriteQueue(10);
    const log: string[] = [];
    let running = 0;
    const task = (name: string, ms: number) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      await later(ms);
      log.push(`end ${name}`);
      running--;
      return name;
    };
    const results = await Promise.all([q.run(task('a', 30)), q.run(task('b', 1)), q.run(task('c', 10))]);
    expect(results).toEqual(['a', 'b', 'c']);
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
    const failing = q.run(async () => {
      await later(5);
      throw new Error('boom');
    });
    const next = q.run(() => 'next');
    await expect(failing).rejects.toThrow('boom');
    expect(await next).toBe('next');
    expect(q.depth).toBe(0);
  });

  it('drain() waits for everything queued before it', async () => {
    const q = new WriteQueue(5);
    const done: number[] = [];
    void q.run(async () => {
      await later(20);
      done.push(1);
    });
    void q.run(async () => {
      await later(5);
      done.push(2);
    });
    await q.drain();
    expect(done).toEqual([1, 2]);
  });
});

describe('a full write queue over HTTP', () => {
  const KEY = 'queue-test-key-0123456789';
  let service: RealService;
  beforeAll(async () => {
    service = await startRealService({ seedsDir: SEEDS_DIR, config: testConfig({ seedsDir: SEEDS_DIR, apiKey: KEY, writeQueueLimit: 1 }) });
  });
  afterAll(async () => {
    await service?.dispose();
  });

  it('answers 503 with Retry-After while a write is in progress, writes nothing for it, and searches still answer', async () => {
    // Each batch takes the model a while (many paragraphs), so the later requests find the queue full.
    const batch = (n: number) => ({
      articles: Array.from({ length: 5 }, (_, i) => ({
        id: `queued-${n}-${i}`,
        title: `Queued article ${n}-${i}`,
        paragraphs: Array.from(
          { length: 8 },
          (_, p) => `Paragraph ${p} of queued article ${n}-${i} talks about harbours, tides and the weather over the northern isles in spring.`,
        ),
      })),
    });
    const send = (n: number) =>
      fetch(`${service.url}/articles`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch(n)),
      });
    const first = send(0);
    await later(20);
    const [searchDuring, ...rest] = await Promise.all([fetch(`${service.url}/search?q=harbour&mode=lexical`), send(1), send(2)]);
    const responses = [await first, ...rest];
    const statuses = responses.map((r) => r.status);
    expect(statuses[0]).toBe(201);
    expect(statuses).toContain(503);
    expect(searchDuring.status).toBe(200);
    for (const [n, res] of responses.entries()) {
      if (res.status !== 503) continue;
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await res.json()).toMatchObject({ error: { code: 'overloaded' } });
      expect((await fetch(`${service.url}/articles/queued-${n}-0`, { headers: { accept: 'application/json' } })).status).toBe(404);
    }
    // Once the queue is free again, writes are accepted.
    expect((await send(3)).status).toBe(201);
  });
});
