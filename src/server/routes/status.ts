import { type RequestHandler, Router } from 'express';
import type { Quarry } from '../../core/quarry.ts';

export function statusRoutes(quarry: Quarry, readAuth: RequestHandler): Router {
  const router = Router();
  router.get('/health', async (_req, res) => {
    const h = await quarry.health();
    res
      .status(h.ok ? 200 : 503)
      .json({ status: h.ok ? 'ok' : 'unavailable', modelMs: Math.round(h.modelMs * 100) / 100, ...(h.error ? { error: h.error } : {}) });
  });
  router.get('/stats', readAuth, async (_req, res) => {
    res.json(await quarry.stats());
  });
  return router;
}
