import type { Config } from '../config/config.ts';
import type { Article } from '../corpus/article.ts';
import { QuarryError } from '../errors.ts';
import type { Embedder } from '../embed/embedder.ts';
import { silentLogger, type Logger } from '../logger.ts';
import { ArticleDatabase, DATABASE_FILE, type ArticleRecord, type WriteResult } from '../store/database.ts';
import { currentGenerationDir, discardGeneration, publishGeneration, removeStaleGenerations } from '../store/index-dir.ts';
import { acquireWriterLock } from '../store/lock.ts';
import { lexicalCandidates, rankArticles } from '../search/search.ts';
import type { SearchMode, SearchRequest, SearchResponse, SearchTimings } from '../search/schema.ts';
import { join } from 'node:path';
import { buildGeneration, type BuildProgress, type BuildReport, type SourcedArticle } from './build-index.ts';
import { Generation } from './generation.ts';
import { prepareArticles } from './ingest.ts';
import { checkIntegrity, type IntegrityReport } from './integrity.ts';
import { WriteQueue } from './write-queue.ts';

export interface QuarryDeps {
  config: Config;
  embedder: Embedder;
  logger?: Logger;
}

export interface WriteAck {
  id: string;
  chunks: number;
  replaced: boolean;
}

export interface RebuildStatus {
  state: 'idle' | 'running' | 'succeeded' | 'failed';
  startedAt: string | null;
  finishedAt: string | null;
  articlesDone: number;
  articlesTotal: number;
  chunksDone: number;
  error: string | null;
  report: BuildReport | null;
}

export interface IndexStats {
  articles: number;
  chunks: number;
  deleted: number;
  model: string;
  dtype: string;
  dims: number;
  pooling: string;
  chunker: string;
  hnsw: { M: number; efConstruction: number; efSearch: number; points: number };
  disk: { sqliteBytes: number; hnswBytes: number; totalBytes: number };
  built: string;
  buildSeconds: number;
  lastCheckpoint: string | null;
  changesSinceCheckpoint: number;
  writeQueue: number;
  rebuild: RebuildStatus['state'];
  dir: string;
}

export type SearchListener = (e: { mode: SearchMode; timings: SearchTimings; tookMs: number }) => void;

const idleRebuild = (): RebuildStatus => ({ state: 'idle', startedAt: null, finishedAt: null, articlesDone: 0, articlesTotal: 0, chunksDone: 0, error: null, report: null });

/**
 * The core: one open index with its model. The HTTP server and the CLI both call these methods and
 * nothing below them. Writes go through one queue; searches never wait for it.
 */
export class Quarry {
  private gen: Generation;
  private readonly queue: WriteQueue;
  private readonly log: Logger;
  private rebuildStatus: RebuildStatus = idleRebuild();
  private rebuildFromSeq: number | null = null;
  private checkpointTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Set when close() starts: a background rebuild stops at its next step and discards its directory. */
  private closing = false;
  private rebuildRun: Promise<void> | null = null;
  private readonly searchListeners = new Set<SearchListener>();

  private constructor(
    readonly config: Config,
    readonly embedder: Embedder,
    gen: Generation,
    private readonly releaseLock: () => void,
    logger: Logger,
  ) {
    this.gen = gen;
    this.queue = new WriteQueue(config.writeQueueLimit);
    this.log = logger;
    if (!gen.readonly) {
      // Bounds the replay work after a crash even when writes trickle in below checkpointEvery.
      this.checkpointTimer = setInterval(() => void this.checkpoint().catch((e) => this.log.error({ err: e }, 'checkpoint failed')), 30_000);
      this.checkpointTimer.unref();
    }
  }

  /**
   * Opens the current generation of `config.indexDir`. `readonly` (CLI search) takes no lock and
   * writes nothing; otherwise this process becomes the index's only writer.
   */
  static async open(deps: QuarryDeps & { readonly?: boolean }): Promise<Quarry> {
    const { config, embedder } = deps;
    const readonly = deps.readonly ?? false;
    const release = readonly ? () => {} : acquireWriterLock(config.indexDir);
    try {
      if (!readonly) removeStaleGenerations(config.indexDir);
      const dir = currentGenerationDir(config.indexDir);
      if (!dir) throw new QuarryError('index_missing', `there is no index in ${config.indexDir}: run \`npm run rebuild-index\``);
      const gen = await Generation.open(dir, embedder, config, { readonly, efSearch: config.efSearch });
      return new Quarry(config, embedder, gen, release, deps.logger ?? silentLogger);
    } catch (e) {
      release();
      throw e;
    }
  }

  /**
   * Builds a new generation from `articles` and makes it current (the CLI's rebuild-index, and the first
   * start). Takes the writer lock for the duration; the previous generation stays usable until the swap.
   */
  static async buildFrom(deps: QuarryDeps & { articles: SourcedArticle[]; source: { kind: 'folder' | 'store' | 'empty'; path?: string; fingerprint?: string }; onProgress?: (p: BuildProgress) => void; folderFiles?: ReadonlyMap<string, string> }): Promise<BuildReport> {
    const release = acquireWriterLock(deps.config.indexDir);
    try {
      const { buildingDir, report } = await buildGeneration({ root: deps.config.indexDir, config: deps.config, embedder: deps.embedder, articles: deps.articles, source: deps.source, onProgress: deps.onProgress, folderFiles: deps.folderFiles });
      publishGeneration(deps.config.indexDir, buildingDir);
      removeStaleGenerations(deps.config.indexDir);
      return report;
    } finally {
      release();
    }
  }

  /** Every article stored in the current index (for a rebuild after a model or chunker change). */
  static readStoredArticles(indexDir: string): SourcedArticle[] {
    const dir = currentGenerationDir(indexDir);
    if (!dir) return [];
    const db = new ArticleDatabase(join(dir, DATABASE_FILE), { readonly: true });
    try {
      return [...db.iterateArticles()].map(storedToSourced);
    } finally {
      db.close();
    }
  }

  get manifest() {
    return this.gen.manifest;
  }

  get writeQueueDepth(): number {
    return this.queue.depth;
  }

  async search(req: SearchRequest): Promise<SearchResponse> {
    const started = performance.now();
    const vectorPromise = req.mode !== 'lexical' ? this.embedder.embedQuery(req.q) : null;
    // Handled below; this only keeps a rejection from counting as unhandled should BM25 throw first.
    vectorPromise?.catch(() => undefined);
    // BM25 runs while the model embeds the query: with the query worker the two overlap on two cores.
    let gen = this.gen;
    let lexical = lexicalCandidates(gen, req, this.config);
    let embedMs = 0;
    let queryVector: Float32Array | null = null;
    if (vectorPromise) {
      queryVector = await vectorPromise;
      embedMs = performance.now() - started;
    }
    // A rebuild may have swapped the generation during the await: its chunk rowids are not the old ones.
    if (this.gen !== gen) {
      gen = this.gen;
      lexical = lexicalCandidates(gen, req, this.config);
    }
    const ranked = rankArticles(gen, req, queryVector, lexical, this.config);
    const took = performance.now() - started;
    const timings: SearchTimings = { embed: embedMs, ...ranked.timings };
    for (const listener of this.searchListeners) listener({ mode: req.mode, timings, tookMs: took });
    return {
      query: req.q,
      mode: req.mode,
      took_ms: Math.round(took * 100) / 100,
      total: ranked.total,
      cut_by_min_score: ranked.cutByMinScore,
      results: ranked.results,
      index: { model: gen.manifest.model.id, dims: gen.manifest.model.dims, articles: gen.liveArticles, chunks: gen.liveChunks, built: gen.manifest.built },
      ...(req.explain ? { timings_ms: timings } : {}),
    };
  }

  /** Per-stage timings of every search, explain or not (the server's metrics); returns an unsubscribe. */
  onSearch(listener: SearchListener): () => void {
    this.searchListeners.add(listener);
    return () => this.searchListeners.delete(listener);
  }

  getArticle(id: string): ArticleRecord | null {
    return this.gen.db.getArticle(id);
  }

  listArticles(): Array<{ id: string; origin: string; contentHash: string }> {
    return this.gen.db.listArticles();
  }

  /** Seeds-folder articles as last applied to the index, id -> content hash (see seeds-sync.ts). */
  folderFiles(): Map<string, string> {
    return this.gen.db.folderFiles();
  }

  async recordFolderFiles(files: ReadonlyMap<string, string>): Promise<void> {
    this.assertWritable();
    await this.queue.run(() => this.gen.db.setFolderFiles(files), { bypassLimit: true });
  }

  /**
   * Adds or replaces articles. Embedding runs first, outside any transaction; then one transaction for
   * the whole batch; the promise resolves only after it commits (synchronous=FULL), so an acknowledged
   * write survives a crash.
   */
  async upsertArticles(articles: Article[], origin: string | ((a: Article) => string)): Promise<WriteAck[]> {
    this.assertWritable();
    const duplicate = articles.find((a, i) => articles.findIndex((b) => b.id === a.id) !== i);
    if (duplicate) throw new QuarryError('invalid_request', `article id ${duplicate.id} appears twice in one batch`, { field: 'articles' });
    return this.queue.run(async () => {
      const prepared = await prepareArticles(articles, this.embedder, this.config);
      const gen = this.gen;
      const results = gen.db.db.transaction(() =>
        prepared.map(({ article, chunks }) => ({ result: gen.db.upsertArticle(article, chunks, typeof origin === 'string' ? origin : origin(article)), chunks })),
      ).immediate();
      for (const { result, chunks } of results) {
        gen.applyWrite(result, new Map(result.added.map((rowid, i) => [rowid, chunks[i]!.vector])));
      }
      await this.afterWrite();
      return results.map(({ result }) => ({ id: result.articleId, chunks: result.added.length, replaced: result.replaced }));
    });
  }

  /** Deletes an article and all of its chunks; false when there is no such article. */
  async deleteArticle(id: string): Promise<boolean> {
    this.assertWritable();
    return this.queue.run(async () => {
      const result: WriteResult | null = this.gen.db.deleteArticle(id);
      if (!result) return false;
      this.gen.applyWrite(result, new Map());
      await this.afterWrite();
      return true;
    });
  }

  /** Runs inside the queue after each write: compaction and checkpoints when due. */
  private async afterWrite(): Promise<void> {
    const gen = this.gen;
    if (gen.vectors.points >= 1000 && gen.deletedPoints / gen.vectors.points > this.config.compactDeletedRatio) {
      this.log.info({ deleted: gen.deletedPoints, points: gen.vectors.points }, 'compacting the HNSW graph from SQLite');
      await gen.compact();
      await gen.checkpoint(this.rebuildFromSeq === null);
    } else if (gen.vectors.seq - gen.lastCheckpointSeq >= this.config.checkpointEvery) {
      await gen.checkpoint(this.rebuildFromSeq === null);
    }
  }

  /** Saves the HNSW graph if it changed since the last checkpoint (queued: never during a mutation). */
  async checkpoint(): Promise<void> {
    if (this.gen.readonly || this.closed) return;
    await this.queue.run(() => this.gen.checkpoint(this.rebuildFromSeq === null), { bypassLimit: true });
  }

  get rebuild(): RebuildStatus {
    return { ...this.rebuildStatus };
  }

  /**
   * Re-chunks and re-embeds every stored article into a new generation in the background, then swaps it
   * in. Searches use the old generation until the swap; writes made meanwhile go to the old one and are
   * replayed into the new one (under the write queue) just before the swap, so none is lost.
   */
  startRebuild(): RebuildStatus {
    this.assertWritable();
    if (this.rebuildStatus.state === 'running') throw new QuarryError('conflict', 'a rebuild is already running; see GET /admin/rebuild');
    const old = this.gen;
    this.rebuildFromSeq = old.db.lastSeq();
    const articles = [...old.db.iterateArticles()].map(storedToSourced);
    this.rebuildStatus = { ...idleRebuild(), state: 'running', startedAt: new Date().toISOString(), articlesTotal: articles.length };
    this.rebuildRun = this.runRebuild(articles).catch((e: Error) => {
      this.log.error({ err: e }, 'rebuild failed; the previous index is still in use');
      this.rebuildStatus = { ...this.rebuildStatus, state: 'failed', finishedAt: new Date().toISOString(), error: e.message };
      this.rebuildFromSeq = null;
    });
    return this.rebuild;
  }

  private async runRebuild(articles: SourcedArticle[]): Promise<void> {
    const { buildingDir, report } = await buildGeneration({
      root: this.config.indexDir,
      config: this.config,
      embedder: this.embedder,
      articles,
      // Keep what the index tracks (a seeds folder): a rebuild re-embeds the same articles, and a start after
      // it must still sync that folder.
      source: this.gen.manifest.source,
      onProgress: (p) => {
        this.abandonRebuildIfClosing();
        Object.assign(this.rebuildStatus, { articlesDone: p.articlesDone, chunksDone: p.chunksDone });
      },
    });
    let published = false;
    try {
      await this.queue.run(async () => {
        this.abandonRebuildIfClosing();
        const old = this.gen;
        const fresh = await Generation.open(buildingDir, this.embedder, this.config, { readonly: false, efSearch: this.config.efSearch });
        const touched = new Set(old.db.changesAfter(this.rebuildFromSeq ?? 0).map((c) => c.articleId));
        try {
          const current = [...touched].map((id) => old.db.getArticle(id));
          const upserts = current.filter((a): a is ArticleRecord => a !== null);
          const prepared = await prepareArticles(upserts, this.embedder, this.config);
          fresh.db.db.transaction(() => {
            for (const { article, chunks } of prepared) {
              const r = fresh.db.upsertArticle(article, chunks, upserts.find((u) => u.id === article.id)!.origin);
              fresh.applyWrite(r, new Map(r.added.map((rowid, i) => [rowid, chunks[i]!.vector])));
            }
            for (const id of touched) {
              if (!upserts.some((u) => u.id === id)) {
                const r = fresh.db.deleteArticle(id);
                if (r) fresh.applyWrite(r, new Map());
              }
            }
            // Seed articles deleted through the API are in no stored article: keep the record that says so.
            fresh.db.setFolderFiles(old.db.folderFiles());
          }).immediate();
          await fresh.checkpoint(true);
        } finally {
          fresh.close();
        }
        const finalDir = publishGeneration(this.config.indexDir, buildingDir);
        published = true;
        this.gen = await Generation.open(finalDir, this.embedder, this.config, { readonly: false, efSearch: this.config.efSearch });
        old.close();
        removeStaleGenerations(this.config.indexDir);
        this.log.info({ ...report, caughtUp: touched.size }, 'rebuild swapped in');
      }, { bypassLimit: true });
    } catch (e) {
      // Not published: the half-made generation is ours (its owner pid is alive), so nobody else removes it.
      if (!published) discardGeneration(buildingDir);
      throw e;
    }
    this.rebuildFromSeq = null;
    this.rebuildStatus = { ...this.rebuildStatus, state: 'succeeded', finishedAt: new Date().toISOString(), report, articlesDone: report.articles, chunksDone: report.chunks };
  }

  stats(): IndexStats {
    const gen = this.gen;
    const disk = gen.diskBytes();
    return {
      articles: gen.liveArticles,
      chunks: gen.liveChunks,
      deleted: gen.deletedPoints,
      model: gen.manifest.model.id,
      dtype: gen.manifest.model.dtype,
      dims: gen.manifest.model.dims,
      pooling: gen.manifest.model.pooling,
      chunker: gen.manifest.chunker.version,
      hnsw: { M: gen.manifest.hnsw.M, efConstruction: gen.manifest.hnsw.efConstruction, efSearch: gen.vectors.params.efSearch, points: gen.vectors.points },
      disk: { sqliteBytes: disk.sqlite, hnswBytes: disk.hnsw, totalBytes: disk.sqlite + disk.hnsw },
      built: gen.manifest.built,
      buildSeconds: gen.manifest.buildSeconds,
      lastCheckpoint: gen.lastCheckpointAt,
      changesSinceCheckpoint: gen.vectors.seq - gen.lastCheckpointSeq,
      writeQueue: this.queue.depth,
      rebuild: this.rebuildStatus.state,
      dir: gen.dir,
    };
  }

  /** Healthy when the index is open and the model answers within the timeout. */
  async health(timeoutMs = 5000): Promise<{ ok: boolean; modelMs: number; error?: string }> {
    const started = performance.now();
    try {
      await Promise.race([
        // A passage, not a query: query embeddings may come from the LRU and prove nothing about the model.
        this.embedder.embedPassages(['health check']),
        new Promise((_, rej) => setTimeout(() => rej(new Error(`model did not answer within ${timeoutMs} ms`)), timeoutMs).unref()),
      ]);
      if (!this.gen.db.db.open) throw new Error('index database is closed');
      return { ok: true, modelMs: performance.now() - started };
    } catch (e) {
      return { ok: false, modelMs: performance.now() - started, error: (e as Error).message };
    }
  }

  /** A full consistency check of the open index (O(n): SQLite, FTS5 and every HNSW point); see integrity.ts. */
  integrity(): IntegrityReport {
    return checkIntegrity(this.gen);
  }

  private abandonRebuildIfClosing(): void {
    if (this.closing) throw new QuarryError('conflict', 'the index was closed during the rebuild; the previous index stays in use');
  }

  /** Stops a running rebuild, waits for queued writes, writes a final checkpoint and releases the index. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    // A rebuild left running would write into the index folder after the lock is released.
    this.closing = true;
    await this.rebuildRun;
    if (!this.gen.readonly) {
      // Through the queue: a write that slipped in before `closing` was set finishes first, and nothing can
      // mutate the graph while hnswlib writes it on its worker thread.
      await this.queue.run(() => this.gen.checkpoint(this.rebuildFromSeq === null), { bypassLimit: true });
    }
    this.closed = true;
    this.gen.close();
    this.releaseLock();
  }

  private assertWritable(): void {
    if (this.closed || this.closing) throw new QuarryError('overloaded', 'the index is closing (the server is shutting down); retry against the restarted server');
    if (this.gen.readonly) throw new QuarryError('forbidden', 'this index was opened read-only');
  }
}

function storedToSourced(a: ArticleRecord): SourcedArticle {
  const { origin, contentHash: _h, updatedAt: _u, ...article } = a;
  return { article, origin };
}
