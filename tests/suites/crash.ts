import { spawnSync } from 'node:child_process';
import { cpSync, type FSWatcher, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openQuarry } from '../../src/core/open-or-build.ts';
import type { IntegrityReport } from '../../src/store/store.ts';
import type { IndexTarget, TestBackend } from '../helpers/backends.ts';
import { type ChildServer, startChildServer } from '../helpers/child-server.ts';
import { CHILD_HANG_GUARD_MS, pollUntil } from '../helpers/poll.ts';
import { mulberry32 } from '../helpers/prng.ts';

/*
 * kill -9 at random moments, then prove nothing acknowledged was lost and nothing half-written is visible.
 *
 * A child process serves the API on a temporary index with a checkpoint every few chunk changes. Writers
 * post new articles (batches), replace and delete them; the test records what was acknowledged (201/204)
 * and what was in flight. Each round ends with SIGKILL: at a random moment, the moment a checkpoint
 * starts writing its temporary file, or while a background rebuild runs. Then, before restarting, the
 * index on disk is opened read-only in this process (checkpoint + replay, as a start does) and checked:
 * SQLite integrity_check, FTS5 rows, and the live HNSW points against the chunk table. After the restart,
 * every article must be exactly its last acknowledged version or one that was in flight (never a mix,
 * never a partial article), be returned by GET /articles/:id and found by a lexical search for its unique
 * token with every paragraph as evidence; replaced and deleted versions must not be found.
 *
 * The work is bounded by counts, never by the clock: ROUNDS rounds (one kill each), a budget of writes per
 * round, and each kill placed by what has happened (the n-th write sent, a checkpoint's temporary file, a
 * rebuild's progress), not by a sleep. The test has no time limit: a slow machine only makes it longer. Every
 * wait in it is bounded (a hang guard with a message: a child start, a poll, a write budget).
 *
 * Run against both backends: tests/e2e/crash.test.ts (SQLite, every kind of kill) and
 * tests/postgres/pg-crash.test.ts (PostgreSQL: no HNSW checkpoint files there, so its checkpoint rounds are
 * random kills; the check between rounds is the database's, through the same store code).
 */

const ROOT = resolve(import.meta.dirname, '../..');
const API_KEY = 'crash-test-key-0123456789abcdef';
const SEED = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
const WRITERS = 3;
/** Writes sent per round (each a batch of 1-3 new articles, a replacement or a delete). */
const WRITES_PER_ROUND = Number(process.env.CRASH_WRITES_PER_ROUND ?? 12);
/** A checkpoint round writes until a checkpoint starts (every 8 chunk changes: a few writes), at most this many. */
const CHECKPOINT_ROUND_WRITES = 60;
/** The completed-rebuild round writes until the rebuild is done; past this many writes it is taken for hung. */
const REBUILD_ROUND_WRITE_GUARD = 5000;

const random = mulberry32(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const between = (lo: number, hi: number) => lo + random() * (hi - lo);
/** 1..n, uniformly. */
const oneTo = (n: number) => 1 + Math.floor(random() * n);

const WORDS = (
  'river harbour market council winter engine garden station bridge letter village mountain forest record ' +
  'teacher doctor farmer budget museum festival railway factory weather island college library hospital ' +
  'orchestra painter harvest journey battery satellite election museum ferry tunnel canal lantern meadow ' +
  'compass glacier volcano desert orchard vineyard bakery workshop quarry lighthouse cathedral pottery ' +
  'copper silver timber cotton velvet marble granite amber crimson violet quietly slowly warmly brightly ' +
  'announced described repaired painted counted carried opened visited measured welcomed'
).split(' ');

interface Version {
  title: string;
  paragraphs: string[];
  /** In every paragraph, so a lexical search for it returns each of the article's paragraphs. */
  token: string;
}
interface Tracked {
  id: string;
  /** The last acknowledged state: a version, null (deleted), or undefined (never acknowledged). */
  acked: Version | null | undefined;
  /** States whose request was in flight at the kill: each may or may not have been applied. */
  pending: Array<Version | null>;
  /** Every version ever sent for this id, to check the replaced ones are not found. */
  versions: Version[];
}

let tokenCounter = 0;
function newVersion(id: string): Version {
  const token = `zq${SEED.toString(36)}x${(tokenCounter++).toString(36)}k9`;
  const paragraphs = Array.from({ length: 2 + Math.floor(random() * 3) }, () => {
    const words = Array.from({ length: 10 + Math.floor(random() * 8) }, () => pick(WORDS));
    words.splice(Math.floor(random() * words.length), 0, token);
    return `${words.join(' ')}.`;
  });
  return { title: `Crash article ${id} ${token}`, paragraphs, token };
}

const auth = { authorization: `Bearer ${API_KEY}` };
const json = { ...auth, 'content-type': 'application/json' };

async function mapLimit<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * `rounds` kills (one per round) against `backend`. Where the backend has no HNSW checkpoints, the rounds
 * that would kill at a checkpoint's start kill at random instead.
 */
export function crashSuite(backend: TestBackend, rounds: number): void {
  const ROUNDS = rounds;
  const tempDirs: string[] = [];
  let indexDir: string;
  let seedsDir: string;
  let target: IndexTarget;
  /** The child server of the round in progress, killed at the end whatever happened. */
  let current: ChildServer | null = null;

  beforeAll(async () => {
    indexDir = mkdtempSync(join(tmpdir(), 'quarry-crash-index-'));
    seedsDir = mkdtempSync(join(tmpdir(), 'quarry-crash-seeds-'));
    tempDirs.push(indexDir, seedsDir);
    cpSync(join(ROOT, 'seeds'), seedsDir, { recursive: true });
    target = await backend.newIndex();
  });
  afterAll(async () => {
    await current?.kill('SIGKILL');
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });

  /** The settings the child servers run with, as this process reads them (for the index's own checks). */
  const indexConfig = () =>
    loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, seedsDir, modelsDir: join(ROOT, 'models'), logLevel: 'silent', ...target.config } });
  const currentGen = () => backend.generation(indexConfig());

  /**
   * Opens the index read-only in this process, exactly as a start would (SQLite: checkpoint + replay). With the
   * model's identity from its files, as `quarry check` does: an integrity check embeds nothing.
   */
  async function checkOnDisk(): Promise<IntegrityReport> {
    const q = await openQuarry({ config: indexConfig(), embedder: null, access: 'read' });
    try {
      return await q.integrity();
    } finally {
      await q.close();
    }
  }

  /**
   * Signs that the kill landed inside a checkpoint, among files that were not there when the round began (a
   * kill in an earlier round may have left some): a temporary file, or a new graph not yet named by
   * checkpoint.json, or the old graph not yet removed.
   */
  function checkpointInterrupted(genDir: string, before: Set<string>): boolean {
    const files = readdirSync(genDir).filter((f) => !before.has(f));
    if (files.some((f) => f.includes('.tmp'))) return true;
    const named = JSON.parse(readFileSync(join(genDir, 'checkpoint.json'), 'utf8')) as { file: string };
    const graphs = readdirSync(genDir).filter((f) => /^hnsw-.*\.bin$/.test(f));
    return files.some((f) => /^hnsw-.*\.bin$/.test(f)) && (graphs.length > 1 || graphs[0] !== named.file);
  }

  describe(`crash safety under SIGKILL (${backend.name})`, () => {
    // No time limit (0): every wait inside is bounded by a count or a hang guard that names what it waited for.
    it(`loses no acknowledged write and shows no partial article across ${ROUNDS} kills`, { timeout: 0 }, async () => {
      const started = performance.now();
      const tracked = new Map<string, Tracked>();
      const counts = {
        kills: 0,
        killsAtRandom: 0,
        killsOnCheckpointStart: 0,
        checkpointsInterrupted: 0,
        killsDuringRebuild: 0,
        rebuildsInterrupted: 0,
        rebuildsSwappedBeforeKill: 0,
        rebuildsCompleted: 0,
        writesDuringCompletedRebuild: 0,
        acknowledgedWrites: 0,
        acknowledgedChecked: 0,
        inFlightApplied: 0,
        inFlightAbsent: 0,
        searchesChecked: 0,
        losses: 0,
        phantoms: 0,
        partialBatches: 0,
        integrityFailures: 0,
        unexpectedResponses: 0,
        roundsEmbeddingOnMainThread: 0,
      };
      const failures: string[] = [];
      const ms = { start: 0, verify: 0, workload: 0, diskCheck: 0 };
      /** How long acknowledged writes took (the last few): a random kill lands within about one write. */
      const ackMs: number[] = [];
      const typicalWriteMs = () => (ackMs.length === 0 ? 0 : ackMs.reduce((a, b) => a + b, 0) / ackMs.length);
      const recordAck = (t0: number) => {
        ackMs.push(performance.now() - t0);
        if (ackMs.length > 50) ackMs.shift();
      };
      const timed = async <T>(k: keyof typeof ms, f: () => Promise<T>): Promise<T> => {
        const t0 = performance.now();
        try {
          return await f();
        } finally {
          ms[k] += performance.now() - t0;
        }
      };
      let nextId = 0;
      let unresolvedBatches: string[][] = [];

      // ---- writers -------------------------------------------------------------------------------------
      const busy = new Set<string>();
      const live = () => [...tracked.values()].filter((t) => t.acked && t.pending.length === 0 && !busy.has(t.id));

      async function writeOnce(server: ChildServer): Promise<boolean> {
        const r = random();
        const candidates = live();
        if (r < 0.6 || candidates.length < 5) {
          const batch = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
            const id = `crash-${(nextId++).toString().padStart(5, '0')}`;
            const t: Tracked = { id, acked: undefined, pending: [], versions: [] };
            tracked.set(id, t);
            return t;
          });
          const versions = batch.map((t) => newVersion(t.id));
          batch.forEach((t, i) => {
            t.pending.push(versions[i]!);
            t.versions.push(versions[i]!);
            busy.add(t.id);
          });
          const ids = batch.map((t) => t.id);
          try {
            const body =
              batch.length === 1 ? { id: ids[0], ...strip(versions[0]!) } : { articles: batch.map((t, i) => ({ id: t.id, ...strip(versions[i]!) })) };
            const t0 = performance.now();
            const res = await fetch(`${server.url}/articles`, { method: 'POST', headers: json, body: JSON.stringify(body) });
            if (res.status === 201) {
              recordAck(t0);
              const ack = (await res.json()) as { articles: Array<{ id: string; chunks: number }> };
              if (
                !isDeepStrictEqual(
                  ack.articles.map((a) => a.id),
                  ids,
                )
              )
                failures.push(`POST /articles acknowledged ${JSON.stringify(ack)} for ${ids.join(',')}`);
              batch.forEach((t, i) => {
                t.acked = versions[i]!;
                t.pending = [];
              });
              counts.acknowledgedWrites += batch.length;
            } else {
              counts.unexpectedResponses++;
              failures.push(`POST /articles answered ${res.status}: ${await res.text()}`);
              batch.forEach((t) => (t.pending = []));
            }
            return true;
          } catch {
            if (batch.length > 1) unresolvedBatches.push(ids);
            return false; // the server died with the request in flight
          } finally {
            ids.forEach((id) => busy.delete(id));
          }
        }
        const t = pick(candidates);
        busy.add(t.id);
        const del = r > 0.88;
        const v = del ? null : newVersion(t.id);
        t.pending.push(v);
        if (v) t.versions.push(v);
        try {
          const t0 = performance.now();
          const res = del
            ? await fetch(`${server.url}/articles/${t.id}`, { method: 'DELETE', headers: auth })
            : await fetch(`${server.url}/articles`, { method: 'POST', headers: json, body: JSON.stringify({ id: t.id, ...strip(v!) }) });
          if (res.status === (del ? 204 : 201)) {
            recordAck(t0);
            t.acked = v;
            t.pending = [];
            counts.acknowledgedWrites++;
          } else {
            counts.unexpectedResponses++;
            failures.push(`${del ? 'DELETE' : 'POST'} ${t.id} answered ${res.status}: ${await res.text()}`);
            t.pending = [];
          }
          return true;
        } catch {
          return false;
        } finally {
          busy.delete(t.id);
        }
      }

      interface Writers {
        /** Resolves once `n` writes have been sent (or the writers stopped before that). */
        sent(n: number): Promise<void>;
        /** Resolves when the budget is spent or the server died. */
        done: Promise<void>;
        stop(): Promise<void>;
      }
      /** WRITERS concurrent loops sharing a budget of `budget` writes. */
      function startWriters(server: ChildServer, budget: number): Writers {
        let stopped = false;
        let sent = 0;
        const waiting: Array<{ n: number; resolve: () => void }> = [];
        const notify = () => {
          for (const w of waiting.splice(0)) {
            if (sent >= w.n || stopped) w.resolve();
            else waiting.push(w);
          }
        };
        const loops = Array.from({ length: WRITERS }, async () => {
          while (!stopped && sent < budget) {
            sent++;
            const write = writeOnce(server);
            notify();
            if (!(await write)) break; // the server died
          }
        });
        const done = Promise.all(loops).then(() => {
          stopped = true;
          notify();
        });
        return {
          sent: (n) =>
            new Promise<void>((resolve) => {
              waiting.push({ n, resolve });
              notify();
            }),
          done,
          stop: async () => {
            stopped = true;
            await done;
          },
        };
      }

      /** The server's rebuild status (polled to place kills by its progress, not by time). */
      const rebuildStatus = async (server: ChildServer) =>
        (await (await fetch(`${server.url}/admin/rebuild`, { headers: auth })).json()) as { state: string; articlesDone: number; articlesTotal: number };

      // ---- verification after a restart ------------------------------------------------------------------
      async function verify(server: ChildServer, round: number): Promise<void> {
        const items = [...tracked.values()];
        await mapLimit(items, 8, async (t) => {
          const res = await fetch(`${server.url}/articles/${t.id}`, { headers: { accept: 'application/json' } });
          let actual: { title: string; paragraphs: string[] } | null = null;
          if (res.status === 200) actual = (await res.json()) as { title: string; paragraphs: string[] };
          else if (res.status !== 404) {
            counts.unexpectedResponses++;
            failures.push(`round ${round}: GET /articles/${t.id} answered ${res.status}`);
            return;
          }
          const matches = (v: Version | null | undefined) =>
            v ? actual !== null && actual.title === v.title && isDeepStrictEqual(actual.paragraphs, v.paragraphs) : actual === null;
          if (t.acked !== undefined) counts.acknowledgedChecked++;
          const applied = t.pending.find((p) => matches(p));
          if (applied !== undefined) {
            counts.inFlightApplied++;
            t.acked = applied;
          } else if (matches(t.acked)) {
            if (t.pending.length > 0) counts.inFlightAbsent++;
            if (t.acked === undefined) t.acked = null;
          } else {
            // Neither the acknowledged state nor a complete in-flight version: lost, or partial/foreign.
            if (t.acked) counts.losses++;
            else counts.phantoms++;
            failures.push(
              `round ${round}: ${t.id} is ${actual ? JSON.stringify(actual).slice(0, 200) : 'absent'}; acknowledged ${t.acked ? t.acked.token : String(t.acked)}, in flight ${t.pending.map((p) => p?.token ?? 'delete').join(', ') || 'nothing'}`,
            );
          }
          t.pending = [];
        });
        // A batch is one transaction: after a kill its articles are all there or none is.
        for (const ids of unresolvedBatches) {
          const present = ids.map((id) => tracked.get(id)!.acked !== null && tracked.get(id)!.acked !== undefined);
          if (present.some(Boolean) && !present.every(Boolean)) {
            counts.partialBatches++;
            failures.push(`round ${round}: batch ${ids.join(',')} only partly present: ${present.join(',')}`);
          }
        }
        unresolvedBatches = [];

        // Search: the current version is found with every paragraph as evidence; replaced and deleted ones are not.
        const searches: Array<{ t: Tracked; v: Version; current: boolean }> = [];
        for (const t of tracked.values()) for (const v of t.versions) searches.push({ t, v, current: t.acked === v });
        await mapLimit(searches, 8, async ({ t, v, current }) => {
          const res = await fetch(`${server.url}/search?q=${v.token}&mode=lexical&k=5&evidence=20`);
          if (!res.ok) {
            // Admission is off in this test (no rate, no queue deadline): any refusal is a defect to name.
            failures.push(`round ${round}: search for ${v.token} answered ${res.status}: ${await res.text()}`);
            return;
          }
          const body = (await res.json()) as { results: Array<{ article: { id: string }; evidence: Array<{ paragraph: number }> }> };
          counts.searchesChecked++;
          const hit = body.results.find((x) => x.article.id === t.id);
          if (current) {
            const paragraphs = hit?.evidence.map((e) => e.paragraph).sort((a, b) => a - b);
            if (
              !isDeepStrictEqual(
                paragraphs,
                v.paragraphs.map((_, i) => i),
              )
            ) {
              counts.losses++;
              failures.push(
                `round ${round}: lexical search for ${v.token} gave ${JSON.stringify(paragraphs)} for ${t.id}, want all ${v.paragraphs.length} paragraphs`,
              );
            }
          } else if (hit) {
            counts.phantoms++;
            failures.push(`round ${round}: ${t.id} is still found by its ${t.acked === null ? 'deleted' : 'replaced'} text ${v.token}`);
          }
        });
        // Dense retrieval: a few current articles are found by one of their paragraphs (their vectors are in the graph).
        const current = [...tracked.values()].filter((t) => t.acked);
        for (let i = 0; i < Math.min(4, current.length); i++) {
          const t = pick(current);
          const q = t.acked!.paragraphs[0]!.replace(t.acked!.token, '');
          const res = await fetch(`${server.url}/search`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ q, mode: 'semantic', k: 5 }),
          });
          const body = (await res.json()) as { results: Array<{ article: { id: string } }> };
          counts.searchesChecked++;
          if (!body.results.some((x) => x.article.id === t.id)) {
            counts.losses++;
            failures.push(`round ${round}: semantic search for a paragraph of ${t.id} did not return it`);
          }
        }
      }

      // ---- rounds ------------------------------------------------------------------------------------------
      const plan: Array<'random' | 'checkpoint' | 'rebuild'> = [];
      for (let i = 0; i < ROUNDS; i++) plan.push(i % 4 === 1 ? 'checkpoint' : i % 4 === 3 ? 'rebuild' : i % 4 === 2 && i > 4 ? 'checkpoint' : 'random');
      if (!backend.checkpoints) plan.forEach((kind, i) => kind === 'checkpoint' && (plan[i] = 'random'));
      const completeRebuildAt = Math.min(5, ROUNDS - 1);
      // The verification sends hundreds of searches from one address, 8 at a time: no rate limit, no queue deadline.
      const env = {
        ...target.env,
        QUARRY_API_KEY: API_KEY,
        QUARRY_CHECKPOINT_EVERY: '8',
        QUARRY_LOG_LEVEL: 'error',
        QUARRY_SEARCH_RATE: '0',
        QUARRY_SEARCH_QUEUE_TIMEOUT_MS: '0',
      };
      // Each kind of kill alternates between a server that embeds in worker threads (the default) and one that
      // embeds on its main thread (QUARRY_*_WORKER=0): both are killed mid-write, and the second starts faster.
      const roundsOfKind = new Map<string, number>();
      const envFor = (kind: string) => {
        const nth = roundsOfKind.get(kind) ?? 0;
        roundsOfKind.set(kind, nth + 1);
        // The rebuild that must finish while the writers keep both cores busy shares the passage sessions at full
        // priority: at the default nice 19 it gets what the writers leave, about nothing, and the round ran for
        // minutes. The rounds that kill a rebuild keep the default, so its own sessions are killed mid-build too.
        if (kind === 'complete-rebuild') return { ...env, QUARRY_REBUILD_NICE: '0' };
        if (nth % 2 === 0) return env;
        counts.roundsEmbeddingOnMainThread++;
        return { ...env, QUARRY_PASSAGE_WORKER: '0', QUARRY_QUERY_WORKER: '0' };
      };
      const kill = async (server: ChildServer) => {
        await server.kill('SIGKILL');
        counts.kills++;
      };

      for (let round = 0; round < ROUNDS; round++) {
        const kind = round === completeRebuildAt ? 'complete-rebuild' : plan[round]!;
        const server = await timed('start', () => startChildServer({ indexDir, seedsDir, env: envFor(kind) }));
        current = server;
        const t0 = performance.now();
        let writers: Writers | null = null;
        let watcher: FSWatcher | null = null;
        try {
          if (round > 0) await timed('verify', () => verify(server, round));
          const generation = await currentGen();
          const halfBuiltBefore = new Set(await backend.halfBuilt(indexConfig()));

          if (kind === 'complete-rebuild') {
            // A rebuild that finishes while writes keep coming: the catch-up must carry them into the new index.
            writers = startWriters(server, REBUILD_ROUND_WRITE_GUARD);
            await writers.sent(oneTo(4));
            const before = counts.acknowledgedWrites;
            expect((await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: auth })).status).toBe(202);
            const end = await pollUntil(
              async () => {
                const status = await rebuildStatus(server);
                return status.state !== 'running' ? status : null;
              },
              { what: `round ${round}: the rebuild to finish` },
            );
            expect(end.state).toBe('succeeded');
            expect(await currentGen()).not.toBe(generation);
            counts.rebuildsCompleted++;
            counts.writesDuringCompletedRebuild += counts.acknowledgedWrites - before;
            await writers.stop();
            await verify(server, round); // on the live server, before any kill
            await kill(server);
            counts.killsAtRandom++;
          } else if (kind === 'checkpoint') {
            // Kill the moment a checkpoint starts writing (its temporary graph or checkpoint.json file appears). The
            // writers' budget makes several checkpoints due; should none be seen, the kill comes when it is spent.
            // (SQLite only: its generation is a folder holding the graph files.)
            const genDir = join(indexDir, generation);
            const filesBefore = new Set(readdirSync(genDir));
            const started = new Promise<void>((res) => {
              watcher = watch(genDir, (_event, name) => {
                if (name?.includes('.tmp')) res();
              });
            });
            writers = startWriters(server, CHECKPOINT_ROUND_WRITES);
            await Promise.race([started, writers.done]);
            await kill(server);
            counts.killsOnCheckpointStart++;
            if (checkpointInterrupted(genDir, filesBefore)) counts.checkpointsInterrupted++;
          } else if (kind === 'rebuild') {
            // Kill at a random point of a rebuild's progress (articles embedded so far), whatever its speed.
            writers = startWriters(server, WRITES_PER_ROUND);
            await writers.sent(oneTo(4));
            const res = await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: auth });
            expect(res.status).toBe(202);
            const { articlesTotal } = (await res.json()) as { articlesTotal: number };
            const target = Math.floor(random() * articlesTotal);
            await pollUntil(
              async () => {
                const status = await rebuildStatus(server);
                return status.state !== 'running' || status.articlesDone >= target;
              },
              // A fine, fixed interval: the kill should land close to the target.
              { what: `round ${round}: the rebuild to reach ${target} of ${articlesTotal} articles`, intervalMs: 20, maxIntervalMs: 20, attempts: 30_000 },
            );
            // A generation half built now that was not before the round: this rebuild's (a kill may have left others).
            const building = (await backend.halfBuilt(indexConfig())).some((g) => !halfBuiltBefore.has(g));
            await kill(server);
            counts.killsDuringRebuild++;
            if (building) counts.rebuildsInterrupted++;
            if ((await currentGen()) !== generation) counts.rebuildsSwappedBeforeKill++;
          } else {
            // At a random moment of the workload: once a random one of the round's writes has gone out, and a random
            // part of a typical write's duration (measured in this run) later, so the kill lands inside the work.
            writers = startWriters(server, WRITES_PER_ROUND);
            await writers.sent(oneTo(WRITES_PER_ROUND));
            await new Promise((r) => setTimeout(r, between(0, 2 * typicalWriteMs())));
            await kill(server);
            counts.killsAtRandom++;
          }
          await writers.stop();
        } finally {
          (watcher as FSWatcher | null)?.close();
          await server.kill('SIGKILL');
          await writers?.stop();
          current = null;
          ms.workload += performance.now() - t0;
        }

        const report = await timed('diskCheck', checkOnDisk);
        if (!report.ok) {
          counts.integrityFailures++;
          failures.push(`round ${round}: integrity check after the kill: ${report.problems.join('; ')}`);
        }
        expect(await currentGen()).toBeTruthy();
      }

      // Last start: everything verified once more, then a clean stop and the CLI's own check.
      const server = await startChildServer({ indexDir, seedsDir, env });
      current = server;
      try {
        await verify(server, ROUNDS);
      } finally {
        const exit = await server.kill('SIGTERM');
        expect(exit.code).toBe(0);
      }
      const cli = spawnSync(process.execPath, ['bin/quarry.js', 'check', '--json'], {
        cwd: ROOT,
        env: { ...process.env, QUARRY_INDEX_DIR: indexDir, QUARRY_MODELS_DIR: join(ROOT, 'models'), QUARRY_LOG_LEVEL: 'error', ...target.env },
        encoding: 'utf8',
        timeout: CHILD_HANG_GUARD_MS,
      });
      expect(cli.status, cli.stderr).toBe(0);
      const final = JSON.parse(cli.stdout) as IntegrityReport;

      const summary = {
        seed: SEED,
        seconds: Math.round((performance.now() - started) / 1000),
        ms: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(v)])),
        ...counts,
        articlesAtEnd: final.articles,
        chunksAtEnd: final.chunks,
        hnswPoints: final.hnsw.points,
        // Generations killed half built and still there (SQLite removes its .building folders at the next start).
        halfBuiltAtEnd: (await backend.halfBuilt(indexConfig())).length,
      };
      console.log(`crash test: ${JSON.stringify(summary)}`);
      expect(failures.slice(0, 20)).toEqual([]);
      expect(final.ok).toBe(true);
      expect(final.hnsw.live).toBe(final.chunks);
      expect(counts.kills).toBeGreaterThanOrEqual(ROUNDS - 1);
      expect(counts.acknowledgedChecked).toBeGreaterThan(counts.kills * 5);
      // At least one kill provably inside a checkpoint.
      if (backend.checkpoints) expect(counts.checkpointsInterrupted).toBeGreaterThan(0);
      expect(counts.rebuildsInterrupted).toBeGreaterThan(0);
      expect(counts.rebuildsCompleted).toBe(1);
      expect(counts.writesDuringCompletedRebuild).toBeGreaterThan(0);
    });
  });
}

function strip(v: Version): { title: string; paragraphs: string[] } {
  return { title: v.title, paragraphs: v.paragraphs };
}
