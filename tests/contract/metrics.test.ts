import { rmSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/app.ts';
import { listen, type RunningServer } from '../../src/server/listen.ts';
import { createMetrics } from '../../src/server/metrics.ts';
import { type Service, seedsWithDistractors, startHashedService } from '../helpers/service.ts';

let service: Service;
let seeds: string;
let second: RunningServer | undefined;

beforeAll(async () => {
  seeds = seedsWithDistractors();
  service = await startHashedService({ seedsDir: seeds });
});

afterAll(async () => {
  await second?.close();
  await service?.dispose();
  if (seeds) rmSync(seeds, { recursive: true, force: true });
});

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
}

/** The value of one sample, `name{labels}` with the labels in any order; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

const q = (s: string) => encodeURIComponent(s);

describe('/metrics (Prometheus text)', () => {
  it('counts and times a request answered before the middleware (a front-door refusal), so the two agree', async () => {
    const metrics = createMetrics(service.quarry);
    metrics.countAnswered('/search', 'GET', 503, 0.0004);
    metrics.countAnswered('/search', 'GET', 503, 0.002);
    const text = await metrics.registry.metrics();
    const labels = { route: '/search', method: 'GET', status: '503' };
    expect(sample(text, 'quarry_http_requests_total', labels)).toBe(2);
    expect(sample(text, 'quarry_http_request_duration_seconds_count', labels)).toBe(2);
    expect(sample(text, 'quarry_http_request_duration_seconds_bucket', { ...labels, le: '0.001' })).toBe(1);
    expect(sample(text, 'quarry_http_request_duration_seconds_sum', labels)).toBeCloseTo(0.0024, 6);
  });

  it('counts requests by route pattern and status, never by raw URL', async () => {
    const secretId = 'no-such-article-7f3a';
    expect((await fetch(`${service.url}/articles/${secretId}`, { headers: { accept: 'application/json' } })).status).toBe(404);
    expect((await fetch(`${service.url}/articles/${secretId}`, { headers: { accept: 'application/json' } })).status).toBe(404);
    expect((await fetch(`${service.url}/search?q=${q('belarus park')}&k=2`)).status).toBe(200);
    expect((await fetch(`${service.url}/search?q=x&k=abc`)).status).toBe(400);
    expect((await fetch(`${service.url}/no/such/page-91c2`)).status).toBe(404);
    expect((await fetch(`${service.url}/static/style.css`)).status).toBe(200);

    const text = await scrape(service.url);
    expect(sample(text, 'quarry_http_requests_total', { route: '/articles/:id', method: 'GET', status: '404' })).toBe(2);
    expect(sample(text, 'quarry_http_requests_total', { route: '/search', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'quarry_http_requests_total', { route: '/search', method: 'GET', status: '400' })).toBe(1);
    expect(sample(text, 'quarry_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);
    expect(sample(text, 'quarry_http_requests_total', { route: '/static/*', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'quarry_http_request_duration_seconds_count', { route: '/search', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'quarry_http_request_duration_seconds_bucket', { route: '/search', method: 'GET', status: '200', le: '+Inf' })).toBe(1);
    // Raw URLs, ids and query text never become label values.
    expect(text).not.toContain(secretId);
    expect(text).not.toContain('page-91c2');
    expect(text).not.toContain('belarus');
  });

  it('times every search by stage, without explain; skipped stages are not observed', async () => {
    const before = await scrape(service.url);
    const count = (t: string, stage: string, mode: string) => sample(t, 'quarry_search_stage_duration_seconds_count', { stage, mode }) ?? 0;

    expect((await fetch(`${service.url}/search?q=${q('industrial park')}&mode=hybrid`)).status).toBe(200);
    expect((await fetch(`${service.url}/search?q=${q('industrial park')}&mode=lexical`)).status).toBe(200);
    expect((await fetch(`${service.url}/search?q=${q('industrial park')}&mode=semantic`)).status).toBe(200);
    const after = await scrape(service.url);

    for (const stage of ['embed', 'knn', 'lexical', 'fuse', 'group'])
      expect(count(after, stage, 'hybrid') - count(before, stage, 'hybrid'), `hybrid ${stage}`).toBe(1);
    for (const stage of ['lexical', 'fuse', 'group']) expect(count(after, stage, 'lexical') - count(before, stage, 'lexical'), `lexical ${stage}`).toBe(1);
    for (const stage of ['embed', 'knn']) expect(count(after, stage, 'lexical'), `lexical ${stage}`).toBe(0);
    for (const stage of ['embed', 'knn', 'fuse', 'group'])
      expect(count(after, stage, 'semantic') - count(before, stage, 'semantic'), `semantic ${stage}`).toBe(1);
    expect(count(after, 'lexical', 'semantic')).toBe(0);
    // The embed stage of a semantic search is timed (observed with a duration), not merely counted.
    expect(sample(after, 'quarry_search_stage_duration_seconds_sum', { stage: 'embed', mode: 'semantic' })).toBeGreaterThan(0);
    expect(sample(after, 'quarry_search_duration_seconds_count', { mode: 'hybrid' })).toBeGreaterThanOrEqual(1);
  });

  it('reports index size and write queue depth from the index at scrape time', async () => {
    const stats = (await (await fetch(`${service.url}/stats`)).json()) as { articles: number; chunks: number; deleted: number; writeQueue: number };
    const text = await scrape(service.url);
    expect(sample(text, 'quarry_index_articles')).toBe(stats.articles);
    expect(sample(text, 'quarry_index_chunks')).toBe(stats.chunks);
    expect(sample(text, 'quarry_index_deleted_points')).toBe(stats.deleted);
    expect(sample(text, 'quarry_write_queue_depth')).toBe(0);
    expect(stats.articles).toBeGreaterThan(0);

    // A write changes the gauges on the next scrape.
    await service.quarry.upsertArticles(
      [
        {
          id: 'metrics-extra',
          title: 'Extra article for the metrics test',
          date: null,
          source: null,
          url: null,
          paragraphs: ['A paragraph about tea plantations in the hills of Sri Lanka and their harvest.'],
        },
      ],
      'test',
    );
    const later = await scrape(service.url);
    expect(sample(later, 'quarry_index_articles')).toBe(stats.articles + 1);
    expect(sample(later, 'quarry_index_chunks')).toBe(stats.chunks + 1);
  });

  it('includes process metrics', async () => {
    const text = await scrape(service.url);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });

  it('reports the live heap after a full garbage collection', async () => {
    // A full collection on demand, without starting the test process with --expose-gc.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    // The GC observer is told asynchronously: poll the scrape, bounded by count.
    let live = Number.NaN;
    for (let i = 0; i < 50 && !(live > 0); i++) {
      live = sample(await scrape(service.url), 'quarry_heap_live_bytes') ?? Number.NaN;
      if (!(live > 0)) await new Promise((r) => setImmediate(r));
    }
    expect(live).toBeGreaterThan(0);
    const text = await scrape(service.url);
    expect(live).toBeLessThanOrEqual(sample(text, 'nodejs_heap_size_total_bytes') ?? 0);
  });

  it('keeps one registry per app: a second app in the same process starts clean', async () => {
    second = await listen(createApp({ quarry: service.quarry, config: service.config }), 0, '127.0.0.1');
    expect((await fetch(`${second.url}/health`)).status).toBe(200);
    const text = await scrape(second.url);
    expect(sample(text, 'quarry_http_requests_total', { route: '/health', method: 'GET', status: '200' })).toBe(1);
    expect(sample(text, 'quarry_http_requests_total', { route: '/articles/:id', method: 'GET', status: '404' })).toBeUndefined();
    expect(sample(text, 'quarry_index_articles')).toBeGreaterThan(0);
  });
});
