import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestBackend } from '../helpers/backends.ts';
import { type Service, seedsWithDistractors, startHashedService, testConfig } from '../helpers/service.ts';

/*
 * POST /articles and DELETE /articles/:id refuse bad input with 400 (or 413, 415) naming the field, and write
 * nothing. The subject is the HTTP contract, not the model: the test embedder stands in for it. Run against
 * both backends: tests/contract/ingest-validation.test.ts (SQLite), tests/postgres/pg-contract.test.ts.
 */

const KEY = 'ingest-test-key-0123456789';
const auth = { authorization: `Bearer ${KEY}` };
const json = { ...auth, 'content-type': 'application/json' };

export function ingestValidationSuite(backend: TestBackend): void {
  let service: Service;
  let seedsDir: string;

  const post = (url: string, body: unknown, headers: Record<string, string> = json) =>
    fetch(`${url}/articles`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const getArticle = (url: string, id: string) => fetch(`${url}/articles/${id}`, { headers: { accept: 'application/json' } });

  beforeAll(async () => {
    seedsDir = seedsWithDistractors();
    const target = await backend.newIndex();
    service = await startHashedService({ seedsDir, config: testConfig({ seedsDir, apiKey: KEY, maxBatchArticles: 3, bodyLimit: '16kb', ...target.config }) });
  });
  afterAll(async () => {
    await service?.dispose();
    if (seedsDir) rmSync(seedsDir, { recursive: true, force: true });
  });

  describe('validation: 400 naming the field, and nothing written', () => {
    const valid = { id: 'valid-id', title: 'A title', paragraphs: ['A paragraph that is long enough to be its own chunk of text.'] };
    it.each([
      ['missing title', { id: 'v1', text: 'Some text here.' }, 'title'],
      ['empty title', { ...valid, title: '   ' }, 'title'],
      ['missing text and paragraphs', { id: 'v1', title: 'T' }, 'text'],
      ['empty text', { id: 'v1', title: 'T', text: ' \n\n ' }, 'text'],
      ['empty paragraphs', { ...valid, paragraphs: [] }, 'paragraphs'],
      ['blank paragraphs', { ...valid, paragraphs: ['  ', ''] }, 'paragraphs'],
      ['both text and paragraphs', { ...valid, text: 'x' }, 'paragraphs'],
      ['id with ../', { ...valid, id: '../x' }, 'id'],
      ['id with a slash', { ...valid, id: 'a/b' }, 'id'],
      ['id with a backslash', { ...valid, id: 'a\\b' }, 'id'],
      ['id over 200 characters', { ...valid, id: 'a'.repeat(201) }, 'id'],
      ['missing id', { title: 'T', text: 'Some text.' }, 'id'],
      ['date not ISO 8601', { ...valid, date: '03/02/2024' }, 'date'],
      ['date that does not exist', { ...valid, date: '2024-02-31' }, 'date'],
      ['unknown field', { ...valid, author: 'me' }, 'author'],
      ['javascript: URL', { ...valid, url: 'javascript:alert(1)' }, 'url'],
      ['data: URL', { ...valid, url: 'data:text/html,<script>alert(1)</script>' }, 'url'],
      ['ftp URL', { ...valid, url: 'ftp://example.org/story.txt' }, 'url'],
      ['not a URL', { ...valid, url: 'www.example.org/story' }, 'url'],
      ['too many articles in a batch', { articles: [1, 2, 3, 4].map((n) => ({ ...valid, id: `b${n}` })) }, 'articles'],
      ['empty batch', { articles: [] }, 'articles'],
      ['bad article inside a batch', { articles: [valid, { id: 'b2', text: 'no title' }] }, 'articles.1.title'],
      ['the same id twice in a batch', { articles: [valid, valid] }, 'articles'],
    ])('%s', async (_name, body, field) => {
      const before = await service.quarry.stats();
      const res = await post(service.url, body);
      expect(res.status).toBe(400);
      const err = ((await res.json()) as { error: { code: string; field: string; message: string } }).error;
      expect(err).toMatchObject({ code: 'invalid_request', field });
      expect(err.message.length).toBeGreaterThan(10);
      const after = await service.quarry.stats();
      expect([after.articles, after.chunks]).toEqual([before.articles, before.chunks]);
    });

    it('accepts an id of exactly 200 characters, an ISO date-time and an https URL', async () => {
      const res = await post(service.url, { ...valid, id: 'a'.repeat(200), date: '2024-03-02T10:15:00Z', url: 'https://example.org/news/2024/03/story?id=7' });
      expect(res.status).toBe(201);
      expect(await (await getArticle(service.url, 'a'.repeat(200))).json()).toMatchObject({ url: 'https://example.org/news/2024/03/story?id=7' });
      expect((await fetch(`${service.url}/articles/${'a'.repeat(200)}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    });

    it('answers 413 for a body over the limit', async () => {
      const res = await post(service.url, { ...valid, text: 'word '.repeat(5000), paragraphs: undefined });
      expect(res.status).toBe(413);
      expect(await res.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    });

    it('answers 415 for a body that is not JSON', async () => {
      const res = await post(service.url, 'id=x&title=y', { ...auth, 'content-type': 'application/x-www-form-urlencoded' });
      expect(res.status).toBe(415);
      expect(await res.json()).toMatchObject({ error: { code: 'unsupported_media_type', field: 'content-type' } });
      const none = await fetch(`${service.url}/articles`, { method: 'POST', headers: auth, body: JSON.stringify(valid) });
      expect(none.status).toBe(415);
    });

    it('answers 400 for malformed JSON', async () => {
      const res = await post(service.url, '{"id": "x", ');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'invalid_request', field: 'body' } });
    });

    it('answers 404 for deleting an unknown id and 400 for a bad one', async () => {
      const res = await fetch(`${service.url}/articles/no-such-article`, { method: 'DELETE', headers: auth });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'not_found', field: 'id' } });
      const bad = await fetch(`${service.url}/articles/${'b'.repeat(201)}`, { method: 'DELETE', headers: auth });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { code: 'invalid_request', field: 'id' } });
    });
  });
}
