import type { Pool, PoolClient } from 'pg';
import { QuarryError } from '../../errors.ts';

/*
 * The fixed part of the schema, created and upgraded at start by versioned migrations recorded in
 * `quarry_migrations`. Several processes may start at once: each takes the same session advisory lock first,
 * so one migrates while the others wait and then find nothing left to do. The per-generation tables (articles,
 * chunks, folder files) are not migrations: a generation's tables are created by the build that fills it
 * (generation-schema.ts), with the model's dimensions and the HNSW parameters it was built with.
 */

/** pg_advisory_lock key of the migrations ("quarry-m" as a number; any constant shared by every process). */
export const MIGRATION_LOCK = 0x71756172_72792d6dn;

const MIGRATIONS: string[] = [
  // 1: the state row naming the current generation, the generations with their manifests (the model
  // fingerprint lives here), the change log a rebuild replays, and the duplicate-group id sequence.
  `
  CREATE EXTENSION IF NOT EXISTS vector;
  CREATE TABLE quarry_generations (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('building', 'current', 'retired')),
    manifest jsonb NOT NULL,
    articles bigint NOT NULL DEFAULT 0,    -- live counts, kept by every write in its transaction
    chunks bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
  );
  -- One row: the generation searches and writes use. A rebuild switches it in one transaction; writers
  -- read it FOR SHARE in theirs, so no write lands in a generation that is no longer current.
  CREATE TABLE quarry_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    current_generation integer REFERENCES quarry_generations(id)
  );
  INSERT INTO quarry_state DEFAULT VALUES;
  -- Articles written or deleted, per generation: a rebuild replays those after it began into the new one.
  CREATE TABLE quarry_changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    generation integer NOT NULL,
    article_id text NOT NULL
  );
  CREATE INDEX quarry_changes_by_generation ON quarry_changes (generation, seq);
  CREATE SEQUENCE quarry_duplicate_groups;
  `,
  // 2: where each build started reading the change log, so rows no build needs any more can be pruned.
  `
  ALTER TABLE quarry_generations ADD COLUMN from_seq bigint;
  `,
];

/** pg_advisory_xact_lock key ("quarry-c") taken by a build starting and by pruning the change log, so neither misses the other. */
export const CHANGES_LOCK = 0x71756172_72792d63n;

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Applies the migrations this database lacks, one transaction each, under the advisory lock. */
export async function migrate(pool: Pool): Promise<void> {
  const client: PoolClient = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await client.query('CREATE TABLE IF NOT EXISTS quarry_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM quarry_migrations');
      const version = rows[0]?.v ?? 0;
      if (version > PG_SCHEMA_VERSION) {
        throw new QuarryError('index_incompatible', `the database schema is from a newer Quarry (version ${version}, this one knows ${PG_SCHEMA_VERSION})`);
      }
      for (let v = version; v < PG_SCHEMA_VERSION; v++) {
        await client.query('BEGIN');
        try {
          await client.query(MIGRATIONS[v]!);
          await client.query('INSERT INTO quarry_migrations (version) VALUES ($1)', [v + 1]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK');
          throw e;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
    }
  } finally {
    client.release();
  }
}
