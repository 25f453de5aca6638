import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { Config } from '../../src/config/config.ts';
import type { Manifest } from '../../src/store/manifest.ts';
import { startTestPostgres, type TestPostgres } from './postgres.ts';

/*
 * The two storage backends, for the suites that run against both (tests/suites/*.ts). A suite asks its backend
 * for a new, empty index and, where the two differ by design, what to expect; everything else it checks the
 * same way through the API. The SQLite runs stay in their tier's folder; the PostgreSQL runs are in
 * tests/postgres/, skipped with the reason where PostgreSQL cannot be installed.
 */

export type BackendName = 'sqlite' | 'postgres';

/** Where a new index lives: as config overrides (for testConfig) and as QUARRY_* variables (for a child process). */
export interface IndexTarget {
  config: Record<string, unknown>;
  env: Record<string, string>;
}

export interface TestBackend {
  readonly name: BackendName;
  /** A new, empty index of its own: nothing to add for SQLite (each config gets a folder), a new database for PostgreSQL. */
  newIndex(): Promise<IndexTarget>;
  /**
   * Whether deleted and replaced chunks stay in the ANN graph as deleted points until a compaction or rebuild
   * (hnswlib under SQLite), rather than leaving the index with their rows (pgvector, in the same transaction).
   */
  readonly keepsDeletedPoints: boolean;
  /**
   * How the lexical side ranks: FTS5's BM25 (term rarity counts) or PostgreSQL's ts_rank_cd (no IDF: a chunk
   * repeating common query terms can outrank one holding the rare term too; issue 13 measures the gap).
   */
  readonly lexicalRanking: 'bm25' | 'ts_rank_cd';
  /** Whether the index has HNSW checkpoints (graph files written every few changes, replayed at start). */
  readonly checkpoints: boolean;
  /** An identifier of the generation in use (it changes when a rebuild is published). */
  generation(config: Config): Promise<string>;
  /** Generations a rebuild left half built: neither published nor discarded. */
  halfBuilt(config: Config): Promise<string[]>;
  /** The manifest of the generation in use, as the store recorded it. */
  manifest(config: Config): Promise<Manifest>;
}

export const sqliteBackend: TestBackend = {
  name: 'sqlite',
  newIndex: async () => ({ config: {}, env: {} }),
  keepsDeletedPoints: true,
  lexicalRanking: 'bm25',
  checkpoints: true,
  generation: async (config) => readFileSync(join(config.indexDir, 'CURRENT'), 'utf8').trim(),
  halfBuilt: async (config) => (existsSync(config.indexDir) ? readdirSync(config.indexDir).filter((n) => n.endsWith('.building')) : []),
  manifest: async (config) => {
    const current = readFileSync(join(config.indexDir, 'CURRENT'), 'utf8').trim();
    return JSON.parse(readFileSync(join(config.indexDir, current, 'manifest.json'), 'utf8')) as Manifest;
  },
};

async function query<R extends pg.QueryResultRow>(config: Config, sql: string): Promise<R[]> {
  if (!config.databaseUrl) throw new Error('a PostgreSQL suite ran with a config that names no database');
  const client = new pg.Client({ connectionString: config.databaseUrl });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * PostgreSQL: a cluster of the calling file's own, started in a beforeAll and stopped in an afterAll registered
 * where this is called (inside the describe that runs the suite), and a new database for each index.
 */
export function postgresBackend(): TestBackend {
  let pgs: TestPostgres | undefined;
  beforeAll(async () => {
    pgs = await startTestPostgres();
  });
  // After hooks run in reverse order: the suite's own (stopping its services) before this one.
  afterAll(async () => {
    await pgs?.stop();
  });
  return {
    name: 'postgres',
    async newIndex() {
      if (!pgs) throw new Error('postgresBackend(): the cluster is not started (call it inside the describe, before the suite)');
      const url = await pgs.newDatabase();
      return { config: { databaseUrl: url }, env: { QUARRY_DATABASE_URL: url } };
    },
    keepsDeletedPoints: false,
    lexicalRanking: 'ts_rank_cd',
    checkpoints: false,
    generation: async (config) => String((await query<{ id: number }>(config, 'SELECT current_generation AS id FROM quarry_state'))[0]?.id),
    halfBuilt: async (config) =>
      (await query<{ id: number }>(config, "SELECT id FROM quarry_generations WHERE state = 'building' ORDER BY id")).map((r) => `generation ${r.id}`),
    manifest: async (config) =>
      (await query<{ manifest: Manifest }>(config, 'SELECT g.manifest FROM quarry_state s JOIN quarry_generations g ON g.id = s.current_generation'))[0]!
        .manifest,
  };
}
