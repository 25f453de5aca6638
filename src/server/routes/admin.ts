import { join } from 'node:path';
import { type RequestHandler, Router } from 'express';
import type { Config } from '../../config/config.ts';
import type { Quarry } from '../../core/quarry.ts';
import { compose } from '../compose.ts';
import { jsonBody } from '../content-type.ts';
import { parseOrThrow } from '../errors.ts';
import { SnapshotRequestSchema } from '../ops-schemas.ts';

export function adminRoutes(quarry: Quarry, config: Config, writeAuth: RequestHandler): Router {
  const router = Router();
  router.post('/admin/rebuild', writeAuth, async (_req, res) => {
    res.status(202).json(await quarry.startRebuild());
  });
  router.get('/admin/rebuild', writeAuth, (_req, res) => {
    res.json(quarry.rebuild);
  });
  // A body is optional (`curl -X POST` takes a snapshot with a default name); one that is sent must be JSON.
  const json = compose(...jsonBody(config.bodyLimit));
  const optionalJson: RequestHandler = (req, res, next) =>
    (req.get('content-length') === undefined && req.get('transfer-encoding') === undefined) || req.get('content-length') === '0'
      ? next()
      : json(req, res, next);
  router.post('/admin/snapshot', writeAuth, optionalJson, async (req, res) => {
    const { name } = parseOrThrow(SnapshotRequestSchema, req.body ?? {}, 'body');
    // Only a name, under the configured folder: a key holder cannot make the server write anywhere else.
    const dir = join(config.snapshotsDir, name ?? `snapshot-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    res.status(201).json(await quarry.snapshot(dir));
  });
  return router;
}
