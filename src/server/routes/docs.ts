import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import express, { Router } from 'express';
import type { Config } from '../../config/config.ts';
import { buildOpenApiDocument } from '../openapi.ts';
import { sendPage } from '../pages.ts';

/** Swagger UI's static bundle from npm: the docs page works with no internet. */
const swaggerUiDir = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

export function docsRoutes(config: Config): Router {
  const router = Router();
  // Generated once per app: the document depends only on the schemas and the configured limits.
  const document = buildOpenApiDocument(config);
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.get('/docs', (_req, res) => sendPage(res, 'docs.html'));
  router.use('/docs/assets', express.static(swaggerUiDir, { index: false, maxAge: '1h' }));
  return router;
}
