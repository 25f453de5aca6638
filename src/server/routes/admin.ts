import { type RequestHandler, Router } from 'express';
import type { Quarry } from '../../core/quarry.ts';

export function adminRoutes(quarry: Quarry, writeAuth: RequestHandler): Router {
  const router = Router();
  router.post('/admin/rebuild', writeAuth, async (_req, res) => {
    res.status(202).json(await quarry.startRebuild());
  });
  router.get('/admin/rebuild', writeAuth, (_req, res) => {
    res.json(quarry.rebuild);
  });
  return router;
}
