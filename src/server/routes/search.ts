import { type RequestHandler, Router } from 'express';
import type { Quarry } from '../../core/quarry.ts';
import { SearchRequestSchema } from '../../search/schema.ts';
import { parseOrThrow } from '../errors.ts';

export function searchRoutes(quarry: Quarry, jsonBody: RequestHandler[]): Router {
  const router = Router();
  router.get('/search', async (req, res) => {
    res.json(await quarry.search(parseOrThrow(SearchRequestSchema, req.query, 'query')));
  });
  router.post('/search', ...jsonBody, async (req, res) => {
    res.json(await quarry.search(parseOrThrow(SearchRequestSchema, req.body, 'body')));
  });
  return router;
}
