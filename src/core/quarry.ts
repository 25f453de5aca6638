import type { Config } from '../config/config.ts';
import type { Article } from '../corpus/article.ts';
import type { Embedder } from '../embed/embedder.ts';
import { QuarryError } from '../errors.ts';
import { type Logger, silentLogger } from '../logger.ts';
import type { SearchMode, SearchRequest, SearchResponse, SearchTimings, SimilarRequest } from '../search/schema.ts';
import { runSearch } from '../search/search.ts';
import { runSimilar, type SimilarResponse } from '../search/similar.ts';
import type { Manifest } from '../store/manifest.ts';
import type { ArticleRecord, ArticleSummary, IndexStore, IntegrityReport, SnapshotReport, StoreStats } from '../store/store.ts';
import type { Refusal } from '../util/bounded-queue.ts';
import { prepareArticles } from './prepare.ts';
import { Rebuilder, type RebuildStatus } from './rebuild.ts';
import { untilCommitted, withTimeout } from './time-limits.ts';
import { WriteQueue } from './write-queue.ts';

const definedFields = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export interface QuarryDeps {
  config: Config;
  /** Null for commands that embed nothing (delete, check): the store was opened with the model's identity alone. */
  embedder: Embedder | null;
  store: IndexStore;
  logger?: Logger;
  /**
   * Awaited between slices of a live rebuild's work on the main thread (chunking, storing): resolves when live
   * requests are not held up (serve passes LivePressure.calm; its embedding waits the same way).
   */
  backgroundPace?: () => Promise<void>;
}

export interface WriteAck {
  id: string;
  chunks: number;
  replaced: boolean;
}

export type IndexStats = StoreStats & {
  model: string;
  dtype: string;
  dims: number;
  pooling: string;
  chunker: string;
  built: string;
  buildSeconds: number;
  writeQueue: number;
  rebuild: RebuildStatus['state'];
};

export interface Health {
  ok: boolean;
  modelMs: number;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: { model: string; index: string; database: string };
}

export type SearchListener = (e: { mode: SearchMode; timings: SearchTimings; tookMs: number }) => void;
/** Why a write was refused before it stored anything: its queue was full, or it waited past the queue's deadline. */
export type RefusalListener = (why: Refusal | 'timeout') => void;

/**
 * The core, a facade of verbs over one index and its model: search, upsert, delete, get, stats, health,
 * rebuild. The HTTP server and the CLI call these and nothing below them. Writes go through one bounded
 * queue (embedding, then one atomic store write); searches never wait for it.
 */
export class Quarry {
  readonly config: Config;
  private readonly model: Embedder | null;
  readonly store: IndexStore;
  private readonly queue: WriteQueue;
  private readonly rebuilder: Rebuilder;
  private readonly searchListeners = new Set<SearchListener>();
  private readonly refusalListeners = new Set<RefusalListener>();
  private readonly searchTimeoutListeners = new Set<() => void>();
  /** Aborted by close(): writes still waiting for their turn are withdrawn rather than run during shutdown. */
  private readonly closingSignal = new AbortController();
  private closing = false;

  constructor(deps: QuarryDeps) {
    const logger = deps.logger ?? silentLogger;
    this.config = deps.config;
    this.model = deps.embedder;
    this.store = deps.store;
    this.queue = new WriteQueue(deps.config.writeQueueLimit, {
      queueTimeoutMs: deps.config.writeQueueTimeoutMs,
      targetWaitMs: deps.config.writeQueueTargetMs,
      onRefuse: (why) => {
        for (const l of this.refusalListeners) l(why);
      },
      // One line as an episode of refusing late writes begins and one as it ends, like the search queue's
      // (server/overload.ts): a sustained write overload and one long stall (a slow disk, a swap) look different here.
      onStandingChange: (c) => {
        if (c.standing)
          logger.warn(
            { cause: c.cause, targetMs: deps.config.writeQueueTargetMs, intervalMs: deps.config.writeQueueTimeoutMs },
            'write queue standing: writes waited past the target for an interval; refusing late writes',
          );
        else logger.warn({ forMs: Math.round(c.forMs), refused: c.refused, why: c.why }, 'write queue calm again');
      },
    });
    this.rebuilder = new Rebuilder({
      store: deps.store,
      embedder: () => this.embedder,
      chunker: deps.config,
      queue: this.queue,
      logger,
      pace: deps.backgroundPace,
    });
  }

  /** The model; throws for a Quarry opened without one (see QuarryDeps.embedder). */
  get embedder(): Embedder {
    if (!this.model) throw new QuarryError('model_unavailable', 'this index was opened without loading the model (a command that embeds nothing)');
    return this.model;
  }

  get manifest(): Manifest {
    return this.store.manifest;
  }

  get writeQueueDepth(): number {
    return this.queue.depth;
  }

  /**
   * Answers within `searchTimeoutMs` or throws `timeout` (the work already started finishes in the background:
   * its stages are synchronous, milliseconds each, and cannot be interrupted).
   */
  async search(req: SearchRequest): Promise<SearchResponse> {
    // A request built in code rather than parsed (scripts, older callers) gets the schema's defaults for the
    // fields it leaves out: first page, relevance order, collapsed.
    const defaults: Pick<SearchRequest, 'offset' | 'sort' | 'collapse'> = { offset: 0, sort: 'relevance', collapse: true };
    const full: SearchRequest = { ...defaults, ...definedFields(req) };
    const ms = this.config.searchTimeoutMs;
    const { response, timings, tookMs } = await withTimeout(runSearch(this.store, this.embedder, full, this.config), ms, () => {
      for (const l of this.searchTimeoutListeners) l();
      return new QuarryError('timeout', `the search took longer than ${ms} ms (QUARRY_SEARCH_TIMEOUT_MS); retry later`, {
        details: { retryAfterSeconds: 1 },
      });
    });
    for (const listener of this.searchListeners) listener({ mode: full.mode, timings, tookMs });
    return response;
  }

  /** Articles like a stored one (its stored paragraph vectors as the query); throws not_found for an unknown id. */
  similar(id: string, req: SimilarRequest): Promise<SimilarResponse> {
    return runSimilar(this.store, id, req, this.config);
  }

  /** Per-stage timings of every search, explain or not (the server's metrics); returns an unsubscribe. */
  onSearch(listener: SearchListener): () => void {
    this.searchListeners.add(listener);
    return () => this.searchListeners.delete(listener);
  }

  /** Writes refused by the write queue or abandoned at their time limit (the server's metrics). */
  onRefused(listener: RefusalListener): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
  }

  /** Searches answered `timeout` (the server's metrics). */
  onSearchTimeout(listener: () => void): () => void {
    this.searchTimeoutListeners.add(listener);
    return () => this.searchTimeoutListeners.delete(listener);
  }

  /**
   * The limits of one write: `writeTimeoutMs` from now, or shutdown. Aborting withdraws a write still
   * waiting for its turn, and one still embedding stores nothing; a write whose commit began is finished.
   */
  private writeLimit(): {
    run<T>(commit: () => Promise<T>): Promise<T>;
    runStaged<P, T>(prepare: () => Promise<P>, commit: (prepared: P) => Promise<T>): Promise<T>;
  } {
    const ms = this.config.writeTimeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => {
      timeout.abort(
        new QuarryError('timeout', `the write was not committed within ${ms} ms (QUARRY_WRITE_TIMEOUT_MS); nothing of it was stored; retry later`, {
          details: { retryAfterSeconds: 5 },
        }),
      );
    }, ms);
    const signal = AbortSignal.any([timeout.signal, this.closingSignal.signal]);
    let committed = false;
    // Past this point the write is stored whatever happens to its caller: the limit no longer applies.
    const committing = () => {
      signal.throwIfAborted();
      committed = true;
    };
    const limited = async <T>(queued: Promise<T>): Promise<T> => {
      try {
        return await untilCommitted(queued, signal, () => committed);
      } catch (e) {
        if (e === timeout.signal.reason) for (const l of this.refusalListeners) l('timeout');
        throw e;
      } finally {
        clearTimeout(timer);
      }
    };
    return {
      run: (commit) =>
        limited(
          this.queue.run(
            () => {
              committing();
              return commit();
            },
            { signal },
          ),
        ),
      runStaged: (prepare, commit) =>
        limited(
          this.queue.runStaged(
            prepare,
            (prepared) => {
              committing();
              return commit(prepared);
            },
            { signal },
          ),
        ),
    };
  }

  getArticle(id: string): Promise<ArticleRecord | null> {
    return this.store.getArticle(id);
  }

  listArticles(): Promise<ArticleSummary[]> {
    return this.store.listArticles();
  }

  /** Seeds-folder articles as last applied to the index, id -> content hash (see seeds-sync.ts). */
  folderFiles(): Promise<Map<string, string>> {
    return this.store.folderFiles();
  }

  recordFolderFiles(files: ReadonlyMap<string, string>): Promise<void> {
    this.assertOpen();
    return this.queue.run(() => this.store.setFolderFiles(files), { bypassLimit: true });
  }

  /**
   * Adds or replaces articles: chunked and embedded first, then stored in one atomic write. Resolves only once
   * that write is durable, so an acknowledged write survives a crash. The embedding runs ahead in the write
   * queue (this write is embedded while the one before it is stored); writes are stored, and acknowledged, in
   * arrival order.
   */
  async upsertArticles(articles: Article[], origin: string | ((a: Article) => string)): Promise<WriteAck[]> {
    this.assertOpen();
    const duplicate = articles.find((a, i) => articles.findIndex((b) => b.id === a.id) !== i);
    if (duplicate) throw new QuarryError('invalid_request', `article id ${duplicate.id} appears twice in one batch`, { field: 'articles' });
    const sourced = articles.map((article) => ({ article, origin: typeof origin === 'string' ? origin : origin(article) }));
    // Staged: this write's chunks are embedded while the write before it is stored.
    return this.writeLimit().runStaged(
      () => prepareArticles(sourced, this.embedder, this.config),
      async (prepared) => {
        const outcomes = await this.store.write(prepared.map((article) => ({ op: 'upsert', article })));
        return outcomes.map((o) => ({ id: o.id, chunks: o.chunks, replaced: o.result === 'replaced' }));
      },
    );
  }

  /** Deletes an article and all of its chunks; false when there is no such article. */
  async deleteArticle(id: string): Promise<boolean> {
    this.assertOpen();
    return this.writeLimit().run(async () => {
      const [outcome] = await this.store.write([{ op: 'delete', id }]);
      return outcome!.result === 'deleted';
    });
  }

  get rebuild(): RebuildStatus {
    return this.rebuilder.status;
  }

  /** Starts re-embedding every stored article into a new generation in the background; see rebuild.ts. */
  startRebuild(): Promise<RebuildStatus> {
    this.assertOpen();
    return this.rebuilder.start();
  }

  async stats(): Promise<IndexStats> {
    const s = await this.store.stats();
    const m = this.store.manifest;
    return {
      ...s,
      model: m.model.id,
      dtype: m.model.dtype,
      dims: m.model.dims,
      pooling: m.model.pooling,
      chunker: m.chunker.version,
      built: m.built,
      buildSeconds: m.buildSeconds,
      writeQueue: this.queue.depth,
      rebuild: this.rebuilder.status.state,
    };
  }

  /** Healthy when the index answers and the model embeds within the timeout. */
  async health(timeoutMs = 5000): Promise<Health> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        // A passage, not a query: query embeddings may come from the LRU and prove nothing about the model.
        this.embedder.embedPassages(['health check']),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`model did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      await this.store.ping();
      return { ok: true, modelMs: performance.now() - started };
    } catch (e) {
      return { ok: false, modelMs: performance.now() - started, error: (e as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Whether searches and writes can be served now, without calling the model (a probe every few seconds must
   * not queue behind a write's embedding): the model loaded, the index open and usable, the store answering
   * (`store.ping()`: the database reachable, for a backend that has one). Each check is "ok" or why not.
   */
  async readiness(): Promise<Readiness> {
    const index = this.closing
      ? 'closing'
      : !this.store.hasIndex
        ? 'no index yet'
        : this.store.incompatibility
          ? `incompatible: ${this.store.incompatibility}`
          : 'ok';
    let database = 'ok';
    try {
      await this.store.ping();
    } catch (e) {
      database = (e as Error).message;
    }
    const checks = { model: this.model ? 'ok' : 'not loaded', index, database };
    return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
  }

  /** Writes a consistent copy of the index into `dir` while searches and writes go on; see IndexStore.snapshot. */
  snapshot(dir: string): Promise<SnapshotReport> {
    this.assertOpen();
    return this.store.snapshot(dir);
  }

  /** A full consistency check of the open index (O(n)); see the store's checkIntegrity. */
  integrity(): Promise<IntegrityReport> {
    return this.store.checkIntegrity();
  }

  /** Stops a running rebuild, waits for queued writes and closes the store (which makes everything durable). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.closingSignal.abort(
      new QuarryError('unavailable', 'the service is shutting down before this write could run; nothing was stored; retry against the restarted service', {
        details: { retryAfterSeconds: 5 },
      }),
    );
    await this.rebuilder.stop();
    await this.queue.drain();
    await this.store.close();
  }

  private assertOpen(): void {
    if (this.closing) throw new QuarryError('overloaded', 'the index is closing (the service is shutting down); retry against the restarted service');
  }
}
