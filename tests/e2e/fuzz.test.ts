import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { ROOT, seedsWithDistractors } from '../helpers/real-service.ts';

/*
 * A bounded fuzz of the HTTP surface, for CI: a fixed seed, loopback only, a real `quarry serve` (the real
 * model and SQLite) in its own process. Broken JSON, wrong types, huge and odd query strings, deep nesting,
 * invalid UTF-8 and percent-encoding, hostile ids and paths, odd content types and raw malformed HTTP.
 * Asserts: no 5xx, no hang (every request answered or its connection closed within a generous guard), the
 * same process healthy after, and nothing of a refused write stored.
 */

const SEED = 14;
const REQUESTS = 2400;
/** Generous: a request that takes this long counts as a hang (normal answers take milliseconds). */
const HANG_GUARD_MS = 20_000;
const KEY = 'fuzz-test-write-key-0123456789';

const rand = mulberry32(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const chance = (p: number) => rand() < p;

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\u0000abc',
  '\ud800',
  '\udfff\ud800',
  '👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301',
  '\u202egnirts',
  'a"b',
  "a'b",
  '\\',
  '*',
  '"',
  '"unclosed',
  'NEAR(a b)',
  'a AND OR NOT b',
  '^a',
  'title:x',
  '(((((',
  ')',
  '-',
  'a*b*c*',
  '{"$ne":1}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%s%s%n',
  'null',
  'undefined',
  'constructor',
  '__proto__',
  'toString',
  '1e309',
  '-0',
  'NaN',
  'Infinity',
  '0x10',
  '\t\n\r',
  '\u00a0\u2028\u2029',
  'ＡＢＣ',
  '中文查询',
  'مرحبا',
  'a'.repeat(999),
  'a'.repeat(1001),
  'word '.repeat(400),
];
const randomString = (max: number) => {
  const n = int(max);
  let s = '';
  for (let i = 0; i < n; i++) s += chance(0.8) ? String.fromCharCode(32 + int(95)) : String.fromCharCode(int(0x3000));
  return s;
};
const oddString = () => (chance(0.6) ? pick(ODD_STRINGS) : randomString(60));
const oddValue = (): unknown =>
  pick([
    () => oddString(),
    () => (int(2) === 0 ? -int(1e9) : int(1e9)),
    () => rand() * 1e308 * (chance(0.5) ? -1 : 1),
    () => null,
    () => true,
    () => [],
    () => [oddString()],
    () => ({}),
    () => ({ nested: oddString() }),
    () => 2.5,
    () => Number.MAX_SAFE_INTEGER + 2,
  ])();

const deep = (depth: number, arr: boolean) => (arr ? '['.repeat(depth) + ']'.repeat(depth) : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`);
const validArticle = (id: string) => ({ id, title: `Fuzz article ${id}`, paragraphs: ['A paragraph about harbours and the tide, long enough to be a chunk.'] });

interface Case {
  kind: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Ids this request would write if accepted (a write). */
  writes?: string[];
  deletes?: string;
}

let writeSeq = 0;
const freshId = () => `fuzz-${writeSeq++}`;

/** Percent-encodes a string, then sometimes breaks the encoding. */
const encode = (s: string) => {
  let e: string;
  try {
    e = encodeURIComponent(s);
  } catch {
    e = s.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').slice(-2)}`);
  }
  return chance(0.15) ? e + pick(['%', '%Z', '%E0%A4%A', '%C3%28', '%FF%FE', '%00', '%ED%A0%80', '%%', '%2']) : e;
};

const SEARCH_KEYS = ['q', 'k', 'mode', 'minScore', 'explain', 'evidence', 'candidates', 'rrfK', 'denseWeight', 'lexicalWeight', 'fusion', 'efSearch'];
const json = (extra: Record<string, string> = {}) => ({ 'content-type': 'application/json', ...extra });
const withKey = (h: Record<string, string> = {}) => ({ authorization: `Bearer ${KEY}`, ...h });

function searchQueryCase(): Case {
  const params: string[] = [];
  const n = 1 + int(4);
  for (let i = 0; i < n; i++) {
    const key = chance(0.85) ? pick(SEARCH_KEYS) : pick(['q[]', 'q[a]', '__proto__[x]', 'constructor[prototype][x]', 'x'.repeat(int(3000)), '', '%', 'k%00']);
    const value = chance(0.3)
      ? String(oddValue())
      : key === 'q'
        ? oddString()
        : pick(['0', '-1', '101', '2.5', 'abc', '', 'true', '1e3', 'semantic', 'rrf', '4096', '99999']);
    params.push(`${encode(key)}=${encode(value)}`);
  }
  if (chance(0.2)) params.push(`q=${encode(oddString())}`);
  if (chance(0.05)) for (let i = 0; i < 1000; i++) params.push(`p${i}=${i}`);
  if (chance(0.03)) params.push(`q=${'a'.repeat(60_000)}`);
  return { kind: 'search-query', method: pick(['GET', 'GET', 'GET', 'HEAD']), path: `/search?${params.join(chance(0.1) ? ';' : '&')}` };
}

function searchBodyCase(): Case {
  const body = pick([
    () => JSON.stringify({ q: oddValue(), k: chance(0.5) ? oddValue() : 5 }),
    () => JSON.stringify({ q: 'harbour tides', [pick(SEARCH_KEYS)]: oddValue() }),
    () => JSON.stringify({ q: oddString() }),
    () => `{"q": "harbour",`,
    () => `{"q": "a", "q": "b"}`,
    () => `{q: 'x'}`,
    () => `\ufeff{"q":"x"}`,
    () => deep(1 + int(20_000), chance(0.5)),
    () => `{"q":"${'\\u'.repeat(3)}"}`,
    () => `{"q":"\\ud800"}`,
    () => JSON.stringify(oddValue()),
    () => 'null',
    () => '',
    () => randomString(200),
    () => JSON.stringify({ q: 'x'.repeat(1 + int(20_000)) }),
  ])();
  const headers = chance(0.85)
    ? json()
    : {
        'content-type': pick([
          'text/plain',
          'application/json; charset=utf-16',
          'application/json; charset=latin1',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=x',
          'application/json, text/html',
          'application/JSON',
          'application/vnd.api+json',
          '*/*',
          'application/json; charset="utf-8"; x=;',
        ]),
      };
  return { kind: 'search-body', method: 'POST', path: '/search', headers, body };
}

function invalidUtf8Case(): Case {
  const bad = [
    Buffer.from([0xff, 0xfe]),
    Buffer.from([0xc3, 0x28]),
    Buffer.from([0xe0, 0x80, 0x80]),
    Buffer.from([0xed, 0xa0, 0x80]),
    Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]),
  ];
  const id = freshId();
  const write = chance(0.5);
  const body = Buffer.concat([
    Buffer.from(write ? `{"id":"${id}","title":"` : '{"q":"'),
    pick(bad),
    Buffer.from(write ? '","paragraphs":["para ' : ' harbour'),
    pick(bad),
    Buffer.from(write ? '"],"date":"2024-13-45"}' : '"}'),
  ]);
  return write
    ? { kind: 'invalid-utf8-write', method: 'POST', path: '/articles', headers: withKey(json()), body, writes: [id] }
    : { kind: 'invalid-utf8-search', method: 'POST', path: '/search', headers: json(), body };
}

/** An article with one field broken (sometimes in a batch of otherwise valid ones). */
function brokenWriteCase(): Case {
  const ids = Array.from({ length: 1 + int(3) }, freshId);
  const articles: Record<string, unknown>[] = ids.map(validArticle);
  const victim = articles[int(articles.length)]!;
  const field = pick(['id', 'title', 'date', 'source', 'url', 'text', 'paragraphs', 'extra']);
  victim[field] = pick([
    () => oddValue(),
    () => (field === 'id' ? pick(['../x', 'a/b', '', ' ', '.hidden', 'x'.repeat(201), '%2e%2e', 'a b', 'a\u0000b', '😀']) : oddValue()),
    () => (field === 'url' ? pick(['javascript:alert(1)', 'data:text/html,x', 'ftp://x', 'http//x', 'file:///etc/passwd']) : oddValue()),
    () => (field === 'date' ? pick(['2024-02-30', 'yesterday', '2024-1-1', '99999-01-01', '']) : oddValue()),
    () => (field === 'paragraphs' ? [oddValue(), 'ok paragraph'] : oddValue()),
  ])();
  if (field === 'text' && victim.text !== undefined) delete victim.paragraphs;
  const body = articles.length === 1 && chance(0.5) ? JSON.stringify(articles[0]) : JSON.stringify({ articles, ...(chance(0.1) ? { extra: 1 } : {}) });
  const auth = chance(0.9)
    ? withKey(json())
    : { ...json(), authorization: pick(['Bearer wrong-key-0000000000000', 'Basic Zm9vOmJhcg==', 'Bearer', `Bearer ${KEY} extra`, '']) };
  return { kind: 'broken-write', method: 'POST', path: '/articles', headers: auth, body, writes: ids };
}

function brokenWriteJsonCase(): Case {
  const id = freshId();
  const body = pick([
    () => `{"id":"${id}","title":"t","paragraphs":["p"]`,
    () => `{"articles":[${'{"id":"x"},'.repeat(1 + int(50))}]}`,
    () => deep(1 + int(20_000), chance(0.5)),
    () => `{"id":"${id}","title":"t","paragraphs":${deep(1 + int(5000), true)}}`,
    () => `{"articles":${JSON.stringify(Array.from({ length: 501 }, (_, i) => validArticle(`${id}-${i}`)))}}`,
    () => `{"id":"${id}","title":"t","paragraphs":["p"],"__proto__":{"polluted":true}}`,
    () => `{"id":"${id}","constructor":{"prototype":{"x":1}},"title":"t","paragraphs":["p"]}`,
  ])();
  return {
    kind: 'broken-write-json',
    method: 'POST',
    path: '/articles',
    headers: withKey(json()),
    body,
    // Of the 501-article batch, its first and last ids stand for the rest (the article count covers them all).
    writes: [id, `${id}-0`, `${id}-500`],
  };
}

const HOSTILE_PATHS = [
  '/articles/..%2f..%2fetc%2fpasswd',
  '/articles/%2e%2e',
  '/articles/%00',
  '/articles/%',
  '/articles/%E0%A4%A',
  '/articles/%C3%28',
  '/articles/%FF',
  `/articles/${'a'.repeat(5000)}`,
  '/articles/a%2Fb',
  '/articles/a/b/c',
  '/articles//',
  '/articles/%20',
  '/articles/con',
  '/articles/__proto__',
  '/articles/constructor',
  '/articles/😀',
  '/static/../../../../etc/passwd',
  '/static/%2e%2e/%2e%2e/package.json',
  '/static/..%5c..%5cpackage.json',
  '/static/%00.js',
  '/static/',
  '/docs/../../',
  '/docs/assets/%2e%2e/%2e%2e/package.json',
  '//articles',
  '/./search?q=x',
  '/search/../stats',
  '/search/%',
  '/admin/rebuild/%',
  '/admin/snapshot',
  '/openapi.json/%',
  '/metrics?%',
  '/health/ready/x',
  '/%',
  '/\\..\\..\\',
  `/${'x/'.repeat(2000)}`,
];

function hostilePathCase(): Case {
  const path = chance(0.7) ? pick(HOSTILE_PATHS) : `/articles/${encode(oddString())}`;
  const method = pick(['GET', 'GET', 'DELETE', 'PUT', 'PATCH', 'POST', 'OPTIONS', 'HEAD']);
  const headers: Record<string, string> = chance(0.5) ? withKey() : {};
  if (method === 'POST' && path === '/admin/snapshot') {
    // Only odd names: a valid one would write a snapshot (allowed, but not what this fuzz is about).
    return {
      kind: 'hostile-snapshot-name',
      method,
      path,
      headers: withKey(json()),
      body: JSON.stringify({ name: pick(['../x', '/tmp/x', '', '.', '..', 'a/b', '%2e%2e', 'x'.repeat(101), '.hidden']) }),
    };
  }
  if (method === 'POST' && path.startsWith('/admin/')) return { kind: 'hostile-path', method: 'GET', path, headers };
  if (method === 'OPTIONS') headers.origin = pick(['https://evil.example', 'null', '', 'https://news.example.org']);
  if (method === 'OPTIONS') headers['access-control-request-method'] = pick(['DELETE', 'POST', 'GET', 'FOO']);
  return { kind: 'hostile-path', method, path, headers, ...(method === 'DELETE' && path.startsWith('/articles/') ? { deletes: path } : {}) };
}

function oddEncodingCase(): Case {
  const body = Buffer.from(JSON.stringify({ q: 'harbour' }));
  return {
    kind: 'odd-encoding',
    method: 'POST',
    path: pick(['/search', '/articles']),
    headers: withKey({ 'content-type': 'application/json', 'content-encoding': pick(['gzip', 'deflate', 'br', 'identity, gzip', 'x-unknown', 'compress']) }),
    body,
  };
}

/** Raw bytes on a socket: malformed request lines, headers, framing, and requests cut short. */
const RAW = [
  'GARBAGE\r\n\r\n',
  'GET\r\n\r\n',
  'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET / HTTP/1.1\r\nNo colon here\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n',
  `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
  'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n{"q":"x"}',
  'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n{"q":"x"}',
  'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{"q":"x"}\r\n0\r\n\r\n',
  'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n',
  'POST /search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"q":',
  'POST /articles HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n',
  'GET /search?q=x HTTP/1.1\r\nHost: x\r\nX-Nul: a\u0000b\r\n\r\n',
  'GET /search?q=x HTTP/1.1\nHost: x\n\n',
  'GET http://evil.example/search?q=harbour HTTP/1.1\r\nHost: x\r\n\r\n',
  'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n',
  'FOO /search HTTP/1.1\r\nHost: x\r\n\r\n',
  'get /search?q=x HTTP/1.1\r\nHost: x\r\n\r\n',
  `GET /${'a'.repeat(80_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  'GET /search?q=x HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /search?q=y HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n',
  'GET /search?q=x HTTP/1.1\r\n',
  'POST /articles HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fuzz-test-write-key-0123456789\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"id":"raw-cut","title":"t","paragr',
  '\r\n\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n',
  'GET /health HTTP/1.0\r\n\r\n',
];

interface Outcome {
  status: number | null;
  error?: string;
  body?: string;
}

function rawRequest(port: number, payload: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ status: null, error: 'hang' });
    }, HANG_GUARD_MS);
    socket.on('data', (d) => (data += d.toString('latin1')));
    const done = () => {
      clearTimeout(timer);
      const statuses = [...data.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
      resolve({ status: statuses.length ? Math.max(...statuses) : 0, body: data.slice(0, 300) });
    };
    socket.on('close', done);
    socket.on('error', () => {});
    socket.write(Buffer.from(payload, 'latin1'));
    // Half-close: the server sees the end of what we send (a cut-short request must not wait forever).
    socket.end();
  });
}

async function httpRequest(base: string, c: Case): Promise<Outcome> {
  try {
    const res = await fetch(`${base}${c.path}`, {
      method: c.method,
      headers: c.headers,
      body: typeof c.body === 'string' || c.body === undefined ? c.body : new Uint8Array(c.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(HANG_GUARD_MS),
    });
    const body = c.method === 'HEAD' ? '' : await res.text();
    return { status: res.status, body: body.slice(0, 300) };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    if (err.name === 'TimeoutError') return { status: null, error: 'hang' };
    // A request the client library itself refuses to send (an invalid header value) tested nothing.
    if (err.name === 'TypeError' && !err.cause) return { status: -1, error: err.message };
    return { status: 0, error: err.cause?.code ?? err.message };
  }
}

function nextCase(): Case | { raw: string; kind: string } {
  const r = rand();
  if (r < 0.22) return searchQueryCase();
  if (r < 0.37) return searchBodyCase();
  if (r < 0.52) return brokenWriteCase();
  if (r < 0.58) return brokenWriteJsonCase();
  if (r < 0.64) return invalidUtf8Case();
  if (r < 0.82) return hostilePathCase();
  if (r < 0.86) return oddEncodingCase();
  return { kind: 'raw-http', raw: pick(RAW) };
}

let server: ChildServer;
let seeds: string;
let indexDir: string;

beforeAll(async () => {
  seeds = seedsWithDistractors();
  indexDir = mkdtempSync(join(tmpdir(), 'quarry-fuzz-'));
  server = await startChildServer({
    indexDir,
    seedsDir: seeds,
    // Rate limits off: the fuzz must reach validation, not a 429 (rate limits have their own test).
    env: { QUARRY_API_KEY: KEY, QUARRY_SEARCH_RATE: '0', QUARRY_BODY_LIMIT: '1mb', QUARRY_CORS_ORIGINS: 'https://news.example.org,*' },
    timeoutMs: 90_000,
  });
});

afterAll(async () => {
  await server?.kill('SIGKILL');
  rmSync(indexDir, { recursive: true, force: true });
  rmSync(seeds, { recursive: true, force: true });
});

describe('bounded HTTP fuzz (fixed seed, loopback, real server)', () => {
  it(`answers ${REQUESTS} hostile requests with no 5xx and no hang, stays healthy, and stores nothing of a refused write`, { timeout: 900_000 }, async () => {
    const port = Number(new URL(server.url).port);
    const before = ((await (await fetch(`${server.url}/stats`)).json()) as { articles: number; chunks: number }).articles;
    const started = performance.now();
    const byKind = new Map<string, Map<string, number>>();
    const failures: string[] = [];
    const accepted = new Set<string>();
    // The raw request that carries a write cut short.
    const refused = new Set<string>(['raw-cut']);
    let deleted = 0;
    let skipped = 0;
    // Four at a time: enough to overlap, well within the search admission limits (no 503 by design).
    const cases = Array.from({ length: REQUESTS }, nextCase);
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const out = 'raw' in c ? await rawRequest(port, c.raw) : await httpRequest(server.url, c);
        const tally = byKind.get(c.kind) ?? new Map<string, number>();
        tally.set(String(out.status), (tally.get(String(out.status)) ?? 0) + 1);
        byKind.set(c.kind, tally);
        if (out.status === -1) skipped++;
        if (out.status === null) failures.push(`HANG ${c.kind}: ${'raw' in c ? JSON.stringify(c.raw.slice(0, 120)) : `${c.method} ${c.path.slice(0, 120)}`}`);
        else if (out.status >= 500)
          failures.push(`${out.status} ${c.kind}: ${'raw' in c ? JSON.stringify(c.raw.slice(0, 120)) : `${c.method} ${c.path.slice(0, 120)}`} -> ${out.body}`);
        if (!('raw' in c) && c.deletes && out.status === 204) deleted++;
        if (!('raw' in c) && c.writes) {
          if (out.status === 201) for (const a of (JSON.parse(out.body ?? '{}') as { articles?: Array<{ id: string }> }).articles ?? []) accepted.add(a.id);
          else for (const id of c.writes) refused.add(id);
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const seconds = (performance.now() - started) / 1000;
    const summary = Object.fromEntries([...byKind].map(([k, v]) => [k, Object.fromEntries(v)]));
    console.log(
      `fuzz: ${REQUESTS} requests (seed ${SEED}) in ${seconds.toFixed(1)} s; ${skipped} not sendable by fetch; by kind and status: ${JSON.stringify(summary)}`,
    );
    expect(failures).toEqual([]);
    expect(REQUESTS - skipped).toBeGreaterThanOrEqual(2000);

    // Healthy after: the same process, the deep health check (the model embeds), and a real search.
    expect(server.output()).not.toMatch(/exited|uncaught|FATAL/i);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
    const search = (await (await fetch(`${server.url}/search?q=China-Belarus%20industrial%20cooperation&k=1`)).json()) as { results: unknown[] };
    expect(search.results.length).toBe(1);

    // Nothing of a refused write: every id a refused request carried is absent unless another request stored it.
    const lookups = [...refused].filter((id) => !accepted.has(id));
    let stored = 0;
    for (let i = 0; i < lookups.length; i += 16) {
      const statuses = await Promise.all(
        lookups.slice(i, i + 16).map(async (id) => (await fetch(`${server.url}/articles/${id}`, { headers: { accept: 'application/json' } })).status),
      );
      stored += statuses.filter((s) => s === 200).length;
    }
    expect(stored).toBe(0);
    const after = ((await (await fetch(`${server.url}/stats`)).json()) as { articles: number }).articles;
    expect(after).toBe(before + accepted.size - deleted);

    // And the index on disk is whole.
    await server.kill('SIGTERM');
    const check = spawnSync(process.execPath, ['bin/quarry.js', 'check'], {
      cwd: ROOT,
      env: { ...process.env, QUARRY_INDEX_DIR: indexDir, QUARRY_MODELS_DIR: join(ROOT, 'models'), QUARRY_LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });
});
