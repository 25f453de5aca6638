import { connect } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { createApp } from '../../src/server/app.ts';
import { errorHandler } from '../../src/server/errors.ts';
import { Lifecycle } from '../../src/server/lifecycle.ts';
import { listen, type RunningServer } from '../../src/server/listen.ts';
import { searchAdmission } from '../../src/server/overload.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';
import { type RealService, SEEDS_DIR, startRealService, testConfig } from '../helpers/real-service.ts';

/*
 * Rate limits, CORS, probes and search admission over real HTTP. The services run the real model and index;
 * the admission test uses a route the test holds open, so "a search is running" is a state, not a timing.
 */

/** Waits, bounded by count, until the held searches and the queue reach the state a test asserts next. */
const until = (cond: () => boolean) => pollUntil(cond, { what: 'the held searches and the queue to reach the state asserted' });

const KEY = 'ops-test-write-key-0123456789';
let embedder: Embedder;
const services: RealService[] = [];
const start = async (overrides: Record<string, unknown>) => {
  const s = await startRealService({ seedsDir: SEEDS_DIR, config: testConfig({ seedsDir: SEEDS_DIR, ...overrides }), embedder });
  services.push(s);
  return s;
};

beforeAll(async () => {
  embedder = createHashedEmbedder();
});
afterAll(async () => {
  for (const s of services) await s.dispose();
  await embedder?.close();
});

const metric = async (url: string, name: string, labels: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
};

describe('rate limits (token buckets)', () => {
  let s: RealService;
  beforeAll(async () => {
    s = await start({ apiKey: KEY, searchRate: 0.01, searchBurst: 3, keySearchRate: 0.01, keySearchBurst: 2, writeRate: 0.01, writeBurst: 1 });
  });

  it('lets an address spend its burst, then answers 429 with Retry-After and the draft-8 RateLimit headers', async () => {
    const statuses: number[] = [];
    let last!: Response;
    for (let i = 0; i < 5; i++) {
      last = await fetch(`${s.url}/search?q=harbour&mode=lexical`);
      statuses.push(last.status);
      if (last.status === 200) {
        expect(last.headers.get('ratelimit')).toMatch(/^"search-per-address"; r=\d+; t=\d+$/);
        expect(last.headers.get('ratelimit-policy')).toMatch(/^"search-per-address"; q=3; w=300; pk=:[A-Za-z0-9+/=]+:$/);
      }
    }
    // One token per 100 s: nothing comes back while the test runs.
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(last.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(last.headers.get('ratelimit')).toMatch(/r=0/);
    expect(await last.json()).toMatchObject({ error: { code: 'rate_limited', message: expect.stringMatching(/0\.01\/s with bursts of 3/) } });
    expect(await metric(s.url, 'quarry_rate_limited_total', 'class="search",client="anonymous"')).toBe(2);
  });

  it('gives a configured key its own bucket, named by a hash of it, never the key; a made-up key gets none', async () => {
    const keyed = (authorization: string) => fetch(`${s.url}/search?q=harbour&mode=lexical`, { headers: { authorization } });
    const first = await keyed(`Bearer ${KEY}`);
    expect(first.status).toBe(200);
    const policy = first.headers.get('ratelimit-policy')!;
    expect(policy).toMatch(/^"search-per-key"; q=2;/);
    expect(policy).not.toContain(KEY);
    expect(JSON.stringify([...first.headers])).not.toContain(KEY);
    expect((await keyed(`Bearer ${KEY}`)).status).toBe(200);
    expect((await keyed(`Bearer ${KEY}`)).status).toBe(429);
    // The anonymous bucket of this address is spent (previous test): a made-up key is counted there too.
    expect((await keyed('Bearer made-up-key-000000000000')).status).toBe(429);
    expect(await metric(s.url, 'quarry_rate_limited_total', 'class="search",client="key"')).toBe(1);
  });

  it('limits writes per key separately from searches', async () => {
    const del = () => fetch(`${s.url}/articles/no-such-article`, { method: 'DELETE', headers: { authorization: `Bearer ${KEY}` } });
    expect((await del()).status).toBe(404);
    const limited = await del();
    expect(limited.status).toBe(429);
    expect((await limited.json()) as unknown).toMatchObject({ error: { code: 'rate_limited' } });
    expect(await metric(s.url, 'quarry_rate_limited_total', 'class="write",client="key"')).toBe(1);
  });
});

describe('CORS', () => {
  let s: RealService;
  let closed: RealService;
  beforeAll(async () => {
    s = await start({ apiKey: KEY, corsOrigins: 'https://news.example.org, *' });
    closed = await start({ apiKey: KEY });
  });
  const preflight = (url: string, origin: string, method: string, path: string, headers = 'authorization,content-type') =>
    fetch(`${url}${path}`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });

  it('answers a real preflight for a write from a listed origin, and the write itself carries the header', async () => {
    const res = await preflight(s.url, 'https://news.example.org', 'POST', '/articles');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://news.example.org');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toMatch(/authorization.*content-type|content-type.*authorization/);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('vary')).toMatch(/Origin/);
    const del = await fetch(`${s.url}/articles/absent`, { method: 'DELETE', headers: { origin: 'https://news.example.org', authorization: `Bearer ${KEY}` } });
    expect(del.status).toBe(404);
    expect(del.headers.get('access-control-allow-origin')).toBe('https://news.example.org');
    expect(del.headers.get('access-control-expose-headers')).toMatch(/Retry-After/);
  });

  it('lets any origin search (`*`, never with credentials) but refuses its preflight for a write', async () => {
    const ok = await preflight(s.url, 'https://elsewhere.example', 'POST', '/search', 'content-type');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('*');
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();
    const search = await fetch(`${s.url}/search?q=harbour&mode=lexical`, { headers: { origin: 'https://elsewhere.example' } });
    expect(search.status).toBe(200);
    expect(search.headers.get('access-control-allow-origin')).toBe('*');
    for (const [method, path] of [
      ['POST', '/articles'],
      ['DELETE', '/articles/x'],
      ['POST', '/admin/rebuild'],
    ]) {
      const refused = await preflight(s.url, 'https://elsewhere.example', method!, path!);
      expect(refused.status, `${method} ${path}`).toBe(403);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      expect(await refused.json()).toMatchObject({ error: { code: 'forbidden', field: 'origin' } });
    }
  });

  it('sends no CORS headers at all when no origin is configured (the default)', async () => {
    const res = await preflight(closed.url, 'https://news.example.org', 'GET', '/search');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const search = await fetch(`${closed.url}/search?q=harbour&mode=lexical`, { headers: { origin: 'https://news.example.org' } });
    expect(search.status).toBe(200);
    expect(search.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('probes', () => {
  it('/health/live and /health/ready answer without a key; ready turns 503 while draining and asks clients to reconnect', async () => {
    const s = await start({ apiKey: KEY, readKey: 'ops-test-read-key-0123456789' });
    const live = await fetch(`${s.url}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'ok' });
    const ready = await fetch(`${s.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { model: 'ok', index: 'ok', database: 'ok', server: 'ok' } });

    // The same service behind an app whose shutdown has begun.
    const lifecycle = new Lifecycle();
    const draining = await listen(createApp({ quarry: s.quarry, config: s.config, lifecycle }), 0, '127.0.0.1');
    try {
      lifecycle.beginDrain();
      const res = await fetch(`${draining.url}/health/ready`);
      expect(res.status).toBe(503);
      expect(res.headers.get('connection')).toBe('close');
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await res.json()).toMatchObject({ status: 'unavailable', checks: { server: 'shutting down' } });
      expect((await fetch(`${draining.url}/health/live`)).status).toBe(200);
    } finally {
      await draining.close();
    }
  });

  it('/health/ready names the failing check once the index is closed', async () => {
    const s = await start({});
    await s.quarry.close();
    const res = await fetch(`${s.url}/health/ready`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { checks: Record<string, string> };
    expect(body.checks.index).toBe('closing');
  });
});

/** What a held search route shares with its test: searches running now, and how to release each. */
interface HeldSearches {
  running: number;
  holds: Array<() => void>;
}

/**
 * A server whose /search route, behind `admission` (and `before` it, app-wide), holds each admitted request open
 * until the test releases it: "a search is running" is a state, not a timing.
 */
function heldSearchServer(held: HeldSearches, admission: express.RequestHandler, before: express.RequestHandler[] = []): Promise<RunningServer> {
  const app = express();
  for (const handler of before) app.use(handler);
  app.use('/search', admission);
  app.get('/search', async (_req, res) => {
    held.running++;
    await new Promise<void>((r) => held.holds.push(r));
    held.running--;
    res.json({ ok: true });
  });
  app.use(errorHandler(console as never));
  return listen(app, 0, '127.0.0.1');
}

describe('search admission over HTTP (a route the test holds open)', () => {
  let server: RunningServer;
  const held: HeldSearches = { running: 0, holds: [] };
  const holds = held.holds;
  const admission = searchAdmission({ concurrency: 2, queueLimit: 1, queueTimeoutMs: 300 });
  beforeAll(async () => {
    server = await heldSearchServer(held, admission);
  });
  afterAll(async () => {
    for (const h of holds) h();
    await server?.close();
  });

  it('runs two, queues one, refuses the next at once with 503 + Retry-After, and the queued one past its deadline', async () => {
    const a = fetch(`${server.url}/search`);
    const b = fetch(`${server.url}/search`);
    await until(() => held.running === 2);
    const queued = fetch(`${server.url}/search`);
    await until(() => admission.queue.waiting === 1);
    const refused = await fetch(`${server.url}/search`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toMatchObject({ error: { code: 'overloaded', message: expect.stringMatching(/queue is full/) } });
    // Nothing frees a slot: the queued request is refused at its 300 ms deadline.
    const late = await queued;
    expect(late.status).toBe(503);
    expect(await late.json()).toMatchObject({ error: { code: 'overloaded', message: expect.stringMatching(/waited 300 ms/) } });
    expect(held.running).toBe(2);
    for (const h of holds.splice(0)) h();
    expect((await a).status).toBe(200);
    expect((await b).status).toBe(200);
    // Slots are free again.
    const again = fetch(`${server.url}/search`);
    await until(() => held.running === 1);
    for (const h of holds.splice(0)) h();
    expect((await again).status).toBe(200);
  });

  it('frees every slot exactly once, whether the response or the connection ends first (pipelined, cut off)', async () => {
    const port = Number(new URL(server.url).port);
    const raw = (payload: string) =>
      new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        socket.on('data', () => {});
        socket.on('error', () => {});
        socket.on('close', () => resolve());
        socket.end(payload);
      });
    const one = 'GET /search HTTP/1.1\r\nHost: x\r\n\r\n';
    const sent = [raw(one), raw(`${one}${one}GARBAGE\r\n\r\n`), raw('GET /search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')];
    await until(() => held.running >= 1);
    // Answer whatever reaches the handler until every connection is gone.
    let done = false;
    void Promise.all(sent).then(() => (done = true));
    while (!done) {
      for (const h of holds.splice(0)) h();
      await new Promise((r) => setTimeout(r, 5));
    }
    // Bounded by a count, not a clock: a leaked slot fails the assertion below instead of hanging the test.
    for (let i = 0; i < 2000 && !(held.running === 0 && admission.queue.active <= 0); i++) {
      for (const h of holds.splice(0)) h();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(held.running).toBe(0);
    expect(admission.queue.active).toBe(0);
    expect(admission.queue.waiting).toBe(0);
  });
});

describe('search admission: the front door (first middleware) refuses before the pipeline', () => {
  let server: RunningServer;
  const held: HeldSearches = { running: 0, holds: [] };
  const holds = held.holds;
  let reachedPipeline = 0;
  const refusals: string[] = [];
  const countedAsHttp: string[] = [];
  const refusalSeconds: number[] = [];
  const warnings: Array<{ refused?: Record<string, number> }> = [];
  const logger = { info() {}, debug() {}, error() {}, warn: (obj: object | string) => void warnings.push(obj as { refused?: Record<string, number> }) };
  // One search at a time and no queue: while one runs, the next is refused.
  const admission = searchAdmission(
    { concurrency: 1, queueLimit: 0, queueTimeoutMs: 0 },
    {
      onRefuse: (why) => refusals.push(why),
      onFrontDoorRefusal: (method, seconds) => {
        countedAsHttp.push(method);
        refusalSeconds.push(seconds);
      },
      logger,
    },
  );
  beforeAll(async () => {
    // The counter stands for the request log, metrics, CORS, auth and rate limits: what a front-door refusal must not reach.
    const pipeline: express.RequestHandler = (_req, _res, next) => {
      reachedPipeline++;
      next();
    };
    server = await heldSearchServer(held, admission, [admission.frontDoor, pipeline]);
  });
  afterAll(async () => {
    for (const h of holds) h();
    await server?.close();
  });

  it('answers a search the queue would refuse with the same 503 the pipeline sends, without reaching the pipeline', async () => {
    const first = fetch(`${server.url}/search?q=a`);
    await until(() => held.running === 1);
    expect(reachedPipeline).toBe(1);

    const refused = await fetch(`${server.url}/search?q=b`, { headers: { 'x-request-id': 'client-id-1' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('x-request-id')).toBe('client-id-1');
    expect(refused.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const fastBody = await refused.json();
    expect(fastBody).toEqual({ error: { code: 'overloaded', message: expect.stringMatching(/queue is full \(0 waiting\)/) } });
    expect(reachedPipeline).toBe(1);
    expect(refusals).toEqual(['queue_full']);
    expect(countedAsHttp).toEqual(['GET']);
    // Timed too (the duration histogram counts it): from the front door's start to its answer, never negative.
    expect(refusalSeconds).toHaveLength(1);
    expect(refusalSeconds[0]).toBeGreaterThanOrEqual(0);

    // A browser on another origin needs CORS headers on the refusal: it takes the full pipeline, and gets the same answer.
    const cross = await fetch(`${server.url}/search?q=c`, { headers: { origin: 'https://elsewhere.example' } });
    expect(cross.status).toBe(503);
    expect(cross.headers.get('retry-after')).toBe('1');
    expect(await cross.json()).toEqual(fastBody);
    expect(reachedPipeline).toBe(2);
    expect(refusals).toEqual(['queue_full', 'queue_full']);
    expect(countedAsHttp).toEqual(['GET']);

    // Other paths are never the front door's business.
    const other = await fetch(`${server.url}/searches`);
    expect(other.status).toBe(404);
    expect(reachedPipeline).toBe(3);

    // Refusals are logged as one summary line per window, not one line each.
    await until(() => warnings.some((w) => w.refused?.queue_full === 1));
    expect(warnings).toHaveLength(1);

    for (const h of holds.splice(0)) h();
    expect((await first).status).toBe(200);
    const again = fetch(`${server.url}/search?q=d`);
    await until(() => held.running === 1);
    for (const h of holds.splice(0)) h();
    expect((await again).status).toBe(200);
    expect(reachedPipeline).toBe(4);
  });
});

describe('search admission: a full queue drops its oldest search, not the arrival (dropOldestWhenFull)', () => {
  it('lets the arrival past the front door and answers the oldest waiting search 503 queue_full', async () => {
    const held: HeldSearches = { running: 0, holds: [] };
    const refusals: string[] = [];
    let reachedPipeline = 0;
    const pipeline: express.RequestHandler = (_req, _res, next) => {
      reachedPipeline++;
      next();
    };
    const admission = searchAdmission(
      { concurrency: 1, queueLimit: 1, queueTimeoutMs: 60_000, targetWaitMs: 10, dropOldestWhenFull: true },
      { onRefuse: (why) => refusals.push(why) },
    );
    const server = await heldSearchServer(held, admission, [admission.frontDoor, pipeline]);
    try {
      const running = fetch(`${server.url}/search?q=a`);
      await until(() => held.running === 1);
      const oldest = fetch(`${server.url}/search?q=b`);
      await until(() => admission.queue.waiting === 1);
      const newest = fetch(`${server.url}/search?q=c`);
      const dropped = await oldest;
      expect(dropped.status).toBe(503);
      expect(dropped.headers.get('retry-after')).toBe('1');
      expect(await dropped.json()).toMatchObject({ error: { code: 'overloaded', message: expect.stringMatching(/queue is full/) } });
      expect(refusals).toEqual(['queue_full']);
      // The arrival went through the pipeline (the front door let it by) and waits in the oldest one's place.
      expect(reachedPipeline).toBe(3);
      expect(admission.queue.waiting).toBe(1);
      for (const h of held.holds.splice(0)) h();
      expect((await running).status).toBe(200);
      await until(() => held.running === 1);
      for (const h of held.holds.splice(0)) h();
      expect((await newest).status).toBe(200);
    } finally {
      for (const h of held.holds.splice(0)) h();
      await server.close();
    }
  });
});

describe('search admission: a full queue while the event loop is behind overflows at once', () => {
  const limits = { concurrency: 2, queueLimit: 0, queueTimeoutMs: 250, targetWaitMs: 10, overflowConcurrency: 1 };
  /**
   * Runs `fn` while this process's event loop stays behind: 30-ms stretches of work back to back, each turn's timers
   * running late by about that much (the server's lag samples see it), its I/O still served between them.
   */
  const whileBehind = async <T>(fn: () => Promise<T>): Promise<T> => {
    let spinning = true;
    let turns = 0;
    const spin = () => {
      if (!spinning) return;
      const end = performance.now() + 30;
      while (performance.now() < end) {}
      turns++;
      setImmediate(spin);
    };
    setImmediate(spin);
    try {
      await until(() => turns >= 3);
      return await fn();
    } finally {
      spinning = false;
    }
  };

  for (const [behindLagMs, overflows] of [
    [20, true],
    [0, false],
  ] as const) {
    it(`${overflows ? 'overflows (one slot, newest first)' : 'with the option off, only refuses'} at the first full-queue refusal while the loop is behind`, async () => {
      const held: HeldSearches = { running: 0, holds: [] };
      const admission = searchAdmission(limits, { overflowBehindLagMs: behindLagMs });
      const server = await heldSearchServer(held, admission, [admission.frontDoor]);
      try {
        const running = [fetch(`${server.url}/search?q=a`), fetch(`${server.url}/search?q=b`)];
        await until(() => held.running === 2);
        // The loop keeping up: a full queue refuses, and that is all (a burst).
        expect((await fetch(`${server.url}/search?q=c`)).status).toBe(503);
        expect(admission.queue.standingNow).toBe(false);
        // The same refusal with the loop behind.
        const refused = await whileBehind(() => fetch(`${server.url}/search?q=d`));
        expect(refused.status).toBe(503);
        expect(admission.queue.standingNow).toBe(overflows);
        expect(admission.queue.slots).toBe(overflows ? 1 : 2);
        for (const h of held.holds.splice(0)) h();
        for (const r of running) expect((await r).status).toBe(200);
      } finally {
        for (const h of held.holds.splice(0)) h();
        await server.close();
      }
    });
  }
});
