/**
 * `npm run bench -- postgres [--chunks 100000] [--queries 200] [--batch 8]`
 *
 * The PostgreSQL + pgvector backend against the embedded SQLite one, same run, same data: ~100k chunks of
 * cached real paragraph vectors (bench/cache; past the cache, perturbed copies of real vectors as in bench
 * search, with their paragraph text marked as a copy), 4 paragraphs per article, 200 sources (one source =
 * 0.5% of the chunks). No model: articles are written as prepared (chunked, embedded) batches through
 * IndexStore.write — the store's share of an ingest — and queries use their cached vectors, so the figures
 * are the backends', not the embedding's.
 * - ingest chunks/s through real Quarry processes: `quarry serve` children (model loaded, rate limits off),
 *   one for SQLite, one and then two on one PostgreSQL database, fed `--http-articles` articles (default 1000)
 *   by one HTTP client per process; the figure includes chunking and embedding, as in production.
 * - ingest chunks/s of the stores alone: SQLite (one writer, its only mode); PostgreSQL with one writer, and with two writers
 *   (two stores, each its own connection pool, as two Quarry processes would be; both in this one Node
 *   process, so the JavaScript side is shared) over the same first fifth of the chunks, then the rest.
 * - search p50/p99 (in-process runSearch, semantic and hybrid, queries interleaved between the backends).
 * - recall@10 of the unfiltered k-NN at the default ef_search against exact search (ties counted by score).
 * - a 0.5% filter (one source): scope + dense candidates (limit 100) p50/p99 and recall@10 against exact
 *   filtered search, as shipped (exact scan below sqrt(128·N) chunks, both backends) and forced through the
 *   filtered graph (hnswlib's filter callback / pgvector's iterative scan).
 * - size on disk of each index.
 * Needs the development PostgreSQL (`npm run postgres -- start`; started here when not running).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPrimary } from '../scripts/postgres-lib.mjs';
import { loadConfig } from '../src/config/config.ts';
import type { Article } from '../src/corpus/article.ts';
import type { Embedder } from '../src/embed/embedder.ts';
import { SearchRequestSchema } from '../src/search/schema.ts';
import { runSearch } from '../src/search/search.ts';
import { PgStore } from '../src/store/postgres/pg-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { IndexStore, PreparedArticle, SearchFilter } from '../src/store/store.ts';
import { flag, ROOT } from './lib/args.ts';
import { bbcTitles, scifactQueries } from './lib/corpus.ts';
import { similarity, type VectorSet, vectorSet } from './lib/dataset.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { type ServeChild, startServe } from './lib/serve-child.ts';
import { percentile, round } from './lib/stats.ts';
import { cachedParagraphs, loadCache } from './lib/vector-cache.ts';

const PER_ARTICLE = 4;
const SOURCES = 200;
const FILTER_SOURCE = 17;
const HNSW = { M: 16, efConstruction: 200, efSearch: 160 };
const IDENTITY = {
  model: {
    id: 'bench/cached-minilm-vectors',
    dtype: 'q4',
    pooling: 'mean' as const,
    normalized: true as const,
    dims: 384,
    maxTokens: 256,
    queryPrefix: '',
    passagePrefix: '',
    files: {},
  },
  chunker: { version: 'bench', minWords: 0, maxTokens: 256 },
};

function makeArticles(set: VectorSet, texts: string[]): PreparedArticle[] {
  const out: PreparedArticle[] = [];
  for (let j = 0; j * PER_ARTICLE < set.n; j++) {
    const paragraphs: string[] = [];
    const chunks: PreparedArticle['chunks'] = [];
    let at = 0;
    for (let p = 0; p < PER_ARTICLE && j * PER_ARTICLE + p < set.n; p++) {
      const i = j * PER_ARTICLE + p;
      const text = i < texts.length ? texts[i]! : `${texts[i % texts.length]!} (copy ${i})`;
      paragraphs.push(text);
      chunks.push({ paragraph: p, start: at, end: at + text.length, text, vector: set.data.slice(i * set.dims, (i + 1) * set.dims) });
      at += text.length + 2;
    }
    const year = 2015 + (j % 10);
    const article: Article = {
      id: `b${j}`,
      title: paragraphs[0]!.split(/\s+/).slice(0, 8).join(' '),
      date: `${year}-0${1 + (j % 9)}-1${j % 10}`,
      source: `src-${j % SOURCES}`,
      url: null,
      tags: [],
      paragraphs,
    };
    out.push({ article, origin: 'bench', chunks });
  }
  return out;
}

const batches = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, (i + 1) * n));

async function ingest(stores: IndexStore[], items: PreparedArticle[], batch: number): Promise<{ seconds: number; chunksPerSecond: number; chunks: number }> {
  const chunks = items.reduce((s, a) => s + a.chunks.length, 0);
  const parts = batches(items, batch);
  const t = performance.now();
  // Writer w takes batches w, w + W, w + 2W, …: each store writes its own stream, all at once.
  await Promise.all(
    stores.map(async (store, w) => {
      for (let i = w; i < parts.length; i += stores.length) await store.write(parts[i]!.map((article) => ({ op: 'upsert', article })));
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  return { seconds: round(seconds, 2), chunksPerSecond: round(chunks / seconds, 1), chunks };
}

const API_KEY = 'bench-postgres-key';

/**
 * The whole write path of real Quarry processes: `quarry serve` children (the model loaded, rate limits off),
 * each with one client POSTing batches of `batch` articles; the servers chunk, embed and store them. Client w
 * sends batches w, w + P, … to server w, all at once.
 */
async function ingestHttp(
  servers: ServeChild[],
  items: PreparedArticle[],
  batch: number,
): Promise<{ seconds: number; chunksPerSecond: number; chunks: number; articles: number; batchP50Ms: number; batchP99Ms: number }> {
  const bodies = batches(
    items.map(({ article }) => ({ id: article.id, title: article.title, date: article.date, source: article.source, text: article.paragraphs.join('\n\n') })),
    batch,
  );
  let chunks = 0;
  const batchMs: number[] = [];
  const t = performance.now();
  await Promise.all(
    servers.map(async (server, w) => {
      for (let i = w; i < bodies.length; i += servers.length) {
        const b = performance.now();
        const res = await fetch(`${server.url}/articles`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ articles: bodies[i] }),
        });
        if (res.status !== 201) throw new Error(`POST /articles answered ${res.status}: ${await res.text()}`);
        const ack = (await res.json()) as { articles: Array<{ chunks: number }> };
        chunks += ack.articles.reduce((n, a) => n + a.chunks, 0);
        batchMs.push(performance.now() - b);
      }
    }),
  );
  const seconds = (performance.now() - t) / 1000;
  return {
    seconds: round(seconds, 2),
    chunksPerSecond: round(chunks / seconds, 1),
    chunks,
    articles: items.length,
    batchP50Ms: round(percentile(batchMs, 50), 1),
    batchP99Ms: round(percentile(batchMs, 99), 1),
  };
}

/** `processes` Quarry servers on one index (started one after the other: the first creates it), then the ingest. */
async function serveIngest(
  env: Record<string, string>,
  processes: number,
  items: PreparedArticle[],
  batch: number,
): Promise<Awaited<ReturnType<typeof ingestHttp>> & { processes: number }> {
  const seeds = mkdtempSync(join(tmpdir(), 'quarry-bench-pg-seeds-'));
  const servers: ServeChild[] = [];
  try {
    for (let i = 0; i < processes; i++) {
      servers.push(
        await startServe({
          ...env,
          QUARRY_SEEDS_DIR: seeds,
          QUARRY_API_KEY: API_KEY,
          // One client address sends every request: the per-address limits are not under test.
          QUARRY_SEARCH_RATE: '0',
          QUARRY_WRITE_RATE: '0',
        }),
      );
    }
    // Warm-up outside the timing: each server's first embedding (model sessions, JIT).
    await ingestHttp(servers, items.slice(0, servers.length), 1);
    return { processes, ...(await ingestHttp(servers, items.slice(servers.length), batch)) };
  } finally {
    for (const s of servers) await s.stop();
    rmSync(seeds, { recursive: true, force: true });
  }
}

async function freshDatabase(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name}`);
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function emptyGeneration(store: IndexStore): Promise<void> {
  const b = await store.beginGeneration({ source: { kind: 'empty' } });
  await b.publish({ folderFiles: new Map(), buildSeconds: 0 });
}

const stats = (xs: number[]) => ({
  p50: round(percentile(xs, 50), 2),
  p99: round(percentile(xs, 99), 2),
  mean: round(xs.reduce((a, b) => a + b, 0) / xs.length, 2),
});

export async function run(args: string[]): Promise<void> {
  const n = Number(flag(args, 'chunks', '100000'));
  const queryCount = Number(flag(args, 'queries', '200'));
  const batch = Number(flag(args, 'batch', '8'));
  const httpArticles = Number(flag(args, 'http-articles', '1000'));
  const result = newResult('postgres', args);
  const cluster = await startPrimary({ log: (l) => console.error(`postgres: ${l}`) });
  const cache = loadCache();
  const set = vectorSet(cache, n);
  const texts = cachedParagraphs(cache.header).map((p) => p.text);
  const items = makeArticles(set, texts);
  // One writer against two over the same first fifth of the chunks (an empty index growing to 20%), then the
  // two go on to the end; SQLite writes the same fifth, then the rest.
  const half = Math.floor(items.length / 5);
  console.error(`${items.length} articles, ${n} chunks (${set.real} real vectors, ${set.synthetic} perturbed copies)`);

  // --- ingest through real Quarry processes (model included): SQLite's one process, PostgreSQL's one and two
  const httpItems = items.slice(0, httpArticles);
  const httpSqliteDir = mkdtempSync(join(tmpdir(), 'quarry-bench-pg-http-'));
  const viaServe = {
    sqlite: await serveIngest({ QUARRY_INDEX_DIR: httpSqliteDir }, 1, httpItems, batch),
    postgresOne: await serveIngest({ QUARRY_DATABASE_URL: await freshDatabase(cluster.url, 'quarry_bench_http_one') }, 1, httpItems, batch),
    postgresTwo: await serveIngest({ QUARRY_DATABASE_URL: await freshDatabase(cluster.url, 'quarry_bench_http_two') }, 2, httpItems, batch),
  };
  rmSync(httpSqliteDir, { recursive: true, force: true });
  console.error('through quarry serve', viaServe);

  // --- ingest
  const sqliteRoot = mkdtempSync(join(tmpdir(), 'quarry-bench-pg-sqlite-'));
  const sqlite = await SqliteStore.open({
    root: sqliteRoot,
    identity: IDENTITY,
    access: 'write',
    hnsw: HNSW,
    checkpointEvery: 1_000_000,
    compactDeletedRatio: 0.2,
  });
  await emptyGeneration(sqlite);
  const sqliteFirst = await ingest([sqlite], items.slice(0, half), batch);
  const sqliteSecond = await ingest([sqlite], items.slice(half), batch);
  console.error('sqlite', sqliteFirst, sqliteSecond);

  const url1 = await freshDatabase(cluster.url, 'quarry_bench_one');
  const one = await PgStore.open({ url: url1, identity: IDENTITY, access: 'write', hnsw: HNSW });
  await emptyGeneration(one);
  const pgOne = await ingest([one], items.slice(0, half), batch);
  console.error('postgres, 1 writer', pgOne);
  await one.close();

  const url2 = await freshDatabase(cluster.url, 'quarry_bench_two');
  const a = await PgStore.open({ url: url2, identity: IDENTITY, access: 'write', hnsw: HNSW });
  await emptyGeneration(a);
  const b = await PgStore.open({ url: url2, identity: IDENTITY, access: 'write', hnsw: HNSW });
  const pgTwoFirst = await ingest([a, b], items.slice(0, half), batch);
  const pgTwoSecond = await ingest([a, b], items.slice(half), batch);
  console.error('postgres, 2 writers', pgTwoFirst, pgTwoSecond);
  await b.close();
  const c = new pg.Client({ connectionString: url2 });
  await c.connect();
  await c.query('VACUUM ANALYZE');
  await c.end();
  await a.close();
  result.ingest = {
    batchArticles: batch,
    sqlite: { firstHalf: sqliteFirst, secondHalf: sqliteSecond },
    postgresOneWriter: { firstHalf: pgOne },
    postgresTwoWriters: { firstHalf: pgTwoFirst, secondHalf: pgTwoSecond },
    viaServe,
  };

  // --- searches
  const config = loadConfig({ env: {}, cwd: ROOT, overrides: { logLevel: 'silent', efSearch: HNSW.efSearch } });
  const pgStore = await PgStore.open({ url: url2, identity: IDENTITY, access: 'read', hnsw: HNSW });
  const pgGraph = await PgStore.open({ url: url2, identity: IDENTITY, access: 'read', hnsw: HNSW, exactScanMaxChunks: 0 });
  const sqliteGraph = await SqliteStore.open({
    root: sqliteRoot,
    identity: IDENTITY,
    access: 'read',
    hnsw: HNSW,
    checkpointEvery: 1_000_000,
    compactDeletedRatio: 0.2,
    exactScanMaxChunks: 0,
  });
  const sq = scifactQueries();
  const titles = bbcTitles();
  const dims = set.dims;
  const queries: Array<{ text: string; vector: Float32Array }> = [];
  for (let i = 0; queries.length < queryCount; i++) {
    queries.push({ text: sq[i]!, vector: cache.queries.slice(i * dims, (i + 1) * dims) });
    const t = cache.header.queries.scifact + i;
    if (queries.length < queryCount) queries.push({ text: titles[i]!, vector: cache.queries.slice(t * dims, (t + 1) * dims) });
  }
  const byText = new Map(queries.map((q) => [q.text, q.vector]));
  const embedder = {
    info: IDENTITY.model,
    embedQuery: async (t: string) => byText.get(t)!,
    embedPassages: async () => [],
    countTokens: () => 0,
    close: async () => {},
  } as unknown as Embedder;

  const backends: Array<[string, IndexStore]> = [
    ['sqlite', sqlite],
    ['postgres', pgStore],
  ];
  const latency: Record<string, Record<string, number[]>> = { sqlite: { semantic: [], hybrid: [] }, postgres: { semantic: [], hybrid: [] } };
  for (const mode of ['semantic', 'hybrid'] as const) {
    // Warm-up: the first queries of each backend are not counted (caches, prepared plans).
    for (const [, store] of backends)
      for (const q of queries.slice(0, 10)) await runSearch(store, embedder, SearchRequestSchema.parse({ q: q.text, mode }), config);
    for (const q of queries) {
      for (const [name, store] of backends) {
        const t = performance.now();
        await runSearch(store, embedder, SearchRequestSchema.parse({ q: q.text, mode }), config);
        latency[name]![mode]!.push(performance.now() - t);
      }
    }
  }

  // --- recall@10, unfiltered and filtered
  const filter: SearchFilter = { sources: [`src-${FILTER_SOURCE}`] };
  const inFilter = (i: number) => Math.floor(i / PER_ARTICLE) % SOURCES === FILTER_SOURCE;
  const kth = (q: Float32Array, pred: (i: number) => boolean) => {
    const top: number[] = [];
    for (let i = 0; i < set.n; i++) {
      if (!pred(i)) continue;
      top.push(similarity(set, q, i));
    }
    top.sort((x, y) => y - x);
    return top[9] ?? Number.NEGATIVE_INFINITY;
  };
  const recallRows: Record<string, { unfiltered: number[]; filtered: number[]; filteredMs: number[]; paths: Record<string, number> }> = {};
  const variants: Array<[string, IndexStore]> = [
    ['sqlite', sqlite],
    ['postgres', pgStore],
    ['sqlite, filtered graph forced', sqliteGraph],
    ['postgres, iterative scan forced', pgGraph],
  ];
  for (const [name] of variants) recallRows[name] = { unfiltered: [], filtered: [], filteredMs: [], paths: {} };
  let filteredChunks = 0;
  for (const q of queries) {
    const all = kth(q.vector, () => true);
    const some = kth(q.vector, inFilter);
    for (const [name, store] of variants) {
      const r = store.reader();
      try {
        if (!name.includes('forced')) {
          const plain = await r.vectorCandidates({ vector: q.vector, limit: 10 });
          recallRows[name]!.unfiltered.push(plain.chunks.filter((c) => c.score >= all - 1e-5).length / 10);
        }
        const t = performance.now();
        const scope = await r.scope(filter);
        const found = await r.vectorCandidates({ vector: q.vector, limit: 100, scope });
        recallRows[name]!.filteredMs.push(performance.now() - t);
        filteredChunks = scope.chunks;
        recallRows[name]!.paths[found.path] = (recallRows[name]!.paths[found.path] ?? 0) + 1;
        recallRows[name]!.filtered.push(found.chunks.slice(0, 10).filter((c) => c.score >= some - 1e-5).length / 10);
      } finally {
        r.release();
      }
    }
  }
  const mean = (xs: number[]) => (xs.length ? round(xs.reduce((x, y) => x + y, 0) / xs.length, 4) : null);

  const sqliteStats = await sqlite.stats();
  const pgStats = await pgStore.stats();
  result.search = Object.fromEntries(Object.entries(latency).map(([k, v]) => [k, { semantic: stats(v.semantic!), hybrid: stats(v.hybrid!) }]));
  result.recall = Object.fromEntries(
    Object.entries(recallRows).map(([k, v]) => [
      k,
      { unfilteredAt10: mean(v.unfiltered), filteredAt10: mean(v.filtered), filteredMs: stats(v.filteredMs), paths: v.paths },
    ]),
  );
  result.filter = { source: `src-${FILTER_SOURCE}`, chunks: filteredChunks, selectivity: round(filteredChunks / n, 4) };
  result.disk = { sqlite: sqliteStats.disk, postgres: pgStats.disk, postgresVersion: pgStats.database };
  result.chunks = n;
  result.queries = queries.length;
  const file = writeResult(result);

  const s = result.search as Record<string, Record<string, { p50: number; p99: number }>>;
  const ing = result.ingest as Record<string, Record<string, { chunksPerSecond: number; seconds: number; chunks: number }>>;
  const rec = result.recall as Record<
    string,
    { unfilteredAt10: number | null; filteredAt10: number; filteredMs: { p50: number; p99: number }; paths: Record<string, number> }
  >;
  const mb = (x: number) => round(x / 1024 / 1024, 1);
  const vs = viaServe;
  const rows: Row[] = [
    [
      `ingest chunks/s through quarry serve, 1 process (${vs.sqlite.chunks} chunks, embedding included)`,
      vs.sqlite.chunksPerSecond,
      vs.postgresOne.chunksPerSecond,
      round(vs.postgresOne.chunksPerSecond / vs.sqlite.chunksPerSecond, 2),
    ],
    [
      'ingest chunks/s through quarry serve, 2 processes on one database',
      '—',
      vs.postgresTwo.chunksPerSecond,
      `${round(vs.postgresTwo.chunksPerSecond / vs.postgresOne.chunksPerSecond, 2)} of 1 process`,
    ],
    [
      'ingest chunks/s, 1 writer (first 20%)',
      ing.sqlite!.firstHalf!.chunksPerSecond,
      ing.postgresOneWriter!.firstHalf!.chunksPerSecond,
      round(ing.postgresOneWriter!.firstHalf!.chunksPerSecond / ing.sqlite!.firstHalf!.chunksPerSecond, 2),
    ],
    ['ingest chunks/s, 2 writers (first 20%)', '—', ing.postgresTwoWriters!.firstHalf!.chunksPerSecond, '—'],
    [
      'ingest chunks/s, 20-100% (SQLite 1 / PostgreSQL 2 writers)',
      ing.sqlite!.secondHalf!.chunksPerSecond,
      ing.postgresTwoWriters!.secondHalf!.chunksPerSecond,
      '—',
    ],
    [
      'semantic search p50 / p99 ms',
      `${s.sqlite!.semantic!.p50} / ${s.sqlite!.semantic!.p99}`,
      `${s.postgres!.semantic!.p50} / ${s.postgres!.semantic!.p99}`,
      round(s.postgres!.semantic!.p50 / s.sqlite!.semantic!.p50, 2),
    ],
    [
      'hybrid search p50 / p99 ms',
      `${s.sqlite!.hybrid!.p50} / ${s.sqlite!.hybrid!.p99}`,
      `${s.postgres!.hybrid!.p50} / ${s.postgres!.hybrid!.p99}`,
      round(s.postgres!.hybrid!.p50 / s.sqlite!.hybrid!.p50, 2),
    ],
    ['recall@10, unfiltered, ef_search 160', rec.sqlite!.unfilteredAt10!, rec.postgres!.unfilteredAt10!, '—'],
    [
      `0.5% filter (${filteredChunks} chunks), as shipped: recall@10, p50 / p99 ms`,
      `${rec.sqlite!.filteredAt10}, ${rec.sqlite!.filteredMs.p50} / ${rec.sqlite!.filteredMs.p99} (${Object.keys(rec.sqlite!.paths).join('+')})`,
      `${rec.postgres!.filteredAt10}, ${rec.postgres!.filteredMs.p50} / ${rec.postgres!.filteredMs.p99} (${Object.keys(rec.postgres!.paths).join('+')})`,
      '—',
    ],
    [
      '0.5% filter through the graph: recall@10, p50 / p99 ms',
      `${rec['sqlite, filtered graph forced']!.filteredAt10}, ${rec['sqlite, filtered graph forced']!.filteredMs.p50} / ${rec['sqlite, filtered graph forced']!.filteredMs.p99} (${Object.keys(rec['sqlite, filtered graph forced']!.paths).join('+')})`,
      `${rec['postgres, iterative scan forced']!.filteredAt10}, ${rec['postgres, iterative scan forced']!.filteredMs.p50} / ${rec['postgres, iterative scan forced']!.filteredMs.p99} (${Object.keys(rec['postgres, iterative scan forced']!.paths).join('+')})`,
      '—',
    ],
    [
      'size on disk MiB (HNSW part)',
      `${mb(sqliteStats.disk.totalBytes)} (${mb(sqliteStats.disk.hnswBytes)})`,
      `${mb(pgStats.disk.totalBytes)} (${mb(pgStats.disk.hnswBytes)})`,
      round(pgStats.disk.totalBytes / sqliteStats.disk.totalBytes, 2),
    ],
  ];
  const body = `${markdownTable(['at ~100k chunks', 'SQLite', 'PostgreSQL', 'PostgreSQL / SQLite'], rows)}\n\nResults: \`${file.replace(`${ROOT}/`, '')}\`.`;
  updateDoc('postgres', result, body);
  console.log(body);

  await pgStore.close();
  await pgGraph.close();
  await sqliteGraph.close();
  await sqlite.close();
  rmSync(sqliteRoot, { recursive: true, force: true });
}
