import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Config } from '../config/config.ts';
import { ArticleInputSchema } from '../corpus/article.ts';
import { MAX_DEPTH, SearchRequestSchema, SearchResponseSchema, SimilarRequestSchema, SimilarResponseSchema } from '../search/schema.ts';
import { LiveResponseSchema, ReadyResponseSchema, SnapshotReportSchema, SnapshotRequestSchema } from './ops-schemas.ts';
import { ArticleIdParamSchema, ArticleResponseSchema, articleBatchSchema, ErrorResponseSchema, WriteResponseSchema } from './schemas.ts';
import { HealthResponseSchema, IndexStatsSchema, RebuildStatusSchema } from './status-schemas.ts';

/**
 * Named components. zod's own `.meta({ id })` rather than the library's `.openapi()`, which needs zod
 * patched before any schema is created; done once here, as `.meta` records the id in zod's registry.
 */
const named = {
  error: ErrorResponseSchema.meta({ id: 'Error' }),
  search: SearchRequestSchema.meta({ id: 'SearchRequest' }),
  searchResponse: SearchResponseSchema.meta({ id: 'SearchResponse' }),
  articleInput: ArticleInputSchema.meta({ id: 'ArticleInput' }),
  article: ArticleResponseSchema.meta({ id: 'Article' }),
  writeResponse: WriteResponseSchema.meta({ id: 'WriteResponse' }),
  stats: IndexStatsSchema.meta({ id: 'IndexStats' }),
  rebuild: RebuildStatusSchema.meta({ id: 'RebuildStatus' }),
  health: HealthResponseSchema.meta({ id: 'Health' }),
  similarResponse: SimilarResponseSchema.meta({ id: 'SimilarResponse' }),
  snapshotRequest: SnapshotRequestSchema.meta({ id: 'SnapshotRequest' }),
  snapshot: SnapshotReportSchema.meta({ id: 'SnapshotReport' }),
  live: LiveResponseSchema.meta({ id: 'Live' }),
  ready: ReadyResponseSchema.meta({ id: 'Ready' }),
};

/**
 * The OpenAPI 3.1 description of every route, generated from the zod schemas the routes validate with,
 * so the document cannot drift from the code. tests/openapi.test.ts checks that every route Express
 * registers appears here.
 */
export function buildOpenApiDocument(config: Config): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  const registry = new OpenAPIRegistry();
  const bearer = registry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'QUARRY_API_KEY for writes and admin; QUARRY_READ_KEY (or the write key) for reads, when a read key is configured.',
  });
  const writeAuth = [{ [bearer.name]: [] }];
  const readAuth = [{}, { [bearer.name]: [] }];

  const {
    error,
    search,
    searchResponse,
    articleInput,
    article,
    writeResponse,
    stats,
    rebuild,
    health,
    similarResponse,
    snapshotRequest,
    snapshot,
    live,
    ready,
  } = named;

  const json = (schema: z.ZodType, description: string): ResponseConfig => ({ description, content: { 'application/json': { schema } } });
  const text = (type: string, description: string): ResponseConfig => ({ description, content: { [type]: { schema: z.string() } } });
  const errors = (...statuses: number[]): Record<number, ResponseConfig> => {
    const why: Record<number, string> = {
      400: 'Invalid request; `error.field` names the offending field',
      401: 'Missing or wrong API key',
      403: 'Write endpoints are disabled (no QUARRY_API_KEY configured)',
      404: 'No such article',
      409: 'A rebuild is already running (or the snapshot folder exists)',
      413: 'Request body larger than the configured limit',
      415: 'Body is not application/json',
      429: 'Rate limited (a token bucket per address, or per API key): see Retry-After and the RateLimit / RateLimit-Policy headers',
      503: 'Overloaded (queue full, or waited past its deadline), timed out, or the index is unavailable; see Retry-After',
    };
    return Object.fromEntries(statuses.map((s) => [s, json(error, why[s] ?? 'Error')]));
  };
  const route = (r: RouteConfig) =>
    registry.registerPath({ ...r, responses: { ...r.responses, 500: json(error, 'Internal error; the log has details under the X-Request-Id') } });

  route({
    method: 'get',
    path: '/search',
    tags: ['search'],
    security: readAuth,
    summary: 'Search articles (query string)',
    description: [
      'Embeds the query, takes k-NN and BM25 candidates, fuses them and returns articles with the paragraphs that support them. Shareable as a URL.',
      '',
      '**Filters** (`source`, `tag`: repeat the parameter for several values, any of them matches, case-insensitive; `from`, `to`: inclusive calendar dates YYYY-MM-DD compared with the date as written) apply inside retrieval in every mode: the answer is the best k among the matching articles, never what is left of an unfiltered top list. `explain=true` says how (`explain.retrieval`).',
      '',
      `**The matching set**: the stories (articles, or duplicate groups with \`collapse\`, the default) that own at least one of the candidate paragraphs of either retriever — max(candidates, 4·k) per retriever, within the filters — and score at least \`minScore\`. \`total\` is its size (at most ${MAX_DEPTH}), \`facets\` count over it, \`sort=date\` orders it newest first, and pages are slices of it: the pool does not depend on \`offset\`, so page 2 repeats nothing of page 1 and skips nothing. \`offset + k\` may not exceed ${MAX_DEPTH}; to page deeper than the pool reaches, raise \`candidates\`.`,
      '',
      '**Recency** (`recency=30d`) multiplies each score by 0.5^(age/half-life), age in days from the newest article date in the index (or `recencyDate`); minScore applies before it, to the relevance score.',
    ].join('\n'),
    request: { query: SearchRequestSchema },
    responses: { 200: json(searchResponse, 'Articles, best first, each with its evidence paragraphs'), ...errors(400, 401, 429, 503) },
  });
  route({
    method: 'post',
    path: '/search',
    tags: ['search'],
    security: readAuth,
    summary: 'Search articles (JSON body)',
    request: { body: { required: true, content: { 'application/json': { schema: search } } } },
    responses: { 200: json(searchResponse, 'Articles, best first, each with its evidence paragraphs'), ...errors(400, 401, 415, 429, 503) },
  });
  route({
    method: 'post',
    path: '/articles',
    tags: ['articles'],
    security: writeAuth,
    summary: 'Add or replace articles',
    description: `One article, or \`{ "articles": [...] }\` with up to ${config.maxBatchArticles}. An existing id is replaced. Answers after the write is committed.`,
    request: { body: { required: true, content: { 'application/json': { schema: z.union([articleInput, articleBatchSchema(config.maxBatchArticles)]) } } } },
    responses: { 201: json(writeResponse, 'Stored: chunk count per article'), ...errors(400, 401, 403, 413, 415, 429, 503) },
  });
  route({
    method: 'get',
    path: '/articles/{id}',
    tags: ['articles'],
    security: readAuth,
    summary: 'One article with all its paragraphs',
    description: 'JSON by default; a browser that asks for text/html gets the readable article page.',
    request: { params: ArticleIdParamSchema },
    responses: {
      200: { description: 'The article', content: { 'application/json': { schema: article }, 'text/html': { schema: z.string() } } },
      ...errors(400, 401, 404),
    },
  });
  route({
    method: 'get',
    path: '/articles/{id}/similar',
    tags: ['articles'],
    security: readAuth,
    summary: 'Articles like this one',
    description:
      "The article's stored paragraph vectors (nothing re-embedded; their normalised mean is the query) searched like a semantic query, with the same filters, paging and collapsing as /search; the article itself and its duplicates are excluded.",
    request: { params: ArticleIdParamSchema, query: SimilarRequestSchema },
    responses: { 200: json(similarResponse, 'The closest articles, best first, with their closest paragraphs'), ...errors(400, 401, 404) },
  });
  route({
    method: 'delete',
    path: '/articles/{id}',
    tags: ['articles'],
    security: writeAuth,
    summary: 'Delete an article and its paragraphs',
    request: { params: ArticleIdParamSchema },
    responses: { 204: { description: 'Deleted' }, ...errors(400, 401, 403, 404, 429, 503) },
  });
  route({
    method: 'post',
    path: '/admin/rebuild',
    tags: ['admin'],
    security: writeAuth,
    summary: 'Start a background rebuild (re-chunk and re-embed every stored article)',
    description: 'Searches keep using the current index until the new one is swapped in; writes made meanwhile are carried over.',
    responses: { 202: json(rebuild, 'Rebuild started'), ...errors(401, 403, 409) },
  });
  route({
    method: 'get',
    path: '/admin/rebuild',
    tags: ['admin'],
    security: writeAuth,
    summary: 'Progress of the last rebuild',
    responses: { 200: json(rebuild, 'Rebuild status'), ...errors(401, 403) },
  });
  route({
    method: 'post',
    path: '/admin/snapshot',
    tags: ['admin'],
    security: writeAuth,
    summary: 'Write a consistent snapshot of the index into QUARRY_SNAPSHOTS_DIR',
    description:
      'Searches and writes go on while it is taken; every write acknowledged before the request is in it. Restore it with `quarry restore DIR` (the server must be stopped). The body is optional.',
    request: { body: { required: false, content: { 'application/json': { schema: snapshotRequest } } } },
    responses: { 201: json(snapshot, 'The snapshot written: its folder, counts, files and checksums'), ...errors(400, 401, 403, 409, 415, 429, 503) },
  });
  route({
    method: 'get',
    path: '/health/live',
    tags: ['operations'],
    summary: 'Liveness probe: the process answers (no dependency is checked)',
    responses: { 200: json(live, 'Alive') },
  });
  route({
    method: 'get',
    path: '/health/ready',
    tags: ['operations'],
    summary: 'Readiness probe: model loaded, index open, database reachable, not shutting down',
    description:
      'Cheap (no model call), for a load balancer or Kubernetes readinessProbe. 503 with the failing check while starting up, shutting down, or when the index cannot be used.',
    responses: { 200: json(ready, 'Ready'), 503: json(ready, 'Not ready, with the reason per check') },
  });
  route({
    method: 'get',
    path: '/health',
    tags: ['operations'],
    summary: 'Deep health check: the index is open and the model embeds a probe sentence',
    responses: { 200: json(health, 'Healthy'), 503: json(health, 'Unhealthy, with the reason') },
  });
  route({
    method: 'get',
    path: '/stats',
    tags: ['operations'],
    security: readAuth,
    summary: 'Index statistics: counts, model, HNSW parameters, disk use',
    responses: { 200: json(stats, 'Index statistics'), ...errors(401) },
  });
  route({
    method: 'get',
    path: '/metrics',
    tags: ['operations'],
    security: readAuth,
    summary: 'Prometheus metrics',
    description: 'Request counts and latency by route and status, search latency by stage, index size, write queue depth, process metrics.',
    responses: { 200: text('text/plain', 'Prometheus text exposition format'), ...errors(401) },
  });
  route({
    method: 'get',
    path: '/openapi.json',
    tags: ['documentation'],
    summary: 'This document',
    responses: { 200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: z.object({ openapi: z.string() }).passthrough() } } } },
  });
  route({
    method: 'get',
    path: '/docs',
    tags: ['documentation'],
    summary: 'Readable API documentation (Swagger UI, served locally)',
    responses: { 200: text('text/html', 'HTML page') },
  });
  route({
    method: 'get',
    path: '/',
    tags: ['pages'],
    summary: 'The search page (`/?q=…&mode=…&k=…` runs a search on load)',
    responses: { 200: text('text/html', 'HTML page') },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Quarry',
      version: '0.1.0',
      description:
        'Self-hosted semantic search over articles: paragraphs embedded on this machine, HNSW k-NN + BM25, results grouped by article with the paragraphs that prove them.\n\n' +
        'Every error is JSON: `{ "error": { "code", "message", "field"? } }`. Every response carries `X-Request-Id` (the one sent, sanitised, or a new one).',
    },
    tags: [{ name: 'search' }, { name: 'articles' }, { name: 'admin' }, { name: 'operations' }, { name: 'documentation' }, { name: 'pages' }],
  });
}
