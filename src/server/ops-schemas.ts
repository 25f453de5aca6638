import { z } from 'zod';
import type { SnapshotReport } from '../store/store.ts';

/** Request and response shapes of the operations routes (snapshots, probes), for validation and OpenAPI. */

export const SnapshotRequestSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be 1-100 letters, digits, dots, dashes or underscores, starting with a letter or digit')
      .optional()
      .describe('folder name under QUARRY_SNAPSHOTS_DIR (default: snapshot-<UTC time>)'),
  })
  .strict();

export const SnapshotReportSchema: z.ZodType<SnapshotReport> = z
  .object({
    dir: z.string().describe('the snapshot folder on the server'),
    createdAt: z.string(),
    articles: z.number().int(),
    chunks: z.number().int(),
    seq: z.number().int().describe('the change sequence number the copy is consistent at'),
    files: z.array(z.object({ name: z.string(), bytes: z.number().int(), sha256: z.string() }).strict()),
    bytes: z.number().int(),
    seconds: z.number(),
    writesHeldMs: z.number().describe('how long writes were held back to take it'),
    details: z.record(z.string(), z.union([z.string(), z.number(), z.null()])).describe('backend-specific facts (SQLite: the HNSW checkpoint copied)'),
  })
  .strict();

export const LiveResponseSchema = z.object({ status: z.literal('ok'), uptimeSeconds: z.number().int() }).strict();

export const ReadyResponseSchema = z
  .object({
    status: z.enum(['ready', 'unavailable']),
    checks: z.object({ model: z.string(), index: z.string(), database: z.string(), server: z.string() }).strict().describe('"ok", or why not'),
  })
  .strict();
