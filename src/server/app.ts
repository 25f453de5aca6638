import express, { type Express, type RequestHandler } from 'express';
import pino from 'pino';
import type { Config } from '../config/config.ts';
import type { Quarry } from '../core/quarry.ts';
import type { LivePressure } from '../util/live-pressure.ts';
import { requireReadKey, requireWriteKey } from './auth.ts';
import { compose } from './compose.ts';
import { jsonBody } from './content-type.ts';
import { corsPolicy } from './cors.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { Lifecycle } from './lifecycle.ts';
import { createMetrics } from './metrics.ts';
import { overloadCounter, searchAdmission, searchQueueLimits } from './overload.ts';
import { PUBLIC_DIR, sendPage } from './pages.ts';
import { rateLimits } from './rate-limit.ts';
import { requestLogger } from './request-log.ts';
import { adminRoutes } from './routes/admin.ts';
import { articleRoutes } from './routes/articles.ts';
import { docsRoutes } from './routes/docs.ts';
import { healthRoutes } from './routes/health.ts';
import { searchRoutes } from './routes/search.ts';
import { statusRoutes } from './routes/status.ts';

export interface AppDeps {
  quarry: Quarry;
  config: Config;
  /** Request and error logs; silent when left out. */
  logger?: pino.Logger;
  /** Shutdown state, set by whoever stops the server (cli/commands/serve.ts); a fresh one when left out. */
  lifecycle?: Lifecycle;
  /** Told when searches wait past their queue's target, so a live rebuild's embedding gives way (runtime.ts). */
  pressure?: LivePressure;
}

/** QUARRY_TRUST_PROXY as Express takes it. */
function trustProxy(setting: string): boolean | number | string {
  const v = setting.trim();
  if (v === 'true' || v === 'false') return v === 'true';
  return /^\d+$/.test(v) ? Number(v) : v;
}

/**
 * Pages may load scripts and styles from this server only, so even a markup-injection bug in the page
 * could not run a script. Inline styles stay allowed for Swagger UI; JSON responses ignore the header.
 */
const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  );
  next();
};

/** Builds the Express app from its dependencies; no globals, so tests can start as many as they like. */
export function createApp(deps: AppDeps): Express {
  const { quarry, config } = deps;
  const logger = deps.logger ?? pino({ level: 'silent' });
  const lifecycle = deps.lifecycle ?? new Lifecycle();
  const metrics = createMetrics(quarry);
  quarry.onSearch(metrics.observeSearch);

  const refused = overloadCounter(metrics.registry);
  quarry.onRefused((why) => refused('write', why));
  quarry.onSearchTimeout(() => refused('search', 'timeout'));
  const admission = searchAdmission(searchQueueLimits(config), {
    registry: metrics.registry,
    onRefuse: (why) => refused('search', why),
    loopLagTargetMs: config.searchLoopLagTargetMs,
    loopLagIntervalMs: config.searchLoopLagIntervalMs,
    logger,
    onFrontDoorRefusal: (method, seconds) => metrics.countAnswered('/search', method, 503, seconds),
    draining: () => lifecycle.draining,
    overflowBehindLagMs: config.searchOverflowBehindLagMs,
  });

  deps.pressure?.watch(() => admission.queue.pressed);

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', trustProxy(config.trustProxy));
  // Before everything, even the request log: under overload most searches are refused, and a refusal must cost
  // the main thread next to nothing (server/overload.ts).
  app.use(admission.frontDoor);
  // First, so every request, including one whose body fails to parse, gets an id, a log line and a count.
  app.use(requestLogger(logger, { logQueries: config.logQueries }));
  app.use(metrics.middleware);
  app.use(securityHeaders);
  // While shutting down, keep-alive clients are told to reconnect (to another instance, or the restarted one).
  app.use((req, res, next) => {
    lifecycle.track(res, req.socket);
    next();
  });
  // Before authentication: a browser's preflight carries no key.
  app.use(corsPolicy(config.corsOrigins));
  app.use(healthRoutes(quarry, lifecycle));

  // Rate limits run after authentication, so only a configured key earns a per-key bucket.
  const limits = rateLimits(config, metrics.registry, logger);
  const auth = { write: compose(requireWriteKey(config.apiKey), ...limits.write), read: requireReadKey(config.readKey, config.apiKey) };
  app.get('/', (_req, res) => sendPage(res, 'index.html'));
  app.use('/static', metrics.label('/static/*'), express.static(PUBLIC_DIR, { index: false, maxAge: '1h' }));
  app.use(docsRoutes(config));
  app.get('/metrics', auth.read, async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.use(statusRoutes(quarry, auth.read));
  app.use('/search', auth.read, ...limits.search, admission);
  app.use(searchRoutes(quarry, jsonBody(config.bodyLimit)));
  // /articles/:id answers HTML or JSON by Accept: caches (and the browser's back button) must key on it.
  app.use('/articles', (_req, res, next) => {
    res.vary('Accept');
    next();
  });
  app.use(articleRoutes(quarry, config, auth));
  app.use(adminRoutes(quarry, config, auth.write));
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
