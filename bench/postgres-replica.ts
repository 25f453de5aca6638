/**
 * `npm run bench -- postgres-replica [--writes 100] [--sql-writes 500]`
 *
 * How long after a write is acknowledged a search through a streaming replica finds it (issue 13: searches
 * through QUARRY_DATABASE_READ_URL see a write after replication; report the lag). A private primary and
 * streaming replica (scripts/postgres-lib.mjs, in a temporary folder, stopped at the end) and two real Quarry
 * processes (`quarry serve`, the real model) on one database:
 * - R: QUARRY_DATABASE_URL = the primary, QUARRY_DATABASE_READ_URL = the replica (searches read the replica);
 * - P: the primary only: the control, where a write is visible to the next search (the floor of the method).
 * For each of --writes articles (one paragraph with a unique token), alternately through R and P: POST
 * /articles, then lexical searches for the token (no query embedding, so one search is a few ms) through the
 * same process until the article is returned. Reported: ms from the 201 to the first search that finds it
 * (p50/p99/max) and the number of searches that took. Underneath, PostgreSQL's own lag: --sql-writes rows
 * inserted on the primary (autocommit) and polled for on the replica in a tight loop, and
 * pg_stat_replication's replay_lag sampled after each of them.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { adminQuery, replicationStatus, startPrimary, startReplica, stopCluster } from '../scripts/postgres-lib.mjs';
import { flag, ROOT } from './lib/args.ts';
import { markdownTable, newResult, updateDoc, writeResult } from './lib/results.ts';
import { type ServeChild, startServe } from './lib/serve-child.ts';
import { percentile, round } from './lib/stats.ts';

const API_KEY = 'bench-postgres-replica-key-0123456789';
/** Searches before a write is taken for lost (a hang guard; at ~5 ms a search, minutes). */
const MAX_POLLS = 20_000;

interface Lag {
  ms: number[];
  polls: number[];
}

function summary(l: Lag) {
  return {
    n: l.ms.length,
    p50Ms: round(percentile(l.ms, 50)),
    p99Ms: round(percentile(l.ms, 99)),
    maxMs: round(Math.max(...l.ms)),
    meanPolls: round(l.polls.reduce((a, b) => a + b, 0) / l.polls.length),
    maxPolls: Math.max(...l.polls),
    firstPoll: round(l.polls.filter((p) => p === 1).length / l.polls.length),
  };
}

async function searchFinds(server: ServeChild, token: string, id: string): Promise<boolean> {
  const res = await fetch(`${server.url}/search`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ q: token, mode: 'lexical', k: 3 }),
  });
  if (res.status === 503) return false; // the replica has not replayed the generation's tables yet
  if (res.status !== 200) throw new Error(`search answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { results: Array<{ article: { id: string } }> }).results.some((r) => r.article.id === id);
}

/** POSTs one article through `server`, then searches through it until found; pushes the lag into `into`. */
async function writeThenFind(server: ServeChild, i: number, into: Lag): Promise<void> {
  const id = `lag-${i}`;
  const token = `zqlag${i.toString(36)}x`;
  const res = await fetch(`${server.url}/articles`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ id, title: `Lag probe ${i}`, paragraphs: [`The ferry timetable ${token} was changed for the winter season.`] }),
  });
  if (res.status !== 201) throw new Error(`write ${id} answered ${res.status}: ${await res.text()}`);
  const t0 = performance.now();
  for (let polls = 1; polls <= MAX_POLLS; polls++) {
    if (await searchFinds(server, token, id)) {
      into.ms.push(performance.now() - t0);
      into.polls.push(polls);
      return;
    }
  }
  throw new Error(`${id} was not found after ${MAX_POLLS} searches`);
}

export async function run(args: string[]): Promise<void> {
  const writes = Number(flag(args, 'writes', '100'));
  const sqlWrites = Number(flag(args, 'sql-writes', '500'));
  const result = newResult('postgres-replica', args);
  const root = mkdtempSync(join(tmpdir(), 'quarry-bench-replica-'));
  chmodSync(root, 0o755); // the server runs as the postgres user under root
  const log = (l: string) => console.error(`[postgres-replica] ${l}`);
  const servers: ServeChild[] = [];
  let primaryDir: string | undefined;
  try {
    const primary = await startPrimary({ dir: join(root, 'primary'), log });
    primaryDir = primary.dir;
    const replica = await startReplica({ of: primary.dir, log });
    // Lets the bench's own connection read pg_stat_replication's lag columns (a private, throw-away cluster).
    await adminQuery(primary.dir, 'GRANT pg_monitor TO quarry');

    const common = { QUARRY_SEEDS_DIR: join(ROOT, 'seeds'), QUARRY_API_KEY: API_KEY, QUARRY_SEARCH_RATE: '0', QUARRY_WRITE_RATE: '0' };
    log('starting Quarry R (reads the replica) and P (the primary only)');
    const r = await startServe({
      ...common,
      QUARRY_INDEX_DIR: mkdtempSync(join(root, 'r-')),
      QUARRY_DATABASE_URL: primary.url,
      QUARRY_DATABASE_READ_URL: replica.url,
    });
    servers.push(r);
    const p = await startServe({ ...common, QUARRY_INDEX_DIR: mkdtempSync(join(root, 'p-')), QUARRY_DATABASE_URL: primary.url });
    servers.push(p);
    // The seeds index must have reached the replica before timing starts.
    const warm: Lag = { ms: [], polls: [] };
    await writeThenFind(r, -1, warm);

    log(`${writes} writes, alternately through R and P, each searched for until found`);
    const viaReplica: Lag = { ms: [], polls: [] };
    const viaPrimary: Lag = { ms: [], polls: [] };
    for (let i = 0; i < writes; i++) {
      if (i % 2 === 0) await writeThenFind(r, i, viaReplica);
      else await writeThenFind(p, i, viaPrimary);
    }

    log(`${sqlWrites} rows committed on the primary, polled for on the replica`);
    const onPrimary = new pg.Client({ connectionString: primary.url });
    const onReplica = new pg.Client({ connectionString: replica.url });
    await onPrimary.connect();
    await onReplica.connect();
    await onPrimary.query('CREATE TABLE bench_lag (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
    await onPrimary.query('SELECT pg_sleep(0.5)'); // let the CREATE TABLE replay
    const sql: Lag = { ms: [], polls: [] };
    const replayLag: number[] = [];
    const bytesBehind: number[] = [];
    for (let i = 0; i < sqlWrites; i++) {
      await onPrimary.query('INSERT INTO bench_lag (id) VALUES ($1)', [i]);
      const t0 = performance.now();
      let polls = 0;
      for (;;) {
        polls++;
        try {
          if ((await onReplica.query('SELECT 1 FROM bench_lag WHERE id = $1', [i])).rowCount === 1) break;
        } catch (e) {
          if ((e as { code?: string }).code !== '42P01') throw e; // the table itself not replayed yet
        }
        if (polls > MAX_POLLS) throw new Error(`row ${i} did not reach the replica after ${MAX_POLLS} reads`);
      }
      sql.ms.push(performance.now() - t0);
      sql.polls.push(polls);
      const { rows } = await onPrimary.query<{ replay: number | null; behind: string }>(
        "SELECT extract(epoch FROM replay_lag) * 1000 AS replay, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS behind FROM pg_stat_replication WHERE application_name = 'quarry_replica'",
      );
      if (rows[0]?.replay !== null && rows[0]?.replay !== undefined) replayLag.push(Number(rows[0].replay));
      bytesBehind.push(Number(rows[0]?.behind ?? 0));
    }
    await onPrimary.end();
    await onReplica.end();
    const replication = await replicationStatus(primary.dir);

    const figures = {
      quarryViaReplica: summary(viaReplica),
      quarryViaPrimary: summary(viaPrimary),
      sqlRowOnReplica: summary(sql),
      pgStatReplicationReplayLagMs: {
        samples: replayLag.length,
        of: sqlWrites,
        p50: round(percentile(replayLag, 50)),
        p99: round(percentile(replayLag, 99)),
        max: round(Math.max(...replayLag)),
      },
      bytesBehindAfterVisible: { p50: percentile(bytesBehind, 50), max: Math.max(...bytesBehind) },
      replicationAtEnd: replication,
    };
    Object.assign(result, { writes, sqlWrites, figures });
    const file = writeResult(result);
    const a = figures.quarryViaReplica;
    const b = figures.quarryViaPrimary;
    const s = figures.sqlRowOnReplica;
    const rl = figures.pgStatReplicationReplayLagMs;
    const table = markdownTable(
      ['write acknowledged → visible', 'n', 'p50 ms', 'p99 ms', 'max ms', 'searches (reads) until visible: mean / max', 'visible at the first'],
      [
        ['Quarry search through the replica (R)', a.n, a.p50Ms, a.p99Ms, a.maxMs, `${a.meanPolls} / ${a.maxPolls}`, a.firstPoll],
        ['Quarry search on the primary (P, control)', b.n, b.p50Ms, b.p99Ms, b.maxMs, `${b.meanPolls} / ${b.maxPolls}`, b.firstPoll],
        ['SQL row on the replica (psql-level, tight poll)', s.n, s.p50Ms, s.p99Ms, s.maxMs, `${s.meanPolls} / ${s.maxPolls}`, s.firstPoll],
      ],
    );
    const body = [
      table,
      '',
      `pg_stat_replication replay_lag after each SQL write: p50 ${rl.p50} ms, p99 ${rl.p99} ms, max ${rl.max} ms (${rl.samples} of ${rl.of} samples non-null). R ÷ P at p50: ${round(a.p50Ms / b.p50Ms, 2)}×.`,
      '',
      `Results: \`${file.slice(ROOT.length + 1)}\`.`,
    ].join('\n');
    updateDoc('postgres-replica', result, body);
    console.log(JSON.stringify(figures, null, 2));
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
    if (primaryDir) await stopCluster(primaryDir); // the replica in DIR/replica first
    rmSync(root, { recursive: true, force: true });
  }
}
