// The HTTP API over the PostgreSQL backend on the test embedder: two Quarry services (each its own pool and
// its own idea of the current generation, as two processes have) sharing one database through the API, the
// news search surface, /stats naming the backend, and the database stopped and restarted under a running
// service: 503 + Retry-After and /health saying so, then answers again without restarting Quarry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrimary } from '../../scripts/postgres-lib.mjs';
import { postgresSkipReason, startTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { FIXTURES_DIR, SEEDS_DIR, type Service, startHashedService, testConfig } from '../helpers/service.ts';

const unavailable = await postgresSkipReason('pg-http.test.ts');
const API_KEY = 'pg-http-test-key-0123456789abcdef';
const auth = { authorization: `Bearer ${API_KEY}` };

const news = readFileSync(join(FIXTURES_DIR, 'news.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l) as { id: string; title: string; source?: string });

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text === '' ? null : JSON.parse(text);
}

describe.skipIf(unavailable !== null)('HTTP API on the PostgreSQL backend (test embedder)', () => {
  let pgs: TestPostgres;
  let a: Service;
  let b: Service;

  beforeAll(async () => {
    pgs = await startTestPostgres();
    const databaseUrl = await pgs.newDatabase();
    // Two services, one database: A builds the index from the seeds folder, B finds it there.
    a = await startHashedService({
      seedsDir: SEEDS_DIR,
      config: testConfig({ seedsDir: SEEDS_DIR, databaseUrl, searchRate: 0, writeRate: 0, apiKey: API_KEY }),
    });
    b = await startHashedService({
      seedsDir: SEEDS_DIR,
      config: testConfig({ seedsDir: SEEDS_DIR, databaseUrl, searchRate: 0, writeRate: 0, apiKey: API_KEY }),
    });
  });
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    await pgs?.stop();
  });

  const search = (s: Service, q: string, extra: Record<string, unknown> = {}) =>
    fetch(`${s.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ q, ...extra }) });

  it('/stats names the backend, server and pgvector versions, never the password', async () => {
    const res = await fetch(`${a.url}/stats`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.backend).toBe('postgres');
    expect(body.database.server).toMatch(/^15\./);
    expect(body.database.pgvector).toMatch(/^0\.8\./);
    expect(JSON.stringify(body)).not.toContain(new URL(pgs.cluster.url).password);
    expect(body.articles).toBeGreaterThan(0);
  });

  it('a snapshot is refused on this backend, pointing to the database tools', async () => {
    const res = await fetch(`${a.url}/admin/snapshot`, { method: 'POST', headers: auth });
    expect(res.status).toBe(409);
    expect((await json(res)).error.message).toMatch(/pg_dump/);
  });

  it('an article written through A is found by a search on B; deleted through B, it is gone from A', async () => {
    const write = await fetch(`${a.url}/articles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ articles: news }),
    });
    expect(write.status, JSON.stringify(await write.clone().json())).toBe(201);
    const target = news[0]!;
    const found = await json(await search(b, target.title, { mode: 'hybrid', explain: true }));
    expect(found.results[0].article.id).toBe(target.id);
    expect(found.explain.retrieval.dense).toBe('hnsw');
    expect((await fetch(`${b.url}/articles/${target.id}`)).status).toBe(200);

    // A filter inside retrieval, through B.
    const src = target.source!;
    const filtered = await json(await search(b, 'industrial cooperation', { source: [src], explain: true }));
    expect(filtered.results.length).toBeGreaterThan(0);
    expect(filtered.results.every((r: { article: { source: string } }) => r.article.source.toLowerCase() === src.toLowerCase())).toBe(true);
    expect(filtered.explain.retrieval.filtered).toBe(true);

    expect((await fetch(`${b.url}/articles/${target.id}`, { method: 'DELETE', headers: auth })).status).toBe(204);
    expect((await fetch(`${a.url}/articles/${target.id}`)).status).toBe(404);
    const after = await json(await search(a, target.title, { mode: 'hybrid' }));
    expect(after.results.map((r: { article: { id: string } }) => r.article.id)).not.toContain(target.id);
  });

  it('evidence highlights are the stemmed query terms, as offsets into the evidence text', async () => {
    const body = await json(await search(a, 'industrial parks cooperating', { mode: 'lexical' }));
    expect(body.results.length).toBeGreaterThan(0);
    const marked: string[] = body.results.flatMap((r: { evidence: Array<{ text: string; highlights: { terms: Array<{ start: number; end: number }> } }> }) =>
      r.evidence.flatMap((e) => e.highlights.terms.map((t) => e.text.slice(t.start, t.end).toLowerCase())),
    );
    expect(marked.length).toBeGreaterThan(0);
    // "parks" matches "park", "cooperating" matches "cooperation" (the english stemmer), nothing else is marked.
    for (const m of marked) expect(m).toMatch(/^(industrial|park|parks|cooperat\w*)$/);
  });

  it('database stopped: 503 + Retry-After and /health says so; restarted: answers again without restarting Quarry', async () => {
    expect(await pgs.cluster.stop()).toBe(true);
    const down = await search(a, 'park');
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toMatch(/^\d+$/);
    const err = await json(down);
    expect(err.error.code).toBe('unavailable');
    expect(err.error.message).toMatch(/database/);
    const ready = await fetch(`${a.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect((await json(ready)).checks.database).not.toBe('ok');
    const health = await json(await fetch(`${a.url}/health`));
    expect(health.status).toBe('unavailable');
    const write = await fetch(`${a.url}/articles`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(news[1]) });
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toMatch(/^\d+$/);

    // The same cluster folder starts again on the same port; the pools reconnect on their own.
    const restarted = await startPrimary({ dir: pgs.cluster.dir, log: () => {} });
    expect(restarted.port).toBe(pgs.cluster.port);
    let status = 0;
    for (let i = 0; i < 200 && status !== 200; i++) {
      status = (await search(a, 'park')).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
    expect((await search(b, 'park')).status).toBe(200);
    expect((await fetch(`${a.url}/health/ready`)).status).toBe(200);
  });
});
