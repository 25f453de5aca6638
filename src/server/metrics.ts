import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Request, RequestHandler, Response } from 'express';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Quarry, SearchListener } from '../core/quarry.ts';

/** Route label for requests no route matched: never the raw URL, which would make label cardinality unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

export interface AppMetrics {
  registry: Registry;
  /** Counts and times every request by route pattern, method and status. */
  middleware: RequestHandler;
  /**
   * Counts and times a request answered before the middleware saw it (the front door's refusals: server/overload.ts),
   * so that the duration histogram's count matches quarry_http_requests_total.
   */
  countAnswered(route: string, method: string, status: number, seconds: number): void;
  /** Marks requests served by a middleware rather than a route (static files) with a fixed label. */
  label(route: string): RequestHandler;
  observeSearch: SearchListener;
}

const SEARCH_STAGES = ['embed', 'knn', 'lexical', 'fuse', 'group'] as const;

/**
 * One registry per app (no prom-client global), so several apps can live in one process, as in tests.
 * Index sizes are read from `quarry.stats()` at scrape time rather than kept up to date on every write.
 */
export function createMetrics(quarry: Quarry): AppMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const requests = new Counter({
    name: 'quarry_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['route', 'method', 'status'],
    registers,
  });
  const latency = new Histogram({
    name: 'quarry_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern, method and status',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const stages = new Histogram({
    name: 'quarry_search_stage_duration_seconds',
    help: 'Search latency by stage (embed the query, HNSW k-NN, BM25, fusion, grouping into articles) and mode',
    labelNames: ['stage', 'mode'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  });
  const searches = new Histogram({
    name: 'quarry_search_duration_seconds',
    help: 'Whole search latency inside the core (no HTTP), by mode',
    labelNames: ['mode'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });

  const stat = <K extends 'articles' | 'chunks' | 'deleted' | 'writeQueue'>(name: string, help: string, key: K) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set((await quarry.stats())[key]);
      },
    });
  stat('quarry_index_articles', 'Articles in the index', 'articles');
  stat('quarry_index_chunks', 'Paragraph chunks in the index', 'chunks');
  stat('quarry_index_deleted_points', 'Points marked deleted in the HNSW graph, waiting for compaction', 'deleted');
  stat('quarry_write_queue_depth', 'Writes (embedding + commit) waiting in the write queue', 'writeQueue');
  liveHeapGauge(registers);

  return {
    registry,
    middleware(req, res, next) {
      const end = latency.startTimer();
      // 'close' fires for finished and abandoned responses alike (the search page aborts a superseded
      // search); an abandoned one is counted with status "aborted" rather than lost.
      res.once('close', () => {
        const labels = { route: routeLabel(req, res), method: req.method, status: res.writableFinished ? String(res.statusCode) : 'aborted' };
        requests.inc(labels);
        end(labels);
      });
      next();
    },
    countAnswered(route, method, status, seconds) {
      const labels = { route, method, status: String(status) };
      requests.inc(labels);
      latency.observe(labels, seconds);
    },
    label(route) {
      return (_req, res, next) => {
        res.locals.metricsRoute = route;
        next();
      };
    },
    observeSearch({ mode, timings, tookMs }) {
      for (const stage of SEARCH_STAGES) {
        // Stages a mode skips are not observed: a lexical search has no embedding or k-NN to time.
        if ((mode === 'lexical' && (stage === 'embed' || stage === 'knn')) || (mode === 'semantic' && stage === 'lexical')) continue;
        stages.observe({ stage, mode }, timings[stage] / 1000);
      }
      searches.observe({ mode }, tookMs / 1000);
    },
  };
}

/**
 * V8 heap used just after the latest full (mark-compact) collection: the live set, what a leak grows. Heap used at
 * an arbitrary moment (nodejs_heap_size_used_bytes) also holds the garbage of the last seconds, and swung from 42 to
 * 178 MiB between 30-s samples of one soak (docs/history/soak.md): it hides a slow leak and can fake one. The observer
 * lives as long as the registry, like prom-client's own GC observer; it does not keep the process alive.
 */
function liveHeapGauge(registers: Registry[]): void {
  let live = Number.NaN;
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR))
      live = getHeapStatistics().used_heap_size;
  });
  observer.observe({ entryTypes: ['gc'] });
  new Gauge({
    name: 'quarry_heap_live_bytes',
    help: 'V8 heap used right after the latest full garbage collection (the live set; NaN before the first one)',
    registers,
    collect() {
      this.set(live);
    },
  });
}

/** The route pattern Express matched ("/articles/:id"), a label set by `label()`, or UNMATCHED_ROUTE. */
function routeLabel(req: Request, res: Response): string {
  const explicit = res.locals.metricsRoute as string | undefined;
  if (explicit) return explicit;
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : UNMATCHED_ROUTE;
}
