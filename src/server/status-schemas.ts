import { z } from 'zod';
import type { IndexStats } from '../core/quarry.ts';
import type { RebuildStatus } from '../core/rebuild.ts';

/**
 * Response shapes of the status and admin routes, for the OpenAPI document. The core defines these as
 * TypeScript interfaces; annotating each schema with the interface makes `tsc` fail when the two
 * drift apart, and tests/openapi.test.ts parses live responses with them.
 */
export const IndexStatsSchema: z.ZodType<IndexStats> = z
  .object({
    backend: z.enum(['sqlite', 'postgres']).describe('the storage backend in use'),
    articles: z.number().int(),
    chunks: z.number().int(),
    deleted: z.number().int().describe('points marked deleted in the HNSW graph, waiting for compaction'),
    model: z.string(),
    dtype: z.string(),
    dims: z.number().int(),
    pooling: z.string(),
    chunker: z.string(),
    hnsw: z.object({ M: z.number().int(), efConstruction: z.number().int(), efSearch: z.number().int(), points: z.number().int() }).strict(),
    disk: z.object({ sqliteBytes: z.number().int(), hnswBytes: z.number().int(), totalBytes: z.number().int() }).strict(),
    built: z.string(),
    buildSeconds: z.number(),
    lastCheckpoint: z.string().nullable(),
    changesSinceCheckpoint: z.number().int(),
    writeQueue: z.number().int().describe('writes waiting in the write queue'),
    rebuild: z.enum(['idle', 'running', 'succeeded', 'failed']),
    dir: z.string(),
    database: z
      .object({ server: z.string(), pgvector: z.string(), generation: z.number().int(), readReplica: z.string().nullable() })
      .strict()
      .optional()
      .describe('PostgreSQL backend: server and pgvector versions, generation in use, read replica (no password)'),
  })
  .strict();

export const RebuildStatusSchema: z.ZodType<RebuildStatus> = z
  .object({
    state: z.enum(['idle', 'running', 'succeeded', 'failed']),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    articlesDone: z.number().int(),
    articlesTotal: z.number().int(),
    chunksDone: z.number().int(),
    error: z.string().nullable(),
    report: z.object({ articles: z.number().int(), chunks: z.number().int(), seconds: z.number(), chunksPerSecond: z.number() }).strict().nullable(),
    catchUp: z
      .object({
        openRounds: z.number().int(),
        openArticles: z.number().int(),
        foregroundRounds: z.number().int(),
        heldRounds: z.number().int(),
        heldArticles: z.number().int(),
      })
      .strict()
      .nullable()
      .describe(
        'how writes made during the build were replayed into it: rounds while writes went on (at full priority once a round no longer halved the one before), then with writes held (the last)',
      ),
  })
  .strict();

export const HealthResponseSchema = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    modelMs: z.number().describe('time the model took to embed a probe sentence'),
    error: z.string().optional(),
  })
  .strict();
export type HealthResponse = z.infer<typeof HealthResponseSchema>;
