import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type Cluster, postgresUnavailableReason, startPrimary, startReplica } from '../../scripts/postgres-lib.mjs';

/*
 * A real PostgreSQL 15 + pgvector 0.8 for a test file: its own cluster in a temporary folder (started by the
 * same script as `npm run postgres`), and a fresh database per test on it. Where PostgreSQL cannot be
 * installed, `unavailable` says why and the file skips its tests, printing the reason.
 */

export interface TestPostgres {
  cluster: Cluster;
  dir: string;
  /** A new, empty database (with the vector extension, from template1) and its URL. */
  newDatabase(): Promise<string>;
  /** Starts a streaming replica of the cluster (pg_basebackup -R into its folder; stop() stops it first). */
  startReplica(): Promise<Cluster>;
  stop(): Promise<void>;
}

/** The URL of the same database on another cluster: a replica holds every database of its primary. */
export function databaseOn(cluster: Cluster, databaseUrl: string): string {
  const url = new URL(cluster.url);
  url.pathname = new URL(databaseUrl).pathname;
  return url.toString();
}

export async function postgresSkipReason(file: string): Promise<string | null> {
  const why = await postgresUnavailableReason({ log: (l) => console.warn(`[${file}] ${l}`) });
  if (why) console.warn(`[${file}] SKIPPED: ${why}. Run \`npm run postgres -- install\` as root (or with passwordless sudo) on Debian.`);
  return why;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-pg-'));
  chmodSync(dir, 0o755); // the server runs as the postgres user under root
  const cluster = await startPrimary({ dir: join(dir, 'primary'), log: () => {} });
  let n = 0;
  return {
    cluster,
    dir,
    async newDatabase() {
      const name = `quarry_test_${process.pid}_${++n}_${Math.random().toString(36).slice(2, 8)}`;
      const client = new pg.Client({ connectionString: cluster.url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      const url = new URL(cluster.url);
      url.pathname = `/${name}`;
      return url.toString();
    },
    startReplica: () => startReplica({ of: cluster.dir, log: () => {} }),
    async stop() {
      await cluster.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
