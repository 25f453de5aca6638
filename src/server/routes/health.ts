import { Router } from 'express';
import type { Quarry } from '../../core/quarry.ts';
import type { Lifecycle } from '../lifecycle.ts';

/**
 * Probes in the Kubernetes sense, open without a key (probes carry none) and cheap (no model call):
 * - /health/live: the process answers; restart it if not.
 * - /health/ready: it can serve searches and writes now (model loaded, index open, database reachable, not
 *   shutting down); send it no traffic if not.
 * The deeper /health (the model embeds a probe sentence) is in status.ts.
 */
export function healthRoutes(quarry: Quarry, lifecycle: Lifecycle): Router {
  const router = Router();
  router.get('/health/live', (_req, res) => {
    res.json({ status: 'ok', uptimeSeconds: Math.round((Date.now() - lifecycle.startedAt) / 1000) });
  });
  router.get('/health/ready', async (_req, res) => {
    const r = await quarry.readiness();
    const checks = { ...r.checks, server: lifecycle.draining ? 'shutting down' : 'ok' };
    const ready = r.ready && !lifecycle.draining;
    if (!ready) res.setHeader('Retry-After', '5');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', checks });
  });
  return router;
}
