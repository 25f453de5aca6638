import { resolve } from 'node:path';
import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { QuarryError } from '../errors.ts';
import { formatZodIssue, issuePath } from '../validation.ts';

const bool = z
  .union([z.boolean(), z.enum(['1', '0', 'true', 'false', 'yes', 'no', ''])])
  .transform((v) => v === true || v === '1' || v === 'true' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Passage sessions x threads, chosen by measurement on 2 cores (docs/benchmarks.md, rebuild): two sessions of one
 * thread each rebuilt bbc-news at 1.3-1.5x one session of two threads (ONNX Runtime's intra-op threads wait for
 * each other on these small matrices; two sessions keep both cores on the model), for ~600 MiB more peak RSS.
 */
const PASSAGE_SESSIONS = 2;
const PASSAGE_THREADS = 1;

/**
 * Every setting in one validated place. Sources, later wins: defaults < environment (QUARRY_*, PORT) <
 * CLI flags. An invalid value stops start-up with a message naming the setting.
 */
export const ConfigSchema = z
  .object({
    port: int(0, 65535).default(3000),
    host: z.string().min(1).default('127.0.0.1'),
    indexDir: z.string().min(1).default('index'),
    /**
     * postgres://… : store the index in PostgreSQL + pgvector instead of SQLite files in indexDir, shared by
     * any number of Quarry processes (no lock file). Unset: the embedded SQLite backend.
     */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    /** postgres://… of a streaming replica that searches read from (writes still go to databaseUrl). */
    databaseReadUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    seedsDir: z.string().min(1).default('seeds'),
    modelsDir: z.string().min(1).default('models'),
    model: z.string().min(1).default('onnx-community/all-MiniLM-L6-v2-ONNX'),
    /** q8 (int8, MatMulInteger): SciFact nDCG@10 within 0.005 of q4 in every mode (docs/relevance.md), faster on CPUs with VNNI. */
    dtype: z.enum(['fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4']).default('q8'),
    pooling: z.enum(['mean', 'cls']).default('mean'),
    queryPrefix: z.string().default(''),
    passagePrefix: z.string().default(''),
    /** The model's window in tokens; longer paragraphs are split on sentences. */
    maxTokens: int(16, 8192).default(256),
    /** Loading a model from the Hugging Face hub is off unless the operator turns it on. */
    allowRemoteModels: bool.default(false),
    threads: int(1, 64).default(2),
    /**
     * Passages per model call on the passage sessions (builds, rebuilds, writes). 8, measured against 32 in one session
     * (docs/history/soak.md, "The ceiling against the batch size"): `rebuild-index` 1.20x faster (139-142 against
     * 114-118 chunks/s) at half the peak RSS (654-679 against 1,204-1,210 MiB); live ingest with searches the same
     * (80-83 against 80-86 chunks/s); and ONNX Runtime's arena, which keeps a session's largest working set for
     * the life of the process, stays near where it was after a bulk write (+27 MiB against +490-526).
     */
    embedBatchSize: int(1, 512).default(8),
    /** ONNX Runtime graph optimisation level of every model session ('basic' measured fastest, same quality:
     * docs/benchmarks.md, graph-opt). */
    onnxGraphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('basic'),
    /** Embed passages (writes, rebuilds) in a worker thread with its own model session, so they never
     * block searches: onnxruntime-node runs a model call synchronously on its calling thread. */
    passageWorker: bool.default(true),
    /** Embed queries in a worker thread with its own model session, so a search runs BM25 on the main
     * thread while the model works, and the event loop keeps serving other requests (bench search). */
    queryWorker: bool.default(true),
    /**
     * Run searches' SQLite look-ups (BM25, highlights, chunk texts, article fields; about half of a search's
     * main-thread time) in a worker thread with read-only connections of its own, so the thread that reads requests
     * does less per search. With QUARRY_SEARCH_CONCURRENCY=4 it met the 2x overload target in 5 of 6 runs (1.99-2.55x
     * the unloaded p99; 3.72x in the sixth; the defaults 5 of 10), at a read-only capacity 11-30% lower. Off by
     * default: in the soak (writes and a live rebuild at 80% of its capacity) it refused 19 and 6 searches during
     * rebuilds before a rebuild's main-thread steps waited at the live pace, and none in the two soaks since, whose RSS
     * before the rebuild rose past the flat limit (docs/history/overload.md). Its first cost, half the search
     * rate with 1 write in 20 requests (each write made the worker's memory-mapped connection drop its map), went when
     * read-only connections began reading with read(). SQLite only.
     */
    searchReadWorker: bool.default(false),
    /**
     * A search computes in event-loop turns of its own: it yields before BM25 and again when its query vector
     * arrives, so the callbacks that read requests stay short. The loop accepts one new connection a turn (libuv
     * 1.45+), and at the onset of an overload from idle new connections waited in the kernel's accept queue, unseen
     * by the search queue, behind turns made long by searches. On by default since 2026-12-02 06:40: in 2x rows beside
     * it off, the admitted p99 was within 3x the unloaded one in 8 of 10 runs (1.78-4.08x) against 6 of 9 off, and
     * 80% of capacity was refused a median 1.5% against 9.2% (docs/history/overload.md); two 30-minute soaks with
     * writes and a live rebuild refused nothing. It was off before because two soaks refused 10-15 searches during a
     * rebuild, when a search piece waited behind the rebuild's write slices; those slices now wait at the live pace.
     */
    searchYieldTurns: bool.default(true),
    /** ONNX Runtime intra-op threads of the query worker's session (the other sessions use `threads`). */
    queryThreads: int(1, 64).default(2),
    /** Passage sessions, one worker thread each, taking batches from one queue (writes and rebuilds). */
    passageSessions: int(1, 16).default(PASSAGE_SESSIONS),
    /** ONNX Runtime intra-op threads of each passage session. */
    passageThreads: int(1, 64).default(PASSAGE_THREADS),
    /**
     * The CPU priority (nice, 1–19; 19 the lowest) of a live rebuild's embedding: it runs on passage sessions of its own, started
     * for the rebuild at this nice and closed after it, so searches and live writes get the cores first and the
     * rebuild takes what they leave (docs/history/soak.md). 0: the rebuild shares the passage sessions,
     * behind live writes, at full priority (faster on an idle server, but every search slows while it runs).
     */
    rebuildNice: int(0, 19).default(19),
    /** Query embeddings kept in an LRU (repeated queries skip the model; docs/benchmarks.md); 0 turns it off. */
    queryCacheSize: int(0, 1_000_000).default(1000),
    hnswM: int(4, 128).default(16),
    hnswEfConstruction: int(10, 2000).default(200),
    /** HNSW search breadth: the largest that kept k-NN p50 within 1 ms at 100k news vectors (docs/benchmarks.md, ann). */
    efSearch: int(1, 4096).default(160),
    /** Chunk candidates taken from each retriever before fusion. */
    candidates: int(1, 10_000).default(100),
    rrfK: z.coerce.number().min(0).max(10_000).default(60),
    denseWeight: z.coerce.number().min(0).max(100).default(1),
    lexicalWeight: z.coerce.number().min(0).max(100).default(1),
    /** Hybrid fusion: 'relative' (weighted sum of min-max normalised scores) or 'rrf' (reciprocal rank, uses
     * rrfK). Chosen on SciFact's train split (scripts/tune-fusion.ts, docs/relevance.md). */
    fusion: z.enum(['rrf', 'relative']).default('relative'),
    /** Hybrid: fuse per article (its best paragraph in each retriever) or per paragraph. */
    fuseBy: z.enum(['chunk', 'article']).default('article'),
    /** Drop English stop words ("the", "and", …) from the BM25 query unless nothing else is left. */
    lexicalStopwords: bool.default(true),
    /** BM25 column weights (FTS5 bm25()): the article title and the chunk text. */
    bm25TitleWeight: z.coerce.number().min(0).max(100).default(0.75),
    bm25TextWeight: z.coerce.number().min(0).max(100).default(1),
    minWords: int(0, 100).default(6),
    bodyLimit: z
      .string()
      .regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 10mb')
      .default('10mb'),
    maxBatchArticles: int(1, 100_000).default(500),
    /** Writes in the queue, the running one included; past it a write is refused with 503 + Retry-After. */
    writeQueueLimit: int(1, 100_000).default(64),
    /** The longest a write waits for its turn before it is refused (503 + Retry-After, nothing stored); 0 = no limit. */
    writeQueueTimeoutMs: int(0, 3_600_000).default(30_000),
    /**
     * A write not committed by then is abandoned (503 `timeout`, nothing stored); one whose commit began is
     * always finished and acknowledged. Covers a full batch of QUARRY_MAX_BATCH_ARTICLES at the embedding
     * rates measured here (see README).
     */
    writeTimeoutMs: int(1000, 3_600_000).default(120_000),
    /**
     * The write queue's CoDel target, the same shape as searches' (0 = off): once the queue has not emptied for
     * QUARRY_WRITE_QUEUE_TIMEOUT_MS, a write that would wait longer than this for its turn is refused at once.
     */
    writeQueueTargetMs: int(0, 3_600_000).default(5_000),
    /**
     * Searches that run at once; more wait in the search queue. 2: on 2 cores the query embedding (worker) of one
     * overlaps the BM25 and grouping (main thread) of the other; 4 answered no more at 2x capacity (191 against 189
     * searches/s) at a higher p50 (115 against 77 ms). With QUARRY_SEARCH_READ_WORKER a search crosses three threads
     * and 4 keeps them busy (capacity 179 against 134-154 at 2): raise it with the worker (docs/benchmarks.md).
     */
    searchConcurrency: int(1, 1024).default(2),
    /**
     * Searches that run at once while the search queue overflows: it has refused searches for being full throughout
     * QUARRY_SEARCH_QUEUE_TIMEOUT_MS (refusals never more than 100 ms apart), until a slot sits free for three
     * targets. 1: at full concurrency both cores stay busy and an admitted search waits for the event loop, where no
     * queue sees it (admitted p99 at 2x capacity 12x the unloaded one); one at a time it is answered near its
     * unloaded latency while the server answers 60-70% of its capacity until the load falls (docs/history/overload.md).
     */
    searchOverflowConcurrency: int(1, 1024).default(1),
    /**
     * How long the search queue must refuse searches for being full (never more than 100 ms apart) before it
     * overflows (0: QUARRY_SEARCH_QUEUE_TIMEOUT_MS, 250 ms). Shorter cuts the onset of an overload from idle (at 50 the
     * admitted p99 at 2x capacity was 2.6-3.7x the unloaded one, against 4.5-5.8x), and at 80% of capacity Poisson
     * bursts then overflow the queue now and then: 2.9-8.9% refused there, against 0.3-3.3% (all for a full queue)
     * at 250 (docs/history/overload.md).
     */
    searchOverflowIntervalMs: int(0, 600_000).default(0),
    /**
     * A run of full-queue refusals overflows the search queue before its interval once it holds this many refusals
     * and no fewer than the searches started meanwhile: arrivals at twice what the slots finish (0: off, only the
     * interval). At 2x capacity from idle the queue stood 0.1-0.4 s in (0.3-0.6 s without); the row's admitted p99 was
     * 2.3-5.8x the unloaded one with 8 over six runs (4.2x and 4.6x in the two alternating pairs, where it was
     * 5.4x and 7.9x without), and 80% of capacity was refused 0-3.9% against 0.6-1.1% (docs/history/overload.md).
     */
    searchOverflowQuickRefusals: int(0, 100_000).default(8),
    /**
     * A refusal for a full search queue overflows it at once while the event loop's latest lag (sampled every 5 ms
     * while searches come) is over this many ms (0: off): requests the busy main thread has not read yet wait where
     * the queue cannot see them, and a burst at a load the server carries fills the queue without putting the loop
     * that far behind. In ten 15-s runs against seventeen of the defaults without it (2026-12-02): 2x whole-row p99
     * within 3x the unloaded one in 8 of 10 (1.84-5.5x) against 8 of 17 (2.23-7.16x), 0.8x p99 72-106 ms against
     * 71-143, refused at 0.8x 0-11% against 0.3-13% (docs/history/overload.md). A closed loop of fewer clients
     * than the slots and the queue (the soak's 8) never fills the queue, so it never acts there. While the loop is
     * that far behind, an overflowing queue's episode does not end either (see serverBehind in
     * util/bounded-queue.ts).
     */
    searchOverflowBehindLagMs: int(0, 600_000).default(20),
    /**
     * An overflowing search queue gets its slots back when, over an interval (QUARRY_SEARCH_QUEUE_TIMEOUT_MS), fewer
     * searches arrived than this many per search finished (0: only when a slot sits free for three targets); it
     * still stands, newest first, until a slot sits free (before 2026-12-02 09:00 the episode ended here). With
     * one slot of two, 2 is about the full capacity (one slot finishes more than half of what two do). Without it
     * a load below capacity held the queue on one slot: 80% of capacity after an overload was refused 13-16%
     * (1.3-1.7% with it), and with a 50-ms overflow interval a burst at 80% did the same from idle.
     */
    searchOverflowStayRatio: z.coerce.number().min(0).max(1_000).default(2),
    /**
     * How many of the latest intervals (QUARRY_SEARCH_QUEUE_TIMEOUT_MS) the stay ratio counts arrivals and finishes
     * over (the one interval at an episode's first review, so a burst taken for an overload is let go as soon as
     * before). At 2x capacity the event loop hands arrivals over unevenly: with 1, a thin 250-ms window gave the slot
     * back mid-overload 11 times in seven 15-s rows (p99 from 1 s in 2.0-5.6x the unloaded one); with 2, 7 times
     * (2.0-4.5x), and 80% of capacity was refused no more (docs/history/overload.md).
     */
    searchOverflowReviewWindows: int(1, 1_000).default(2),
    /**
     * Searches that may wait for a slot; one more is answered 503 + Retry-After at once (in a standing queue once
     * those past the target are shed, see searchQueueTargetMs). 8 ≈ 45 ms of work at the measured capacity.
     */
    searchQueueLimit: int(0, 100_000).default(8),
    /**
     * A search that finds the search queue full, before the queue is found overflowing, takes the place of the oldest
     * search waiting, which is answered 503 instead (drop from the front; false: the arrival is refused). What is
     * admitted waits for the queue to turn over instead of for it to be worked off, at twice capacity about half as
     * long: the 2x target within 3x in 13 of 14 runs against 11 of 13. The price: at 80% of capacity more episodes of
     * shedding (begun by the quick count), refused up to 6.3% from idle against 1.5% (util/bounded-queue.ts,
     * dropOldestWhenFull; docs/history/overload.md, "Runs of 2026-12-02 10:49-13:02").
     */
    searchQueueDropOldest: bool.default(true),
    /**
     * With QUARRY_SEARCH_QUEUE_DROP_OLDEST, before the queue is found overflowing: while it keeps dropping (a drop
     * within the last 100 ms), a free slot takes the newest search waiting instead of the oldest, so what is admitted
     * waits for about one slot, not for the queue to turn over, and a search it pushes down is answered 503 once it
     * has waited three targets (30 ms) rather than served late (util/bounded-queue.ts, newestFirstWhileDropping,
     * lateWhileDroppingMs). Alternating runs of 2026-12-02 16:24-17:07 (ten pairs): 2x within 3x in 10 of 10 rows with
     * it (1.79-2.75x), 9 of 10 off (1.92-3.28x), and in the 7 other rows measured with it (17 of 17); 1x p99 56-77 ms
     * against 62-86. The price is refusals in bursts below capacity: 0.8x from idle a median 4.4% (1.5-14.4%) against
     * 1.5% (0-12.1%), right after an overload 4.2-4.9% against 2.4-5.2%. Off: arrival order with the oldest dropped,
     * fewer refusals below capacity and a 2x tail that misses when the queue overflows late (docs/history/overload.md).
     */
    searchQueueNewestWhileDropping: bool.default(true),
    /**
     * The longest a search waits for a slot before it is answered 503 + Retry-After (0 = no limit). The queue
     * limit bounds the wait under overload; this is the backstop for stalls (a write's embedding, a GC, a
     * rebuild's slice) without refusing searches at 80% load, which 25-50 ms did in the soak bench.
     */
    searchQueueTimeoutMs: int(0, 600_000).default(250),
    /**
     * CoDel-style target for the search queue's wait (0 = off): once the queue has been full throughout
     * QUARRY_SEARCH_QUEUE_TIMEOUT_MS (a standing queue, not a burst), it serves the newest first with
     * QUARRY_SEARCH_OVERFLOW_CONCURRENCY slots and answers 503 + Retry-After to those that have waited past the target,
     * until a slot sits free three times this long (util/bounded-queue.ts, server/overload.ts). Waits past it alone do
     * not make the search queue stand (see standOnWaits). Chosen in docs/history/overload.md.
     */
    searchQueueTargetMs: int(0, 600_000).default(10),
    /**
     * Shedding on the event loop's lag (0 = off): while the loop has been more than this many ms behind for
     * QUARRY_SEARCH_LOOP_LAG_INTERVAL_MS (a standing backlog, not a GC or a commit), new searches are answered 503 +
     * Retry-After at once, and for an interval after, only a search that would wait behind at most one search per slot
     * is admitted (util/loop-lag-shedder.ts, server/overload.ts). Requests wait unseen in the socket while the loop is
     * behind, so once the main thread is the bottleneck the queue bound alone cannot bound their latency. Off by
     * default: it also refuses a few percent at 80% load, and it has not met the 2x target reliably (docs/history/overload.md).
     */
    searchLoopLagTargetMs: int(0, 600_000).default(0),
    /** How long the event loop's lag must stay over QUARRY_SEARCH_LOOP_LAG_TARGET_MS before front-door shedding starts. */
    searchLoopLagIntervalMs: int(1, 600_000).default(100),
    /** A search not answered by then is answered 503 `timeout` (its queue wait included). */
    searchTimeoutMs: int(100, 600_000).default(10_000),
    /**
     * Token buckets (sustained requests per second, and burst). Anonymous searches are counted per client
     * address; requests carrying a configured key per key (QUARRY_API_KEY, QUARRY_READ_KEY). 0 = no limit.
     */
    searchRate: z.coerce.number().min(0).max(1_000_000).default(10),
    searchBurst: int(1, 1_000_000).default(50),
    keySearchRate: z.coerce.number().min(0).max(1_000_000).default(0),
    keySearchBurst: int(1, 1_000_000).default(100),
    writeRate: z.coerce.number().min(0).max(1_000_000).default(0),
    writeBurst: int(1, 1_000_000).default(20),
    /**
     * Express's `trust proxy`: behind a reverse proxy, the client address (for per-address rate limits and
     * logs) comes from X-Forwarded-For. false, true, a hop count, or addresses/subnets (comma-separated).
     */
    trustProxy: z
      .string()
      .default('false')
      .refine(
        (v) => /^(true|false|\d+|[0-9a-fA-F:.,/\s]+|loopback|linklocal|uniquelocal)$/.test(v.trim()),
        'must be true, false, a hop count, or addresses/subnets',
      ),
    /**
     * Origins (scheme://host[:port], comma-separated) whose web pages may call the API from a browser (CORS).
     * Empty: none. `*` lets any page search and read, never write.
     */
    corsOrigins: z
      .string()
      .default('')
      .refine(
        (v) =>
          v
            .split(',')
            .map((o) => o.trim())
            .every((o) => o === '' || /^(\*|https?:\/\/[^\s/?#,]+)\/?$/.test(o)),
        'must be origins such as https://news.example.com (scheme, host and port; no path), comma-separated, or *',
      ),
    /** On SIGTERM/SIGINT, how long in-flight requests get to finish before their connections are closed. */
    drainTimeoutMs: int(0, 600_000).default(15_000),
    /** Where `POST /admin/snapshot` writes snapshots (each a folder named by the request or its time). */
    snapshotsDir: z.string().min(1).default('snapshots'),
    /** Checkpoint the HNSW file after this many chunk changes (and at shutdown). */
    checkpointEvery: int(1, 10_000_000).default(2000),
    /** Compact the HNSW from SQLite when marked-deleted points exceed this share. */
    compactDeletedRatio: z.coerce.number().min(0.01).max(1).default(0.2),
    apiKey: z.string().min(16, 'must be at least 16 characters').optional(),
    readKey: z.string().min(16, 'must be at least 16 characters').optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Log query text at info level (off by default: queries can be personal). */
    logQueries: bool.default(false),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Environment variable for each setting (QUARRY_INDEX_DIR, …; PORT and HOST are also read bare). */
export const ENV_NAMES: Record<keyof Config, string> = Object.fromEntries(
  Object.keys(ConfigSchema.shape).map((k) => [k, `QUARRY_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`]),
) as Record<keyof Config, string>;

export function configFromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof Config, string>> {
  const out: Partial<Record<keyof Config, string>> = {};
  for (const [key, name] of Object.entries(ENV_NAMES) as Array<[keyof Config, string]>) {
    const value = env[name];
    if (value !== undefined && value !== '') out[key] = value;
  }
  if (env.PORT && out.port === undefined) out.port = env.PORT;
  if (env.HOST && out.host === undefined) out.host = env.HOST;
  return out;
}

/** The variable a setting was read from: the bare PORT / HOST when only they are set. */
function envNameOf(key: keyof Config, env: NodeJS.ProcessEnv): string {
  const name = ENV_NAMES[key];
  if ((key === 'port' || key === 'host') && !env[name] && env[key.toUpperCase()]) return key.toUpperCase();
  return name;
}

/**
 * QUARRY_* variables that name no setting (a typo such as QUARRY_EF_SERCH would otherwise be ignored
 * without a word), each with the closest real name when one is near.
 */
export function unknownEnvSettings(env: NodeJS.ProcessEnv): Array<{ name: string; suggestion: string | null }> {
  // Read by scripts/install-model.mjs at `npm ci` / `npm run install-model`, not by the service.
  const known = [...Object.values(ENV_NAMES), 'QUARRY_INSTALL_DTYPES', 'QUARRY_SKIP_MODEL_INSTALL'];
  return Object.keys(env)
    .filter((name) => name.startsWith('QUARRY_') && !known.includes(name))
    .sort()
    .map((name) => {
      const near = closest(name, known);
      return { name, suggestion: distance(name, near) <= 3 ? near : null };
    });
}

/** Validates the merged settings; paths are resolved against `cwd`. */
export function loadConfig(sources: { env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown>; cwd?: string } = {}): Config {
  const merged = { ...configFromEnv(sources.env ?? {}), ...dropUndefined(sources.overrides ?? {}) };
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issuePath(issue) ?? '';
    const name = key in ENV_NAMES ? `${key} (${envNameOf(key as keyof Config, sources.env ?? {})})` : key;
    throw new QuarryError('invalid_request', `invalid setting ${name}: ${formatZodIssue({ ...issue, path: [] })}`, { field: key });
  }
  const cwd = sources.cwd ?? process.cwd();
  const c = parsed.data;
  return {
    ...c,
    indexDir: resolve(cwd, c.indexDir),
    seedsDir: resolve(cwd, c.seedsDir),
    modelsDir: resolve(cwd, c.modelsDir),
    snapshotsDir: resolve(cwd, c.snapshotsDir),
  };
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** The effective configuration with secrets masked, for `quarry config` and logs. */
export function maskedConfig(c: Config): Record<string, unknown> {
  const mask = (s: string | undefined) => (s === undefined ? undefined : `${'*'.repeat(8)} (${s.length} chars)`);
  return {
    ...c,
    apiKey: mask(c.apiKey),
    readKey: mask(c.readKey),
    databaseUrl: maskUrlPassword(c.databaseUrl),
    databaseReadUrl: maskUrlPassword(c.databaseReadUrl),
    backend: c.databaseUrl ? 'postgres' : 'sqlite',
  };
}

/** A database URL with its password replaced by asterisks (never printed, never logged). */
export function maskUrlPassword(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    if (u.password) u.password = '********';
    return u.toString();
  } catch {
    return '******** (unparseable URL)';
  }
}
