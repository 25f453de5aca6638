import { execFile } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.ts';
import { createLogger } from '../../src/runtime.ts';
import { createApp } from '../../src/server/app.ts';
import { errorHandler } from '../../src/server/errors.ts';
import { listen, type RunningServer } from '../../src/server/listen.ts';
import { searchAdmission } from '../../src/server/overload.ts';
import { MAX_REQUEST_ID_LENGTH, requestLogger } from '../../src/server/request-log.ts';
import { freshDist } from '../helpers/dist.ts';
import { CHILD_HANG_GUARD_MS, pollUntil } from '../helpers/poll.ts';
import { ROOT, type Service, seedsWithDistractors, startHashedService } from '../helpers/service.ts';

let service: Service;
let seeds: string;
const servers: RunningServer[] = [];

beforeAll(async () => {
  seeds = seedsWithDistractors();
  service = await startHashedService({ seedsDir: seeds });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await service?.dispose();
  if (seeds) rmSync(seeds, { recursive: true, force: true });
});

interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  req?: { id: string; method: string; path: string };
  res?: { statusCode: number };
  q?: string;
  [key: string]: unknown;
}

/** A logger as in production (pino JSON) whose lines are kept in memory. */
function capturedLogger(config: Config): { logger: ReturnType<typeof createLogger>; lines: () => LogLine[]; raw: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const raw = () => chunks.join('');
  return {
    logger: createLogger(config, { destination }),
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as LogLine),
  };
}

/** An app on the shared index whose log lines are captured in memory. */
async function appWithCapturedLogs(overrides: Partial<Config> = {}): Promise<{ url: string; lines: () => LogLine[]; raw: () => string }> {
  const config: Config = { ...service.config, logLevel: 'info', ...overrides };
  const { logger, lines, raw } = capturedLogger(config);
  const server = await listen(createApp({ quarry: service.quarry, config, logger }), 0, '127.0.0.1');
  servers.push(server);
  return { url: server.url, raw, lines };
}

/** The request log line for `path` (the logger writes it when the response finishes). */
function requestLine(lines: () => LogLine[], path: string): Promise<LogLine> {
  return pollUntil(() => lines().find((l) => l.req?.path.split('?')[0] === path), { what: `a log line for ${path}` });
}

/** The request log lines whose path starts with `prefix`, once there are at least `count` of them. */
function requestLines(lines: () => LogLine[], prefix: string, count: number): Promise<LogLine[]> {
  return pollUntil(
    () => {
      const found = lines().filter((l) => l.req?.path.startsWith(prefix));
      return found.length >= count ? found : null;
    },
    { what: `${count} log lines for ${prefix}` },
  );
}

const QUERY = 'China-Belarus industrial cooperation';

describe('request logs', () => {
  it('writes one JSON line per request with the request id it was sent, echoed in X-Request-Id', async () => {
    const app = await appWithCapturedLogs();
    const res = await fetch(`${app.url}/stats`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    const line = await requestLine(app.lines, '/stats');
    expect(line.req).toEqual({ id: 'trace-abc.123', method: 'GET', path: '/stats' });
    expect(line.res).toEqual({ statusCode: 200 });
    expect(line.level).toBe(30); // info
    expect(typeof line.responseTime).toBe('number');
    expect(line.msg).toMatch(/^GET \/stats 200/);
  });

  it('generates a UUID when no id is sent, and sanitises and bounds one that is', async () => {
    const app = await appWithCapturedLogs();
    const generated = await fetch(`${app.url}/stats`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);

    const hostile = `"},{"level":60,"msg":"forged <script>${'x'.repeat(500)}`;
    const res = await fetch(`${app.url}/health`, { headers: { 'x-request-id': hostile } });
    const echoed = res.headers.get('x-request-id')!;
    expect(echoed.length).toBeLessThanOrEqual(MAX_REQUEST_ID_LENGTH);
    expect(echoed).toMatch(/^[A-Za-z0-9._:/+=@-]+$/);
    expect(echoed.startsWith('level:60msg:forgedscript')).toBe(true);

    const onlyJunk = await fetch(`${app.url}/health`, { headers: { 'x-request-id': '"<>{}' } });
    expect(onlyJunk.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('puts the request id on error responses and their log lines (warn for 4xx)', async () => {
    const app = await appWithCapturedLogs();
    const res = await fetch(`${app.url}/search?q=x&k=abc`, { headers: { 'x-request-id': 'bad-k-1' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-request-id')).toBe('bad-k-1');
    const line = await requestLine(app.lines, '/search');
    expect(line.level).toBe(40); // warn for 4xx
    expect(line.req?.id).toBe('bad-k-1');
  });

  it('logs an error answered on purpose as the client saw it: its code and message, no stack', async () => {
    const app = await appWithCapturedLogs();
    await fetch(`${app.url}/search?q=x&k=abc`);
    const bad = await requestLine(app.lines, '/search');
    expect(bad.err).toEqual({ type: 'invalid_request', message: expect.stringMatching(/\bk\b/) });

    // A refusal under overload (503) in the pipeline: the request log, the search queue (one slot, no room to wait)
    // and the error handler, in front of a search route the test holds open.
    const { logger, lines } = capturedLogger({ ...service.config, logLevel: 'info' });
    const admission = searchAdmission({ concurrency: 1, queueLimit: 0, queueTimeoutMs: 1_000 });
    const release: Array<() => void> = [];
    const held = express();
    held.use(requestLogger(logger, { logQueries: false }));
    held.use('/search', admission);
    held.get('/search', async (_req, res) => {
      await new Promise<void>((r) => release.push(r));
      res.json({ ok: true });
    });
    held.use(errorHandler(logger));
    const server = await listen(held, 0, '127.0.0.1');
    servers.push(server);
    const running = fetch(`${server.url}/search`);
    await pollUntil(() => release.length === 1, { what: 'the held search to start' });
    expect((await fetch(`${server.url}/search`)).status).toBe(503);
    for (const r of release) r();
    expect((await running).status).toBe(200);
    const refused = await pollUntil(() => lines().find((l) => l.res?.statusCode === 503), { what: "the refusal's log line" });
    expect(refused.level).toBe(40);
    expect(refused.err).toEqual({ type: 'overloaded', message: expect.stringMatching(/queue is full/) });
  });

  it('does not log query text at info level by default: path only, for GET and POST', async () => {
    const app = await appWithCapturedLogs();
    expect((await fetch(`${app.url}/search?q=${encodeURIComponent(QUERY)}&k=2`)).status).toBe(200);
    expect(
      (await fetch(`${app.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ q: QUERY, k: 2 }) })).status,
    ).toBe(200);
    // Both requests answered: wait for both lines (a third would be a duplicate, counted below).
    await requestLines(app.lines, '/search', 2);
    const searchLines = app.lines().filter((l) => l.req?.path === '/search');
    expect(searchLines).toHaveLength(2);
    expect(searchLines.map((l) => l.req?.method).sort()).toEqual(['GET', 'POST']);
    const raw = app.raw();
    expect(raw).not.toMatch(/belarus/i);
    expect(raw).not.toContain('q=');
  });

  it('logs the query when logQueries is on', async () => {
    const app = await appWithCapturedLogs({ logQueries: true });
    expect((await fetch(`${app.url}/search?q=${encodeURIComponent(QUERY)}&k=2`)).status).toBe(200);
    expect(
      (await fetch(`${app.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ q: 'tea harvest', k: 2 }) }))
        .status,
    ).toBe(200);
    const lines = await requestLines(app.lines, '/search', 2);
    expect(lines.find((l) => l.req?.method === 'GET')?.req?.path).toBe(`/search?q=${encodeURIComponent(QUERY)}&k=2`);
    expect(lines.find((l) => l.req?.method === 'POST')?.q).toBe('tea harvest');
  });

  // util-linux `script` runs a command on a pseudo-terminal, the way an operator runs `quarry serve`.
  const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
  if (!script) console.warn('[logging.test.ts] skipping the terminal-output test: util-linux `script` is not installed');
  it.skipIf(!script)('is human-readable on a terminal and JSON otherwise', async () => {
    // The compiled logger (what `quarry serve` runs), with plain node: tsx would transpile src/ at each of the two starts.
    const dist = await freshDist();
    const program = `import { loadConfig } from ${JSON.stringify(pathToFileURL(join(dist, 'config/config.js')).href)};
      import { createLogger } from ${JSON.stringify(pathToFileURL(join(dist, 'runtime.js')).href)};
      const log = createLogger(loadConfig({ env: {} })); log.info({ req: { id: 'tty-1', path: '/stats' } }, 'GET /stats 200 3ms');`;
    const run = promisify(execFile);
    const opts = { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, timeout: CHILD_HANG_GUARD_MS };
    const piped = (await run(process.execPath, ['--input-type=module', '-e', program], opts)).stdout.trim();
    expect(JSON.parse(piped)).toMatchObject({ level: 30, msg: 'GET /stats 200 3ms', req: { id: 'tty-1' } });

    const command = [process.execPath, '--input-type=module', '-e', program].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the terminal's colour codes
    const onTty = (await run(script!, ['-qec', command, '/dev/null'], opts)).stdout.replace(/\x1b\[[0-9;]*m/g, '').trim();
    expect(onTty).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/stats 200 3ms .*"id":"tty-1"/);
    expect(onTty.split('\n')).toHaveLength(1);
  });

  it('logs routine probes and scrapes at debug, so info-level logs stay about real traffic', async () => {
    const app = await appWithCapturedLogs();
    await fetch(`${app.url}/health`);
    await fetch(`${app.url}/metrics`);
    await fetch(`${app.url}/stats`);
    await requestLine(app.lines, '/stats');
    expect(app.lines().some((l) => l.req?.path === '/health' || l.req?.path === '/metrics')).toBe(false);

    const debug = await appWithCapturedLogs({ logLevel: 'debug' });
    await fetch(`${debug.url}/health`);
    expect((await requestLine(debug.lines, '/health')).level).toBe(20);
  });
});
