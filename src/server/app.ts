import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import type { Config } from '../config/config.ts';
import type { Quarry } from '../core/quarry.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { requireReadKey, requireWriteKey } from './auth.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { adminRoutes } from './routes/admin.ts';
import { articleRoutes } from './routes/articles.ts';
import { searchRoutes } from './routes/search.ts';
import { statusRoutes } from './routes/status.ts';

export interface AppDeps {
  quarry: Quarry;
  config: Config;
  logger?: Logger;
}

const publicDir = fileURLToPath(new URL('../web/public/', import.meta.url));

/** Builds the Express app from its dependencies; no globals, so tests can start as many as they like. */
export function createApp(deps: AppDeps): Express {
  const { quarry, config } = deps;
  const logger = deps.logger ?? silentLogger;
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(express.json({ limit: config.bodyLimit, strict: true }));

  const auth = { write: requireWriteKey(config.apiKey), read: requireReadKey(config.readKey, config.apiKey) };
  app.get('/', (_req, res) => res.sendFile(`${publicDir}index.html`));
  app.use('/static', express.static(publicDir, { index: false, maxAge: '1h' }));
  app.use(statusRoutes(quarry, auth.read));
  app.use('/search', auth.read);
  app.use(searchRoutes(quarry));
  app.use(articleRoutes(quarry, config, auth, { articleHtml: `${publicDir}article.html` }));
  app.use(adminRoutes(quarry, auth.write));
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
