import type { Config } from '../config/config.ts';
import type { Article } from '../corpus/article.ts';
import type { Embedder } from '../embed/embedder.ts';
import { QuarryError } from '../errors.ts';
import { type Logger, silentLogger } from '../logger.ts';
import type { SearchMode, SearchRequest, SearchResponse, SearchTimings } from '../search/schema.ts';
import { runSearch } from '../search/search.ts';
import type { Manifest } from '../store/manifest.ts';
import type { ArticleRecord, ArticleSummary, IndexStore, IntegrityReport, StoreStats } from '../store/store.ts';
import { prepareArticles } from './prepare.ts';
import { Rebuilder, type RebuildStatus } from './rebuild.ts';
import { WriteQueue } from './write-queue.ts';

export interface QuarryDeps {
  config: Config;
  /** Null for commands that embed nothing (delete, check): the store was opened with the model's identity alone. */
  embedder: Embedder | null;
  store: IndexStore;
  logger?: Logger;
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

export type SearchListener = (e: { mode: SearchMode; timings: SearchTimings; tookMs: number }) => void;

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
  private closing = false;

  constructor(deps: QuarryDeps) {
    this.config = deps.config;
    this.model = deps.embedder;
    this.store = deps.store;
    this.queue = new WriteQueue(deps.config.writeQueueLimit);
    this.rebuilder = new Rebuilder({
      store: deps.store,
      embedder: () => this.embedder,
      chunker: deps.config,
      queue: this.queue,
      logger: deps.logger ?? silentLogger,
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

  async search(req: SearchRequest): Promise<SearchResponse> {
    const { response, timings, tookMs } = await runSearch(this.store, this.embedder, req, this.config);
    for (const listener of this.searchListeners) listener({ mode: req.mode, timings, tookMs });
    return response;
  }

  /** Per-stage timings of every search, explain or not (the server's metrics); returns an unsubscribe. */
  onSearch(listener: SearchListener): () => void {
    this.searchListeners.add(listener);
    return () => this.searchListeners.delete(listener);
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
    return this.queue.runStaged(
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
    return this.queue.run(async () => {
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

  /** A full consistency check of the open index (O(n)); see the store's checkIntegrity. */
  integrity(): Promise<IntegrityReport> {
    return this.store.checkIntegrity();
  }

  /** Stops a running rebuild, waits for queued writes and closes the store (which makes everything durable). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.rebuilder.stop();
    await this.queue.drain();
    await this.store.close();
  }

  private assertOpen(): void {
    if (this.closing) throw new QuarryError('overloaded', 'the index is closing (the service is shutting down); retry against the restarted service');
  }
}
