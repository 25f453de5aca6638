import { Worker } from 'node:worker_threads';
import { QuarryError } from '../errors.ts';
import type { StageProfile } from '../util/stage-profile.ts';
import { workerEntry } from '../util/worker-entry.ts';
import { WorkerRpc } from '../util/worker-rpc.ts';
import type { WorkerData, WorkerRequest, WorkerResponse } from './embed-worker.ts';
import { type Embedder, type EmbedProgress, type ModelInfo, type PassageOptions, paddingBoundedBatches } from './embedder.ts';
import { concatIds, type TokenCounter, type TransformersEmbedderOptions } from './transformers-embedder.ts';

/** The share of a batch's tokens that may be padding before the batch is cut (see embedPassagesInWorkers). */
const MAX_PADDING = 0.05;

export type Job = { kind: 'tokens'; ids: Int32Array; lengths: Int32Array } | { kind: 'query'; text: string };
export type JobResult = {
  vectors: Float32Array;
  modelMs: number;
  poolMs: number;
  /** From handing the job to a free worker to its result on this thread (queueing before that not included). */
  roundTripMs?: number;
};

export interface ModelWorker {
  /** The model as the worker loaded it (dims probed, file checksums). */
  info: ModelInfo;
  /** True once the worker has exited or crashed: it takes no more jobs. */
  readonly dead: boolean;
  run(job: Job): Promise<JobResult>;
  close(): Promise<void>;
}

/** Background sessions close after this long without a batch (a rebuild's groups come seconds apart at most). */
const BACKGROUND_IDLE_CLOSE_MS = 30_000;

/** Starts a worker thread with its own model session (at `nice`, 0: normal priority); resolves once the model is loaded. */
async function startModelWorker(opts: TransformersEmbedderOptions, role: string, nice = 0): Promise<ModelWorker> {
  const entry = workerEntry(import.meta.url, 'embed-worker');
  const worker = new Worker(entry.file, { argv: entry.argv, workerData: { ...opts, nice } satisfies WorkerData, name: `quarry-${role}` });
  worker.unref();
  const rpc = new WorkerRpc<WorkerRequest, WorkerResponse, ModelInfo>(worker, `${role} worker`, (first) =>
    first.ready && first.info ? first.info : new QuarryError('model_unavailable', `${role} worker: ${first.error}`),
  );
  const info = await rpc.started;
  return {
    info,
    get dead() {
      return rpc.failed !== null;
    },
    run: async (job) => {
      const transfer = job.kind === 'tokens' ? [job.ids.buffer as ArrayBuffer, job.lengths.buffer as ArrayBuffer] : [];
      const answer = await rpc.call(job, transfer);
      if (answer.error !== undefined) throw new Error(`${role} worker: ${answer.error}`);
      return { vectors: answer.vectors ?? new Float32Array(0), modelMs: answer.modelMs ?? 0, poolMs: answer.poolMs ?? 0 };
    },
    close: () => rpc.close({ close: true }, `${role} worker closed`),
  };
}

/**
 * Passage sessions, each in its own worker, fed from two queues in arrival order: a worker takes the next batch as
 * soon as it is free, so with two sessions of one thread each the batches of one call alternate between them, and
 * a later call's batches start as soon as a session has nothing older to do. Background batches (a rebuild) are
 * taken only when no other batch waits: a live write during a rebuild waits for the batches running, not for the
 * rebuild's queued groups (in the soak, writes behind them took up to 30 s and timed out).
 */
export class SessionPool {
  private readonly idle: ModelWorker[];
  private readonly urgent: Array<{ job: Job; resolve: (r: JobResult) => void; reject: (e: Error) => void }> = [];
  private readonly background: Array<{ job: Job; resolve: (r: JobResult) => void; reject: (e: Error) => void }> = [];

  constructor(readonly workers: ModelWorker[]) {
    this.idle = [...workers];
  }

  run(job: Job, background = false): Promise<JobResult> {
    if (this.workers.every((w) => w.dead)) return Promise.reject(new QuarryError('model_unavailable', 'every passage worker has exited'));
    return new Promise((resolve, reject) => {
      (background ? this.background : this.urgent).push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.urgent.length + this.background.length > 0) {
      const worker = this.idle.shift()!;
      const { job, resolve, reject } = (this.urgent.length > 0 ? this.urgent : this.background).shift()!;
      const sent = performance.now();
      worker.run(job).then(
        (r) => {
          this.idle.push(worker);
          this.pump();
          resolve({ ...r, roundTripMs: performance.now() - sent });
        },
        (e: Error) => {
          // The batch's caller gets the error; a worker that died stays out of the pool, and when none is left
          // the batches still queued fail too instead of waiting for ever.
          reject(e);
          if (!worker.dead) this.idle.push(worker);
          else if (this.workers.every((w) => w.dead)) for (const q of [...this.urgent.splice(0), ...this.background.splice(0)]) q.reject(e);
          this.pump();
        },
      );
    }
  }

  close(): Promise<unknown> {
    return Promise.all(this.workers.map((w) => w.close()));
  }
}

/**
 * Passage sessions for background work (a live rebuild), started on its first batch at a lower CPU priority and
 * closed once no batch came for `idleCloseMs`. On the live sessions a rebuild's batches only wait their turn; the
 * batches running still take both cores at full priority, and every search (its query session and the main
 * thread) slowed to a p99 of 0.3–0.5 s under the soak's load, and was refused past the queue's target. Here the
 * kernel gives searches and writes the cores first, and the rebuild the rest.
 */
export class BackgroundSessions {
  private pool: Promise<SessionPool> | null = null;
  private pending = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private closed = false;

  private readonly idleCloseMs: number;
  /** Awaited before each batch: resolves when live requests are not held up (LivePressure.calm). */
  private readonly pace: () => Promise<void>;

  constructor(
    private readonly start: () => Promise<ModelWorker[]>,
    opts: { idleCloseMs?: number; pace?: () => Promise<void> } = {},
  ) {
    this.idleCloseMs = opts.idleCloseMs ?? BACKGROUND_IDLE_CLOSE_MS;
    this.pace = opts.pace ?? (async () => {});
  }

  /** Whether its sessions are up now (tests, stats). */
  get started(): boolean {
    return this.pool !== null;
  }

  async run(job: Job): Promise<JobResult> {
    if (this.closed) throw new QuarryError('model_unavailable', 'the background passage sessions are closed');
    this.pending++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    try {
      // A failed start is not kept: the next batch tries again.
      this.pool ??= this.start()
        .then((workers) => new SessionPool(workers))
        .catch((e: unknown) => {
          this.pool = null;
          throw e;
        });
      const pool = await this.pool;
      await this.pace();
      return await pool.run(job);
    } finally {
      if (--this.pending === 0 && !this.closed) {
        this.idleTimer = setTimeout(() => void this.closeIdle(), this.idleCloseMs);
        this.idleTimer.unref();
      }
    }
  }

  private async closeIdle(): Promise<void> {
    const pool = this.pool;
    if (this.pending > 0 || !pool) return;
    this.pool = null;
    await (await pool.catch(() => null))?.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const pool = this.pool;
    this.pool = null;
    await (await pool?.catch(() => null))?.close();
  }
}

/**
 * Where a passage call's batches run: live batches first on the live sessions; background ones (a rebuild) on the
 * background sessions when there are any, unless the call asks for the live sessions (PassageOptions.liveSessions),
 * and otherwise on the live sessions behind every live batch.
 */
export function passageLane(passage: PassageOptions, backgroundSessions: boolean): 'live' | 'behind live' | 'background sessions' {
  if (!passage.background) return 'live';
  return backgroundSessions && !passage.liveSessions ? 'background sessions' : 'behind live';
}

export interface WorkerRoles {
  /** Writes and rebuilds: a long embedding call no longer blocks searches, which then only share the CPU with it. */
  passages: boolean;
  /**
   * Searches: the main thread is free while the query is embedded, so the search runs BM25 meanwhile (the
   * two overlap on a second core) and the event loop keeps serving other requests.
   */
  queries: boolean;
  /** Intra-op threads of the query session (default: opts.threads). */
  queryThreads?: number;
  /** Passage sessions (one worker each) and the intra-op threads of each (default 1 and opts.threads). */
  passageSessions?: number;
  passageThreads?: number;
  /**
   * > 0: background batches (a live rebuild) run on passage sessions of their own at this nice, started when the
   * first one comes (see BackgroundSessions). 0 or absent: they wait behind live batches on the passage sessions.
   */
  backgroundNice?: number;
  /** Awaited before each background batch (see BackgroundSessions): lets live requests go first. */
  backgroundPace?: () => Promise<void>;
  /** Collects where the time of passage embedding goes (worker messaging, model, pooling): profiling only. */
  profile?: StageProfile;
}

/**
 * Wraps an embedder so passages and/or queries are embedded by the same model in worker threads, one
 * session per role (a query never waits behind a write's batch) and as many passage sessions as asked.
 * The main thread tokenises passages once and sends token ids. With both roles in workers, `main` needs no
 * model session: a {@link TokenCounter} is enough.
 */
export async function withWorkers(main: Embedder | TokenCounter, opts: TransformersEmbedderOptions, roles: WorkerRoles): Promise<Embedder> {
  const embedder = 'embedQuery' in main ? main : null;
  if (!embedder && !roles.passages) throw new Error('withWorkers: a main thread without a model session needs the passage workers');
  if (embedder && !roles.passages && !roles.queries) return embedder;
  const encode = (t: string): number[] => main.encodePassage?.(t) ?? [];
  const sessions = roles.passages ? Math.max(1, roles.passageSessions ?? 1) : 0;
  const passageOpts = { ...opts, threads: roles.passageThreads ?? opts.threads };
  const [queryWorker, ...passageWorkers] = await Promise.all([
    roles.queries ? startModelWorker({ ...opts, threads: roles.queryThreads ?? opts.threads }, 'query') : null,
    ...Array.from({ length: sessions }, (_, i) => startModelWorker(passageOpts, sessions > 1 ? `passage-${i + 1}` : 'passage')),
  ]);
  const pool = passageWorkers.length > 0 ? new SessionPool(passageWorkers as ModelWorker[]) : null;
  const backgroundNice = roles.backgroundNice ?? 0;
  const background =
    pool && backgroundNice > 0
      ? new BackgroundSessions(
          async () => {
            const started = await Promise.allSettled(
              Array.from({ length: sessions }, (_, i) => startModelWorker(passageOpts, `background-${i + 1}`, backgroundNice)),
            );
            const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
            const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
            if (failed) {
              await Promise.all(workers.map((w) => w.close()));
              throw failed.reason;
            }
            return workers;
          },
          { pace: roles.backgroundPace },
        )
      : null;
  const { profile } = roles;

  const embedPassagesInWorkers = async (
    texts: string[],
    onProgress?: (p: EmbedProgress) => void,
    tokenIds?: ReadonlyArray<readonly number[]>,
    passage: PassageOptions = {},
  ): Promise<Float32Array[]> => {
    const ids = tokenIds ?? texts.map(encode);
    // Sorted by token count across the whole call before it is cut into batches: mixed lengths are padded
    // (measured 1.26x slower sorted by characters, 40% slower unsorted). Every batch is queued at once. A batch
    // ends early rather than pad more than MAX_PADDING of its tokens: a write's call (32 articles, ~150
    // paragraphs) cut into fixed batches of 32 padded 18% of its tokens, 4% so (a build-sized call keeps full batches).
    const out = new Array<Float32Array>(texts.length);
    let done = 0;
    const dims = (queryWorker ?? passageWorkers[0]!).info.dims;
    await Promise.all(
      paddingBoundedBatches(
        ids.map((x) => x.length),
        opts.batchSize,
        MAX_PADDING,
      ).map(async (batch) => {
        const { flat, lengths } = concatIds(batch.map((j) => ids[j]!));
        const job: Job = { kind: 'tokens', ids: flat, lengths };
        const lane = passageLane(passage, background !== null);
        const r = lane === 'background sessions' ? await background!.run(job) : await pool!.run(job, lane === 'behind live');
        if (profile) {
          profile.add('model', r.modelMs);
          profile.add('pool', r.poolMs);
          // Padding the ids into tensors, the two messages, and the main thread noticing the answer.
          profile.add('messaging', Math.max(0, r.roundTripMs! - r.modelMs - r.poolMs));
        }
        batch.forEach((j, n) => (out[j] = r.vectors.subarray(n * dims, (n + 1) * dims)));
        done += batch.length;
        onProgress?.({ done, total: texts.length });
      }),
    );
    return out;
  };

  const info = embedder?.info ?? queryWorker?.info ?? passageWorkers[0]!.info;
  return {
    info,
    passagesOffMainThread: pool !== null,
    countTokens: (text) => main.countTokens(text),
    encodePassage: main.encodePassage ? (text) => main.encodePassage!(text) : undefined,
    embedPassages: (texts, onProgress, tokenIds, passage) =>
      pool ? embedPassagesInWorkers(texts, onProgress, tokenIds, passage) : embedder!.embedPassages(texts, onProgress, tokenIds, passage),
    embedQuery: async (text) => {
      if (queryWorker) return (await queryWorker.run({ kind: 'query', text })).vectors;
      if (embedder) return embedder.embedQuery(text);
      throw new QuarryError('model_unavailable', 'this embedder embeds passages only (a rebuild)');
    },
    async close(): Promise<void> {
      await Promise.all([pool?.close(), background?.close(), queryWorker?.close()]);
      await main.close();
    },
  };
}
