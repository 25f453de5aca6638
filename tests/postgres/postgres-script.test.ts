// The development PostgreSQL of `npm run postgres` (scripts/postgres.mjs + scripts/postgres-lib.mjs): a real
// primary and a real streaming replica in temporary folders, a vector(3) table with an HNSW index written on
// the primary and read back on the replica. Skipped, with the reason printed, where PostgreSQL 15 + pgvector
// 0.8 is not installed and cannot be (no apt-get, no root or sudo, no network to the Debian mirror).
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, PG_BIN, PROJECT_ROOT, postgresUnavailableReason, startPrimary, startReplica } from '../../scripts/postgres-lib.mjs';

const run = promisify(execFile);
const SCRIPT = join(PROJECT_ROOT, 'scripts/postgres.mjs');

// Installs (and builds pgvector) on first use where it can; .ci/run does this before the tests.
const unavailable = await postgresUnavailableReason({ log: (l) => console.warn(`[postgres-script.test.ts] ${l}`) });
if (unavailable) {
  console.warn(`[postgres-script.test.ts] SKIPPED: ${unavailable}. Run \`npm run postgres -- install\` as root (or with passwordless sudo) on Debian.`);
}

/** Runs SQL through psql as the Quarry role, over TCP with its password (what the backend will do). */
function sql(url: string, query: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(`${PG_BIN}/psql`, [url, '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', query], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout.trim(), err: r.stderr.trim() };
}

function sqlOk(url: string, query: string): string {
  const r = sql(url, query);
  if (!r.ok) throw new Error(`psql failed on ${JSON.stringify(query)}: ${r.err}`);
  return r.out;
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe.skipIf(unavailable !== null)('npm run postgres: a primary and a streaming replica with pgvector', () => {
  let root: string;
  let primaryDir: string;
  let replicaDir: string;
  let primary: Cluster | undefined;
  let replica: Cluster | undefined;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'quarry-pg-test-'));
    chmodSync(root, 0o755); // mkdtemp's 0700 would shut out the postgres user the server runs as under root
    primaryDir = join(root, 'primary');
    replicaDir = join(root, 'replica');
  });

  afterAll(async () => {
    await replica?.stop();
    await primary?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('start prints exactly one QUARRY_DATABASE_URL line on stdout, and the same line again when running', async () => {
    const first = await cli('start', '--dir', primaryDir);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^QUARRY_DATABASE_URL=postgres:\/\/quarry:[A-Za-z0-9_-]+@127\.0\.0\.1:\d+\/quarry$/);

    const again = await cli('start', '--dir', primaryDir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);

    primary = await startPrimary({ dir: primaryDir, log: () => {} });
    expect(`QUARRY_DATABASE_URL=${primary.url}`).toBe(lines[0]);
  });

  it('the Quarry role needs its password', () => {
    const url = new URL(primary!.url);
    url.password = 'not-the-password';
    const r = sql(url.toString(), 'SELECT 1');
    expect(r.ok).toBe(false);
    expect(r.err).toMatch(/password authentication failed/);
  });

  it('has pgvector 0.8 with iterative index scans', () => {
    expect(sqlOk(primary!.url, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")).toMatch(/^0\.8\./);
    expect(sqlOk(primary!.url, 'SET hnsw.iterative_scan = relaxed_order; SHOW hnsw.iterative_scan')).toBe('relaxed_order');
  });

  it('a row written on the primary reaches the replica, where the HNSW index serves it and writes are refused', async () => {
    replica = await startReplica({ of: primaryDir, dir: replicaDir, log: () => {} });
    expect(replica.url).not.toBe(primary!.url);
    expect(sqlOk(replica.url, 'SELECT pg_is_in_recovery()')).toBe('t');

    sqlOk(
      primary!.url,
      [
        'CREATE TABLE items (id integer PRIMARY KEY, embedding vector(3) NOT NULL);',
        'CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);',
        "INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0.2]');",
      ].join(' '),
    );
    // Cosine: [0.8,0.1,0.2] is nearest to 3 (0.9999), then 1 (0.963), then 2 (0.120).
    const nearest =
      "SET enable_seqscan = off; SELECT string_agg(id::text, ',' ORDER BY d) FROM (SELECT id, embedding <=> '[0.8,0.1,0.2]' AS d FROM items ORDER BY embedding <=> '[0.8,0.1,0.2]' LIMIT 2) t";
    expect(sqlOk(primary!.url, nearest)).toBe('3,1');

    // Replication is asynchronous: poll, bounded by a count of attempts rather than by time.
    let seen = '';
    let attempts = 0;
    for (; attempts < 400 && seen !== '3,1'; attempts++) {
      const r = sql(replica.url, nearest);
      seen = r.ok ? r.out : '';
      if (seen !== '3,1') await new Promise((resolve) => setTimeout(resolve, 25));
    }
    console.info(`[postgres-script.test.ts] the rows reached the replica after ${attempts} read(s)`);
    expect(seen).toBe('3,1');
    const plan = sqlOk(replica.url, `SET enable_seqscan = off; EXPLAIN SELECT id FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 2`);
    expect(plan).toContain('items_embedding_hnsw');

    const write = sql(replica.url, "INSERT INTO items VALUES (4, '[0,0,1]')");
    expect(write.ok).toBe(false);
    expect(write.err).toMatch(/read-only transaction/);
  });

  it('status exits 0 while running and 3 once stopped', async () => {
    const running = await cli('status', '--dir', primaryDir);
    expect(running.code).toBe(0);
    expect(running.stdout).toMatch(/: running\n/);
    expect(running.stdout).toMatch(/^pgvector: 0\.8\./m);
    expect(running.stdout).toMatch(/^hnsw\.iterative_scan: off$/m);

    expect(await replica!.stop()).toBe(true);
    expect((await cli('status', '--dir', replicaDir)).code).toBe(3);
    expect(await primary!.stop()).toBe(true);
    const stopped = await cli('status', '--dir', primaryDir);
    expect(stopped.code).toBe(3);
    expect(stopped.stdout).toMatch(/: not running\n/);
    expect(await primary!.stop()).toBe(false); // stopping a stopped cluster is a no-op
  });
});
