import { rmSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SearchResponseSchema } from '../../src/search/schema.ts';
import { createApp } from '../../src/server/app.ts';
import { ErrorResponseSchema } from '../../src/server/schemas.ts';
import { HealthResponseSchema, IndexStatsSchema, RebuildStatusSchema } from '../../src/server/status-schemas.ts';
import { type Service, seedsWithDistractors, startHashedService, testConfig } from '../helpers/service.ts';

const API_KEY = 'openapi-test-key-0123456789';
let service: Service;
let seeds: string;
let doc: { openapi: string; paths: Record<string, Record<string, unknown>> };

beforeAll(async () => {
  seeds = seedsWithDistractors();
  service = await startHashedService({ seedsDir: seeds, config: testConfig({ seedsDir: seeds, apiKey: API_KEY }) });
  const res = await fetch(`${service.url}/openapi.json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
});

afterAll(async () => {
  await service?.dispose();
  if (seeds) rmSync(seeds, { recursive: true, force: true });
});

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every (method, path) the Express app registers, found by walking its router and nested routers. */
function registeredRoutes(app: Express): Array<{ method: string; path: string }> {
  const out: Array<{ method: string; path: string }> = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths) for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.push({ method, path });
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

/** Express "/articles/:id" is OpenAPI "/articles/{id}". */
const toOpenApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('OpenAPI document at /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document whose $refs all resolve', async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  it('describes every route the app registers, and nothing it does not', () => {
    const app = createApp({ quarry: service.quarry, config: service.config });
    const routes = registeredRoutes(app);
    // The walk must find the routes at all, or the comparison below would pass vacuously.
    expect(routes.length).toBeGreaterThanOrEqual(13);
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    const registered = new Set(routes.map((r) => `${r.method.toUpperCase()} ${toOpenApiPath(r.path)}`));
    expect([...registered].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !registered.has(r))).toEqual([]);
    for (const r of [
      'GET /search',
      'POST /search',
      'POST /articles',
      'GET /articles/{id}',
      'DELETE /articles/{id}',
      'POST /admin/rebuild',
      'GET /admin/rebuild',
      'GET /health',
      'GET /stats',
      'GET /metrics',
      'GET /openapi.json',
      'GET /docs',
    ]) {
      expect(registered).toContain(r);
    }
  });

  it('the route walk sees a route added to the app (so an undocumented route would fail the check above)', () => {
    const app = createApp({ quarry: service.quarry, config: service.config });
    const before = registeredRoutes(app).length;
    app.get('/undocumented/:thing', (_req, res) => res.end());
    const after = registeredRoutes(app);
    expect(after).toHaveLength(before + 1);
    expect(after).toContainEqual({ method: 'get', path: '/undocumented/:thing' });
    expect(Object.keys(doc.paths)).not.toContain('/undocumented/{thing}');
  });

  it('generates request and response schemas from the zod schemas the routes use', () => {
    const components = (doc as unknown as { components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> } }).components
      .schemas;
    expect(Object.keys(components.SearchRequest!.properties!)).toEqual(expect.arrayContaining(['q', 'k', 'mode', 'explain', 'minScore']));
    expect(components.SearchRequest!.required).toEqual(['q']);
    expect(components.ArticleInput!.properties).toHaveProperty('paragraphs');
    expect(components.Error!.properties).toHaveProperty('error');
    const getSearch = doc.paths['/search']!.get as { parameters: Array<{ name: string; in: string }> };
    expect(getSearch.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['query:q', 'query:k', 'query:mode']));
  });
});

describe('live responses match the documented schemas', () => {
  it('search, stats, health, rebuild status and errors', async () => {
    const search = await fetch(`${service.url}/search?q=${encodeURIComponent('China-Belarus industrial cooperation')}&k=3&explain=true`);
    expect(search.status).toBe(200);
    SearchResponseSchema.strict().parse(await search.json());

    IndexStatsSchema.parse(await (await fetch(`${service.url}/stats`)).json());
    HealthResponseSchema.parse(await (await fetch(`${service.url}/health`)).json());
    const rebuild = await fetch(`${service.url}/admin/rebuild`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(rebuild.status).toBe(200);
    RebuildStatusSchema.parse(await rebuild.json());

    const bad = await fetch(`${service.url}/search?q=x&k=abc`);
    expect(bad.status).toBe(400);
    const body = ErrorResponseSchema.parse(await bad.json());
    expect(body.error.field).toBe('k');
  });
});

describe('docs page at /docs', () => {
  it('serves Swagger UI and its assets from this server, pointed at /openapi.json', async () => {
    const page = await fetch(`${service.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ['/docs/assets/swagger-ui-bundle.js', '/docs/assets/swagger-ui.css']) {
      const res = await fetch(`${service.url}${asset}`);
      expect(res.status, asset).toBe(200);
      expect((await res.arrayBuffer()).byteLength, asset).toBeGreaterThan(10_000);
    }
    const init = await (await fetch(`${service.url}/static/docs.js`)).text();
    expect(init).toContain("url: '/openapi.json'");
  });
});
