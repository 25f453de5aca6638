import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../helpers/backends.ts';
import { SEEDS_DIR, type Service, startHashedService, testConfig } from '../helpers/service.ts';

/*
 * The search API's validation contract: 400/404/413/415 JSON naming the field, never a stack trace, and an
 * internal failure as 500 JSON with the process still serving. On the test embedder; run against both
 * backends: tests/contract/api-validation.test.ts (SQLite), tests/postgres/pg-contract.test.ts (PostgreSQL).
 */

/** Breaks the index under a running service, so that its next lexical search fails inside the store. */
export type BreakIndex = (service: Service) => Promise<void>;

export function apiValidationSuite(backend: TestBackend, breakIndex: BreakIndex): void {
  let service: Service;

  beforeAll(async () => {
    const target = await backend.newIndex();
    service = await startHashedService({ seedsDir: SEEDS_DIR, config: testConfig({ seedsDir: SEEDS_DIR, bodyLimit: '2kb', ...target.config }) });
  });
  afterAll(async () => {
    await service?.dispose();
  });

  async function expectError(res: Response, status: number, code: string, field?: string, message?: RegExp): Promise<void> {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { error: { code: string; message: string; field?: string } };
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    if (field !== undefined) expect(body.error.field).toBe(field);
    if (message) expect(body.error.message).toMatch(message);
    expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
  }

  const get = (path: string) => fetch(`${service.url}${path}`);
  const post = (path: string, body: string, contentType = 'application/json') =>
    fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

  describe('GET /search validation', () => {
    it.each([
      ['/search', 'q', /is required/],
      ['/search?q=', 'q', /must not be empty/],
      ['/search?q=%20%20%20', 'q', /must not be empty/],
      [`/search?q=${'a'.repeat(1001)}`, 'q', /at most 1000 characters/],
      ['/search?q=x&k=abc', 'k', /must be a number/],
      ['/search?q=x&k=0', 'k', /at least 1/],
      ['/search?q=x&k=101', 'k', /at most 100/],
      ['/search?q=x&k=2.5', 'k', /integer/],
      ['/search?q=x&k=-3', 'k', /at least 1/],
      ['/search?q=x&mode=fuzzy', 'mode', /./],
      ['/search?q=x&minScore=high', 'minScore', /must be a number/],
      ['/search?q=x&colour=blue', 'colour', /unknown field/],
      ['/search?q=a&q=b', 'q', /must be a string/],
    ])('%s -> 400 naming %s', async (path, field, message) => {
      await expectError(await get(path), 400, 'invalid_request', field, message);
    });

    it('accepts a query at the length cap', async () => {
      expect((await get(`/search?q=${'a'.repeat(1000)}&k=1`)).status).toBe(200);
    });
  });

  describe('POST /search validation', () => {
    it('answers a valid JSON body', async () => {
      const res = await post('/search', JSON.stringify({ q: 'China-Belarus industrial cooperation', k: 2, minScore: 0 }));
      expect(res.status).toBe(200);
      expect(((await res.json()) as { results: unknown[] }).results.length).toBeGreaterThan(0);
    });

    it('rejects malformed JSON', async () => {
      await expectError(await post('/search', '{"q": "x",'), 400, 'invalid_request', 'body', /not valid JSON/);
    });

    it('rejects a wrong content type', async () => {
      await expectError(await post('/search', 'q=x', 'application/x-www-form-urlencoded'), 415, 'unsupported_media_type', 'content-type');
      await expectError(await post('/search', '{"q":"x"}', 'text/plain'), 415, 'unsupported_media_type', 'content-type');
    });

    it('rejects a JSON body that is not an object', async () => {
      await expectError(await post('/search', '["q"]'), 400, 'invalid_request', 'body');
      await expectError(await post('/search', '"q"'), 400, 'invalid_request', 'body');
    });

    it.each([
      [{}, 'q'],
      [{ q: 42 }, 'q'],
      [{ q: '' }, 'q'],
      [{ q: 'x', k: 'ten' }, 'k'],
      [{ q: 'x', k: 1000 }, 'k'],
      [{ q: 'x', minScore: 'high' }, 'minScore'],
      [{ q: 'x', extra: true }, 'extra'],
    ])('%j -> 400 naming %s', async (body, field) => {
      await expectError(await post('/search', JSON.stringify(body)), 400, 'invalid_request', field);
    });

    it('rejects a body over the size limit with 413', async () => {
      await expectError(await post('/search', JSON.stringify({ q: 'x'.repeat(4000) })), 413, 'payload_too_large', 'body');
    });
  });

  describe('other routes', () => {
    it('answers unknown routes with 404 JSON', async () => {
      await expectError(await get('/nope'), 404, 'not_found', undefined, /no route for GET \/nope/);
      await expectError(await fetch(`${service.url}/search`, { method: 'PUT' }), 404, 'not_found');
    });

    it('rejects an article id with path characters', async () => {
      await expectError(await get('/articles/..%2F..%2Fetc%2Fpasswd'), 400, 'invalid_request', 'id');
      await expectError(await get(`/articles/${'a'.repeat(201)}`), 400, 'invalid_request', 'id');
    });

    it('keeps serving after every bad request above', async () => {
      expect((await get('/search?q=China')).status).toBe(200);
    });
  });

  describe('internal errors', () => {
    it('become 500 JSON without a stack trace, and the process keeps running', async () => {
      const target = await backend.newIndex();
      const broken = await startHashedService({
        seedsDir: SEEDS_DIR,
        embedder: service.embedder,
        config: testConfig({ seedsDir: SEEDS_DIR, ...target.config }),
      });
      try {
        await breakIndex(broken);
        await expectError(await fetch(`${broken.url}/search?q=x&mode=lexical`), 500, 'internal', undefined, /internal error/);
        expect((await get('/search?q=China&k=1')).status).toBe(200);
      } finally {
        await broken.server.close();
        await broken.quarry.close().catch(() => undefined);
        rmSync(broken.config.indexDir, { recursive: true, force: true });
      }
    });
  });
}
