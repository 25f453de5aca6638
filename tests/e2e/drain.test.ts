import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChildServer } from '../helpers/child-server.ts';
import { pollUntil } from '../helpers/poll.ts';
import { SEEDS_DIR } from '../helpers/real-service.ts';

/*
 * SIGTERM drains: the request in flight finishes and is acknowledged, no new connection is accepted, the
 * process exits 0 and the write is there after a restart. Past the drain deadline the cut-off write is
 * all-or-nothing and agrees with what its client was told.
 */

const KEY = 'drain-test-key-0123456789abcdef';
const temp: string[] = [];
afterAll(() => {
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

const batch = (prefix: string, articles: number) => ({
  articles: Array.from({ length: articles }, (_, i) => ({
    id: `${prefix}-${i}`,
    title: `Drain test ${prefix} ${i}`,
    paragraphs: Array.from(
      { length: 6 },
      (_, p) => `Paragraph ${p} of ${prefix} ${i}: the ferry timetable changes with the tides and the season, said the harbour master.`,
    ),
  })),
});

const post = (url: string, body: unknown) =>
  fetch(`${url}/articles`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Polls /stats until a write is in the queue (the request reached the server and is being embedded). */
async function untilWriting(url: string): Promise<void> {
  for (;;) {
    const s = (await (await fetch(`${url}/stats`)).json()) as { writeQueue: number };
    if (s.writeQueue > 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A request on a new connection (no pooled keep-alive socket): resolves with the status or the error code. */
function freshConnection(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${url}/health/live`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

describe('draining shutdown', () => {
  it('finishes the write in flight, accepts no new connection, exits 0, and the write survives the restart', async () => {
    const indexDir = mkdtempSync(join(tmpdir(), 'quarry-drain-'));
    temp.push(indexDir);
    const env = { QUARRY_API_KEY: KEY };
    const server = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, env, timeoutMs: 90_000 });
    const inFlight = post(server.url, batch('kept', 20));
    await untilWriting(server.url);
    const exit = server.kill('SIGTERM');
    const res = await inFlight;
    expect(res.status, await res.clone().text()).toBe(201);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { articles: unknown[] }).articles).toHaveLength(20);
    expect(await freshConnection(server.url)).toBe('ECONNREFUSED');
    expect(await exit).toEqual({ code: 0, signal: null });

    const again = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, env, timeoutMs: 90_000 });
    try {
      for (const id of ['kept-0', 'kept-19'])
        expect((await fetch(`${again.url}/articles/${id}`, { headers: { accept: 'application/json' } })).status).toBe(200);
    } finally {
      await again.kill('SIGTERM');
    }
  });

  it('past the drain deadline cuts the write off, and stores it whole or not at all, as its client was told', async () => {
    const indexDir = mkdtempSync(join(tmpdir(), 'quarry-drain-cut-'));
    temp.push(indexDir);
    const env = { QUARRY_API_KEY: KEY, QUARRY_DRAIN_TIMEOUT_MS: '100' };
    const server = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, env, timeoutMs: 90_000 });
    const inFlight = post(server.url, batch('cut', 40)).then(
      (r) => r.status,
      () => 'connection closed',
    );
    await untilWriting(server.url);
    const exit = server.kill('SIGTERM');
    const told = await inFlight;
    expect(await exit).toEqual({ code: 0, signal: null });

    const again = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, env: { QUARRY_API_KEY: KEY }, timeoutMs: 90_000 });
    try {
      const present = await Promise.all(
        Array.from({ length: 40 }, async (_, i) => (await fetch(`${again.url}/articles/cut-${i}`, { headers: { accept: 'application/json' } })).status === 200),
      );
      const stored = present.filter(Boolean).length;
      expect([0, 40]).toContain(stored);
      // Told 201: all of it is there. Cut off: none of it (it was abandoned before its commit).
      expect(stored).toBe(told === 201 ? 40 : 0);
      console.log(`drain deadline: client was told ${told}; ${stored} of 40 articles stored`);
    } finally {
      await again.kill('SIGTERM');
    }
  });
  it('npm start hands SIGTERM to the server (a service manager signals npm): it drains, stops and leaves no process', async () => {
    const indexDir = mkdtempSync(join(tmpdir(), 'quarry-drain-npm-'));
    temp.push(indexDir);
    // Before the start script exec'd node, sh sat between npm and the server: SIGTERM to npm killed sh and left
    // the server running, orphaned, never drained.
    const server = await startChildServer({ indexDir, seedsDir: SEEDS_DIR, npmStart: true, env: { QUARRY_LOG_LEVEL: 'info' } });
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
    await server.kill('SIGTERM');
    await pollUntil(() => server.output().includes('"msg":"stopped"'), { what: 'the server to log that it stopped', attempts: 900 });
    expect(server.output()).toContain('"signal":"SIGTERM"');
    await pollUntil(async () => (await freshConnection(server.url)) === 'ECONNREFUSED', { what: 'the port to be closed' });
  });
});
