import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, type FSWatcher, mkdtempSync, readdirSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { openQuarry, rebuildIndex } from '../src/core/open-or-build.ts';
import type { Embedder } from '../src/embed/embedder.ts';
import { createEmbedder } from '../src/runtime.ts';
import type { IntegrityReport } from '../src/store/store.ts';
import { type ChildServer, startChildServer } from './helpers/child-server.ts';

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
 */

const ROOT = resolve(import.meta.dirname, '..');
const API_KEY = 'crash-test-key-0123456789abcdef';
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 21);
const SEED = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);
const WRITERS = 3;

/** mulberry32: a seeded generator, so a failing run can be replayed with CRASH_SEED. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const between = (lo: number, hi: number) => lo + random() * (hi - lo);

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

let embedder: Embedder;
const tempDirs: string[] = [];
let indexDir: string;
let seedsDir: string;

beforeAll(async () => {
  indexDir = mkdtempSync(join(tmpdir(), 'quarry-crash-index-'));
  seedsDir = mkdtempSync(join(tmpdir(), 'quarry-crash-seeds-'));
  tempDirs.push(indexDir, seedsDir);
  cpSync(join(ROOT, 'seeds'), seedsDir, { recursive: true });
  embedder = await createEmbedder(loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, seedsDir, modelsDir: join(ROOT, 'models') } }));
});
afterAll(async () => {
  await embedder?.close();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const currentGen = () => join(indexDir, readFileSync(join(indexDir, 'CURRENT'), 'utf8').trim());

/** Opens the index on disk read-only in this process, exactly as a start would (checkpoint + replay). */
async function checkOnDisk(): Promise<IntegrityReport> {
  const config = loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, seedsDir, modelsDir: join(ROOT, 'models'), logLevel: 'silent' } });
  const q = await openQuarry({ config, embedder, access: 'read' });
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

describe('crash safety under SIGKILL', () => {
  it(`loses no acknowledged write and shows no partial article across ${ROUNDS} kills`, { timeout: 300_000 }, async () => {
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
    };
    const failures: string[] = [];
    const ms = { start: 0, verify: 0, workload: 0, diskCheck: 0 };
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
          const body = batch.length === 1 ? { id: ids[0], ...strip(versions[0]!) } : { articles: batch.map((t, i) => ({ id: t.id, ...strip(versions[i]!) })) };
          const res = await fetch(`${server.url}/articles`, { method: 'POST', headers: json, body: JSON.stringify(body) });
          if (res.status === 201) {
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
        const res = del
          ? await fetch(`${server.url}/articles/${t.id}`, { method: 'DELETE', headers: auth })
          : await fetch(`${server.url}/articles`, { method: 'POST', headers: json, body: JSON.stringify({ id: t.id, ...strip(v!) }) });
        if (res.status === (del ? 204 : 201)) {
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

    function startWriters(server: ChildServer): { stop: () => Promise<void> } {
      let stopped = false;
      const loops = Array.from({ length: WRITERS }, async () => {
        while (!stopped && (await writeOnce(server)));
      });
      return {
        stop: async () => {
          stopped = true;
          await Promise.all(loops);
        },
      };
    }

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
    const completeRebuildAt = Math.min(5, ROUNDS - 1);
    let rebuildMs = 4000;
    // The verification sends hundreds of searches from one address, 8 at a time: no rate limit, no queue deadline.
    const env = {
      QUARRY_API_KEY: API_KEY,
      QUARRY_CHECKPOINT_EVERY: '8',
      QUARRY_LOG_LEVEL: 'error',
      QUARRY_SEARCH_RATE: '0',
      QUARRY_SEARCH_QUEUE_TIMEOUT_MS: '0',
    };

    for (let round = 0; round < ROUNDS; round++) {
      const server = await timed('start', () => startChildServer({ indexDir, seedsDir, env, timeoutMs: 90_000 }));
      const t0 = performance.now();
      try {
        if (round > 0) await timed('verify', () => verify(server, round));
        const writers = startWriters(server);
        const genDir = currentGen();
        const filesBefore = new Set(readdirSync(genDir));
        let watcher: FSWatcher | null = null;
        const kind = plan[round]!;

        if (round === completeRebuildAt) {
          // A rebuild that finishes while writes keep coming: the catch-up must carry them into the new index.
          await new Promise((r) => setTimeout(r, 300));
          const before = counts.acknowledgedWrites;
          const t0 = performance.now();
          expect((await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: auth })).status).toBe(202);
          let state = 'running';
          while (state === 'running') {
            await new Promise((r) => setTimeout(r, 100));
            state = ((await (await fetch(`${server.url}/admin/rebuild`, { headers: auth })).json()) as { state: string }).state;
          }
          rebuildMs = performance.now() - t0;
          expect(state).toBe('succeeded');
          expect(currentGen()).not.toBe(genDir);
          counts.rebuildsCompleted++;
          counts.writesDuringCompletedRebuild += counts.acknowledgedWrites - before;
          await writers.stop();
          await verify(server, round); // on the live server, before any kill
          await server.kill('SIGKILL');
          counts.kills++;
          counts.killsAtRandom++;
        } else if (kind === 'checkpoint') {
          // Kill the moment a checkpoint starts writing (its temporary graph or checkpoint.json file appears).
          await new Promise<void>((res) => {
            const fallback = setTimeout(res, 5000);
            watcher = watch(genDir, (_event, name) => {
              if (name?.includes('.tmp')) {
                clearTimeout(fallback);
                res();
              }
            });
          });
          await server.kill('SIGKILL');
          (watcher as FSWatcher | null)?.close();
          counts.kills++;
          counts.killsOnCheckpointStart++;
          if (checkpointInterrupted(genDir, filesBefore)) counts.checkpointsInterrupted++;
        } else if (kind === 'rebuild') {
          await new Promise((r) => setTimeout(r, between(100, 400)));
          const res = await fetch(`${server.url}/admin/rebuild`, { method: 'POST', headers: auth });
          expect(res.status).toBe(202);
          await new Promise((r) => setTimeout(r, between(50, rebuildMs * 1.2)));
          const building = readdirSync(indexDir).some((f) => f.endsWith('.building'));
          await server.kill('SIGKILL');
          counts.kills++;
          counts.killsDuringRebuild++;
          if (building) counts.rebuildsInterrupted++;
          if (currentGen() !== genDir) counts.rebuildsSwappedBeforeKill++;
        } else {
          await new Promise((r) => setTimeout(r, between(150, 1500)));
          await server.kill('SIGKILL');
          counts.kills++;
          counts.killsAtRandom++;
        }
        await writers.stop();
      } finally {
        await server.kill('SIGKILL');
        ms.workload += performance.now() - t0;
      }

      const report = await timed('diskCheck', checkOnDisk);
      if (!report.ok) {
        counts.integrityFailures++;
        failures.push(`round ${round}: integrity check after the kill: ${report.problems.join('; ')}`);
      }
      expect(existsSync(join(indexDir, 'CURRENT'))).toBe(true);
    }

    // Last start: everything verified once more, then a clean stop and the CLI's own check.
    const server = await startChildServer({ indexDir, seedsDir, env, timeoutMs: 90_000 });
    try {
      await verify(server, ROUNDS);
    } finally {
      const exit = await server.kill('SIGTERM');
      expect(exit.code).toBe(0);
    }
    const cli = spawnSync(process.execPath, ['bin/quarry.js', 'check', '--json'], {
      cwd: ROOT,
      env: { ...process.env, QUARRY_INDEX_DIR: indexDir, QUARRY_MODELS_DIR: join(ROOT, 'models'), QUARRY_LOG_LEVEL: 'error' },
      encoding: 'utf8',
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
    };
    console.log(`crash test: ${JSON.stringify(summary)}`);
    expect(failures.slice(0, 20)).toEqual([]);
    expect(final.ok).toBe(true);
    expect(final.hnsw.live).toBe(final.chunks);
    expect(counts.kills).toBeGreaterThanOrEqual(20);
    expect(counts.acknowledgedChecked).toBeGreaterThan(counts.kills * 5);
    expect(counts.checkpointsInterrupted).toBeGreaterThan(0); // at least one kill provably inside a checkpoint
    expect(counts.rebuildsInterrupted).toBeGreaterThan(0);
    expect(counts.rebuildsCompleted).toBe(1);
    expect(counts.writesDuringCompletedRebuild).toBeGreaterThan(0);
  });
});

/**
 * Compaction and replay, in process. The graph logic does not depend on the model, so a deterministic
 * fake embedder (a hash of the text, normalised) stands in for it: 1,200 chunks in a second, not minutes.
 * A "crash" is a copy of the index folder taken while the index is open, between writes: what a kill
 * leaves on disk.
 */
describe('compaction and replay after a crash (fake embedder)', () => {
  const DIMS = 32;
  // A hash, not a bag of characters: near-identical texts must not get near-identical vectors (HNSW cannot
  // reach a point whose neighbours all hold closer duplicates, which real embeddings of distinct text are not).
  const vectorOf = (text: string): Float32Array => {
    const bytes = createHash('sha512').update(text).digest();
    const v = Float32Array.from({ length: DIMS }, (_, i) => bytes[i]! / 255 - 0.5);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  };
  const fake: Embedder = {
    info: {
      id: 'test/hash-embedder',
      dtype: 'none',
      pooling: 'mean',
      normalized: true,
      dims: DIMS,
      maxTokens: 256,
      queryPrefix: '',
      passagePrefix: '',
      files: {},
    },
    embedPassages: async (texts) => texts.map(vectorOf),
    embedQuery: async (t) => vectorOf(t),
    countTokens: (t) => t.split(/\s+/).length + 2,
    close: async () => {},
  };
  const article = (n: number) => ({
    id: `a${n}`,
    title: `Article ${n}`,
    date: null,
    source: null,
    url: null,
    paragraphs: [0, 1, 2, 3].map((p) => `Paragraph ${p} of article ${n} with enough words to stay a chunk of its own zz${n}p${p}.`),
  });

  it('compacts the graph past the deleted-points threshold, and a copy taken mid-run reopens whole with the replayed changes checkpointed', async () => {
    const root = mkdtempSync(join(tmpdir(), 'quarry-compact-'));
    tempDirs.push(root);
    const config = loadConfig({
      env: {},
      cwd: ROOT,
      overrides: { indexDir: join(root, 'live'), seedsDir: join(root, 'none'), checkpointEvery: 50, compactDeletedRatio: 0.2, logLevel: 'silent' },
    });
    await rebuildIndex({ config, embedder: fake, from: { articles: [], source: { kind: 'empty' } } });
    const q = await openQuarry({ config, embedder: fake, access: 'write' });
    let crashCopy: string;
    try {
      for (let n = 0; n < 300; n += 20)
        await q.upsertArticles(
          Array.from({ length: 20 }, (_, i) => article(n + i)),
          'test',
        );
      expect(await q.stats()).toMatchObject({ articles: 300, chunks: 1200, deleted: 0 });
      for (let n = 0; n < 90; n++) expect(await q.deleteArticle(`a${n}`)).toBe(true);
      // 360 chunks deleted of 1,200: compaction ran once the deleted share passed 20%, and dropped them.
      const s = await q.stats();
      expect(s.chunks).toBe(840);
      expect(s.hnsw.points).toBeLessThan(1200);
      expect(s.deleted).toBeLessThan(0.2 * s.hnsw.points + 1);
      expect((await q.integrity()).problems).toEqual([]);
      // Writes after the last checkpoint, then the "crash".
      await q.upsertArticles([article(1000), { ...article(100), paragraphs: ['Replaced text for article one hundred, long enough to be a chunk.'] }], 'test');
      expect(await q.deleteArticle('a101')).toBe(true);
      expect((await q.stats()).changesSinceCheckpoint).toBeGreaterThan(0);
      crashCopy = join(root, 'crashed');
      cpSync(config.indexDir, crashCopy, { recursive: true });
    } finally {
      await q.close();
    }

    const copyConfig = { ...config, indexDir: crashCopy };
    const reopened = await openQuarry({ config: copyConfig, embedder: fake, access: 'write' });
    try {
      expect((await reopened.integrity()).problems).toEqual([]);
      expect((await reopened.stats()).chunks).toBe(840 + 4 - 4 + 1 - 4);
      expect((await reopened.stats()).changesSinceCheckpoint).toBeGreaterThan(0); // replayed, not yet on disk
      const find = async (q: string, mode: 'lexical' | 'semantic') =>
        (await reopened.search({ q, k: 3, mode, explain: false, evidence: 3 } as never)).results.map((r) => r.article.id);
      expect(await find('zz1000p2', 'lexical')).toEqual(['a1000']);
      expect((await find(article(1000).paragraphs[2]!, 'semantic'))[0]).toBe('a1000');
      expect(await find('zz101p0', 'lexical')).toEqual([]);
      expect(await find(article(101).paragraphs[0]!, 'semantic')).not.toContain('a101');
      expect(await find('zz100p1', 'lexical')).toEqual([]);
      expect(await find('zz5p1', 'lexical')).toEqual([]);
      expect(await find('zz200p3', 'lexical')).toEqual(['a200']);
    } finally {
      await reopened.close();
    }
    // close() wrote the replayed changes into a checkpoint: the next start has nothing to replay.
    const gen = join(crashCopy, readFileSync(join(crashCopy, 'CURRENT'), 'utf8').trim());
    const again = await openQuarry({ config: copyConfig, embedder: fake, access: 'write' });
    try {
      expect((await again.stats()).changesSinceCheckpoint).toBe(0);
      expect((await again.integrity()).problems).toEqual([]);
      expect(readdirSync(gen).filter((f) => f.includes('.tmp'))).toEqual([]);
    } finally {
      await again.close();
    }
  });
});

function strip(v: Version): { title: string; paragraphs: string[] } {
  return { title: v.title, paragraphs: v.paragraphs };
}
