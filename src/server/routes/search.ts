import { Router } from 'express';
import type { Quarry } from '../../core/quarry.ts';
import { SearchRequestSchema } from '../../search/schema.ts';
import { parseOrThrow } from '../errors.ts';
import { requireJsonBody } from '../content-type.ts';

export function searchRoutes(quarry: Quarry): Router {
  const router = Router();
  router.get('/search', async (req, res) => {
    res.json(await quarry.search(parseOrThrow(SearchRequestSchema, req.query, 'query')));
  });
  router.post('/search', requireJsonBody, async (req, res) => {
    res.json(await quarry.search(parseOrThrow(SearchRequestSchema, req.body, 'body')));
  });
  return router;
}
