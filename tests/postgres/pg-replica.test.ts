// A primary and a streaming replica started by the test (scripts/postgres-lib.mjs: pg_basebackup -R), and a real
// Quarry process (`node bin/quarry.js serve`, the real model) with QUARRY_DATABASE_URL on the primary and
// QUARRY_DATABASE_READ_URL on the replica. The proof that searches read from the replica: with the replica's
// replay paused, a write acknowledged through the primary is returned by GET /articles/:id (the primary) and
// by no search; once replay resumes the search finds it. The lag (searches until visible) is printed, never
// asserted; bench/postgres-replica.ts measures it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, type Cluster, replicationStatus } from '../../scripts/postgres-lib.mjs';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { pollUntil } from '../helpers/poll.ts';
import { databaseOn, postgresSkipReason, startTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { SEEDS_DIR } from '../helpers/service.ts';

const unavailable = await postgresSkipReason('pg-replica.test.ts');

const API_KEY = 'pg-replica-test-key-0123456789';
const auth = { authorization: `Bearer ${API_KEY}` };
const SEED_ID = '1a76b68b4bef4123';
/** Writes whose lag to the replica is printed (a count, not a duration). */
const LAG_WRITES = 5;

interface Hit {
  article: { id: string };
}

describe.skipIf(unavailable !== null)('searches through a streaming replica (QUARRY_DATABASE_READ_URL, real model)', () => {
  let pgs: TestPostgres;
  let replica: Cluster;
  let primaryUrl: string;
  let readUrl: string;
  let quarry: ChildServer;
  let indexDir: string;

  beforeAll(async () => {
    pgs = await startTestPostgres();
    primaryUrl = await pgs.newDatabase();
    // After the database exists, so the base backup carries it.
    replica = await pgs.startReplica();
    readUrl = databaseOn(replica, primaryUrl);
    indexDir = mkdtempSync(join(tmpdir(), 'quarry-pg-replica-'));
    quarry = await startChildServer({
      indexDir,
      seedsDir: SEEDS_DIR,
      env: { QUARRY_DATABASE_URL: primaryUrl, QUARRY_DATABASE_READ_URL: readUrl, QUARRY_API_KEY: API_KEY, QUARRY_SEARCH_RATE: '0', QUARRY_WRITE_RATE: '0' },
    });
    // The index was built on the primary; searches answer once the replica has replayed it (until then its
    // tables are missing there: 503, retry).
    await pollUntil(async () => (await searchIds('China Belarus industrial park', 'hybrid')).includes(SEED_ID), {
      what: 'the seed article to be searchable through the replica',
    });
  });
  afterAll(async () => {
    await quarry?.kill('SIGKILL');
    if (indexDir) rmSync(indexDir, { recursive: true, force: true });
    await pgs?.stop(); // the replica first, then the primary
  });

  /** Status and article ids of a search through Quarry. */
  async function search(q: string, mode: 'lexical' | 'hybrid' = 'lexical'): Promise<{ status: number; ids: string[] }> {
    const res = await fetch(`${quarry.url}/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ q, mode, k: 10 }),
    });
    if (res.status !== 200) return { status: res.status, ids: [] };
    return { status: 200, ids: ((await res.json()) as { results: Hit[] }).results.map((r) => r.article.id) };
  }

  /** Article ids of a search through Quarry; [] while it cannot be answered (503: the replica lacks the tables yet). */
  async function searchIds(q: string, mode: 'lexical' | 'hybrid' = 'lexical'): Promise<string[]> {
    const r = await search(q, mode);
    if (r.status !== 503) expect(r.status).toBe(200);
    return r.ids;
  }

  const write = (id: string, token: string) =>
    fetch(`${quarry.url}/articles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify({ id, title: `Replica check ${token}`, paragraphs: [`The harbour ferry timetable ${token} changed for the winter season.`] }),
    });

  /** Searches until `token` finds `id` (or, with `gone`, no longer does), at most `attempts` of them; returns the count. */
  async function searchesUntil(token: string, id: string, opts: { gone?: boolean; attempts?: number } = {}): Promise<number> {
    let n = 0;
    await pollUntil(
      async () => {
        n++;
        return (await searchIds(token)).includes(id) !== (opts.gone ?? false);
      },
      { what: `a search through the replica to ${opts.gone ? 'lose' : 'find'} ${id}`, attempts: opts.attempts ?? 500, intervalMs: 2, maxIntervalMs: 50 },
    );
    return n;
  }

  it('the read URL is a replica that refuses writes; /stats names it without its password', async () => {
    const client = new pg.Client({ connectionString: readUrl });
    await client.connect();
    try {
      expect((await client.query('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
      await expect(client.query('INSERT INTO quarry_state DEFAULT VALUES')).rejects.toMatchObject({ code: '25006' });
    } finally {
      await client.end();
    }
    const stats = (await (await fetch(`${quarry.url}/stats`, { headers: auth })).json()) as { backend: string; database: { readReplica: string | null } };
    expect(stats.backend).toBe('postgres');
    expect(stats.database.readReplica).toContain(`127.0.0.1:${replica.port}/`);
    expect(JSON.stringify(stats)).not.toContain(new URL(readUrl).password);
    expect((await fetch(`${quarry.url}/health/ready`)).status).toBe(200);
    const [state] = await replicationStatus(pgs.cluster.dir);
    expect(state).toMatchObject({ application: 'quarry_replica', state: 'streaming' });
  });

  it('with replay paused a write is acknowledged and readable on the primary but in no search; after replay it is found', async () => {
    await adminQuery(replica.dir, 'SELECT pg_wal_replay_pause()');
    try {
      await pollUntil(async () => (await adminQuery(replica.dir, 'SELECT pg_get_wal_replay_pause_state()')) === 'paused', {
        what: 'replay on the replica to pause',
      });
      const token = 'zqpausedreplay7';
      expect((await write('replica-paused', token)).status).toBe(201);
      // Look-ups by id read the primary: the acknowledged write is there.
      expect((await fetch(`${quarry.url}/articles/replica-paused`, { headers: auth })).status).toBe(200);
      // Searches read the replica, which has not replayed it.
      for (let i = 0; i < 3; i++) expect(await search(token)).toEqual({ status: 200, ids: [] });
    } finally {
      await adminQuery(replica.dir, 'SELECT pg_wal_replay_resume()');
    }
    const n = await searchesUntil('zqpausedreplay7', 'replica-paused');
    console.info(`[pg-replica.test.ts] after replay resumed, found by search ${n}`);

    expect((await fetch(`${quarry.url}/articles/replica-paused`, { method: 'DELETE', headers: auth })).status).toBe(204);
    const gone = await searchesUntil('zqpausedreplay7', 'replica-paused', { gone: true });
    console.info(`[pg-replica.test.ts] the delete reached the replica's searches at search ${gone}`);
  });

  it(`${LAG_WRITES} writes through the primary are each found by a search through the replica (lag printed)`, async () => {
    const polls: number[] = [];
    const ms: number[] = [];
    for (let i = 0; i < LAG_WRITES; i++) {
      const token = `zqlag${i}replica`;
      expect((await write(`replica-lag-${i}`, token)).status).toBe(201);
      const t0 = performance.now();
      polls.push(await searchesUntil(token, `replica-lag-${i}`));
      ms.push(Math.round(performance.now() - t0));
    }
    const [state] = await replicationStatus(pgs.cluster.dir);
    console.info(
      `[pg-replica.test.ts] write acknowledged -> found through the replica: searches ${polls.join(', ')}; ms ${ms.join(', ')}; pg_stat_replication replay_lag ${state?.replayLagMs ?? 'null'} ms`,
    );
  });
});
