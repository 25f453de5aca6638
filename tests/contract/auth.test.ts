import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { keysMatch } from '../../src/server/auth.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { SEEDS_DIR, type Service, startHashedService, testConfig } from '../helpers/service.ts';

const WRITE_KEY = 'write-key-for-tests-0123456789';
const READ_KEY = 'read-key-for-tests-9876543210';
const article = (id: string) => ({
  id,
  title: 'Auth test article',
  paragraphs: ['A paragraph long enough to be indexed as a chunk of its own, about keys and locks.'],
});

let embedder: Embedder;
const services: Service[] = [];
async function start(keys: { apiKey?: string; readKey?: string }): Promise<Service> {
  const s = await startHashedService({ seedsDir: SEEDS_DIR, config: testConfig({ seedsDir: SEEDS_DIR, ...keys }), embedder });
  services.push(s);
  return s;
}

beforeAll(async () => {
  embedder = createHashedEmbedder();
});
afterAll(async () => {
  for (const s of services) await s.dispose();
  await embedder?.close();
});

const postArticle = (url: string, id: string, authorization?: string) =>
  fetch(`${url}/articles`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(article(id)),
  });
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string; field?: string } }).error;

describe('no API key configured', () => {
  let s: Service;
  beforeAll(async () => {
    s = await start({});
  });

  it('disables every write endpoint with 403 and says how to enable them, whatever key is sent', async () => {
    for (const authorization of [undefined, 'Bearer anything-at-all-0123456789']) {
      const res = await postArticle(s.url, 'no-key', authorization);
      expect(res.status).toBe(403);
      const err = await errorOf(res);
      expect(err.code).toBe('forbidden');
      expect(err.message).toMatch(/QUARRY_API_KEY/);
      expect(err.message).toMatch(/Authorization: Bearer/);
    }
    expect((await fetch(`${s.url}/articles/no-key`, { method: 'DELETE' })).status).toBe(403);
    expect((await fetch(`${s.url}/admin/rebuild`, { method: 'POST' })).status).toBe(403);
    expect((await fetch(`${s.url}/admin/rebuild`)).status).toBe(403);
    expect((await fetch(`${s.url}/articles/no-key`, { headers: { accept: 'application/json' } })).status).toBe(404);
  });

  it('refuses before reading the body: an unauthenticated client cannot make the server parse it', async () => {
    // Malformed JSON far over the body limit: had it been parsed, this would be 400 or 413, not 403.
    const res = await fetch(`${s.url}/articles`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{${'x'.repeat(11 * 1024 * 1024)}` });
    expect(res.status).toBe(403);
  });

  it('leaves reads open', async () => {
    expect((await fetch(`${s.url}/search?q=industrial+park`)).status).toBe(200);
    expect((await fetch(`${s.url}/stats`)).status).toBe(200);
  });
});

describe('an API key configured', () => {
  let s: Service;
  beforeAll(async () => {
    s = await start({ apiKey: WRITE_KEY });
  });

  it('answers 401 without a key, with a wrong key, and with a key that is not a Bearer token', async () => {
    for (const authorization of [undefined, `Bearer ${WRITE_KEY}x`, `Bearer ${WRITE_KEY.slice(0, -1)}`, 'Bearer ', `Basic ${WRITE_KEY}`, WRITE_KEY]) {
      const res = await postArticle(s.url, 'denied', authorization);
      expect(res.status, String(authorization)).toBe(401);
      expect(await errorOf(res)).toMatchObject({ code: 'unauthorized', field: 'authorization' });
    }
    expect((await fetch(`${s.url}/articles/denied`, { headers: { accept: 'application/json' } })).status).toBe(404);
    expect((await fetch(`${s.url}/articles/denied`, { method: 'DELETE', headers: { authorization: 'Bearer wrong-key-0123456789abc' } })).status).toBe(401);
    expect((await fetch(`${s.url}/admin/rebuild`, { method: 'POST' })).status).toBe(401);
  });

  it('accepts the right key: 201, then 204 for the delete', async () => {
    const res = await postArticle(s.url, 'allowed', `Bearer ${WRITE_KEY}`);
    expect(res.status).toBe(201);
    expect((await fetch(`${s.url}/articles/allowed`, { headers: { accept: 'application/json' } })).status).toBe(200);
    // The scheme is case-insensitive (RFC 7235).
    expect((await fetch(`${s.url}/articles/allowed`, { method: 'DELETE', headers: { authorization: `bearer ${WRITE_KEY}` } })).status).toBe(204);
    expect((await fetch(`${s.url}/admin/rebuild`, { headers: { authorization: `Bearer ${WRITE_KEY}` } })).status).toBe(200);
  });

  it('leaves reads open when no read key is set', async () => {
    expect((await fetch(`${s.url}/search?q=industrial+park`)).status).toBe(200);
    expect((await fetch(`${s.url}/stats`)).status).toBe(200);
  });
});

describe('a read key configured', () => {
  let s: Service;
  beforeAll(async () => {
    s = await start({ apiKey: WRITE_KEY, readKey: READ_KEY });
  });

  it('requires the read key (or the write key) for reads', async () => {
    for (const path of ['/search?q=industrial+park', '/stats', '/articles/1a76b68b4bef4123']) {
      const open = await fetch(`${s.url}${path}`, { headers: { accept: 'application/json' } });
      expect(open.status, path).toBe(401);
      expect(await errorOf(open)).toMatchObject({ code: 'unauthorized', field: 'authorization' });
      expect((await fetch(`${s.url}${path}`, { headers: { accept: 'application/json', authorization: 'Bearer not-the-read-key-012345' } })).status, path).toBe(
        401,
      );
      expect((await fetch(`${s.url}${path}`, { headers: { accept: 'application/json', authorization: `Bearer ${READ_KEY}` } })).status, path).toBe(200);
      expect((await fetch(`${s.url}${path}`, { headers: { accept: 'application/json', authorization: `Bearer ${WRITE_KEY}` } })).status, path).toBe(200);
    }
  });

  it('does not let the read key write', async () => {
    expect((await postArticle(s.url, 'read-key-write', `Bearer ${READ_KEY}`)).status).toBe(401);
    expect((await postArticle(s.url, 'write-key-write', `Bearer ${WRITE_KEY}`)).status).toBe(201);
  });

  it('keeps /health open for load balancers', async () => {
    expect((await fetch(`${s.url}/health`)).status).toBe(200);
  });
});

describe('keysMatch', () => {
  it('is true only for the identical key, whatever the lengths', () => {
    expect(keysMatch(WRITE_KEY, WRITE_KEY)).toBe(true);
    expect(keysMatch(`${WRITE_KEY} `, WRITE_KEY)).toBe(false);
    expect(keysMatch('', WRITE_KEY)).toBe(false);
    expect(keysMatch(WRITE_KEY.toUpperCase(), WRITE_KEY)).toBe(false);
  });
});
