import { join } from 'node:path';
import { QuarryError } from '../../errors.ts';
import { type Logger, silentLogger } from '../../logger.ts';
import { yieldToEventLoop } from '../../util/event-loop.ts';
import { Serial } from '../../util/serial.ts';
import { slicesByChunks } from '../build-slices.ts';
import { type HnswParams, type IndexIdentity, incompatibility, type Manifest, newManifest, readManifest, writeManifest } from '../manifest.ts';
import type {
  ArticleRecord,
  ArticleSummary,
  FilterScope,
  GenerationBuilder,
  GenerationOrigin,
  IndexStore,
  IntegrityReport,
  SnapshotReport,
  StoreReader,
  StoreStats,
  WriteOp,
  WriteOutcome,
} from '../store.ts';
import { Compaction } from './compaction.ts';
import { ArticleDatabase, DATABASE_FILE } from './database.ts';
import { denseCandidates } from './dense-search.ts';
import { Generation } from './generation.ts';
import { currentGenerationDir, discardGeneration, publishGeneration, removeStaleGenerations, startGeneration } from './index-dir.ts';
import { checkIntegrity } from './integrity.ts';
import { acquireWriterLock } from './lock.ts';
import { MaintenancePolicy } from './maintenance.ts';
import { SqliteScope } from './metadata-index.ts';
import { type ReadArgs, type ReadMethod, type ReadResult, runRead } from './read-protocol.ts';
import { ReadWorker } from './read-worker.ts';
import { openCheckpoint, releaseCheckpoint, writeSnapshot } from './snapshot.ts';

export interface SqliteStoreOptions {
  /** The index folder: generations (`gen-…/`) and the CURRENT file naming the one in use. */
  root: string;
  /** The model and chunker this process embeds with: a generation built with others is not opened. */
  identity: IndexIdentity;
  /** 'read' takes no lock and writes nothing (CLI search, check); 'write' makes this process the only writer. */
  access: 'read' | 'write';
  hnsw: Omit<HnswParams, 'space'>;
  /** Checkpoint the HNSW graph after this many chunk changes, and compact it past this share of deleted points. */
  checkpointEvery: number;
  compactDeletedRatio: number;
  /** A filtered vector search over at most this many chunks scans them exactly (default: dense-search.ts). */
  exactScanMaxChunks?: number;
  /** A filtered HNSW search raises ef by 1/selectivity^this (default: dense-search.ts). */
  filteredEfExponent?: number;
  logger?: Logger;
  /**
   * Run the text look-ups of searches (BM25, highlights, chunk texts, article fields) in a worker thread with
   * read-only connections of its own (read-worker.ts), keeping them off the main thread (the server).
   */
  readWorker?: boolean;
  /**
   * Called when a compaction's graph is built (as of change `seq`), before its swap, which waits for it: tests
   * hold it there to land writes, searches and checkpoints while a compaction is in flight.
   */
  onCompactionBuilt?: (seq: number) => Promise<void> | void;
}

/** Chunks stored per step of a generation being built (see the builder's write). */
const BUILD_WRITE_CHUNKS = 64;
/**
 * The same for a rebuild beside live searches: each step holds the event loop for its SQLite rows and HNSW inserts
 * (about 0.5 ms a chunk at 11k points), and a search that arrives meanwhile waits for the whole step.
 */
const BACKGROUND_WRITE_CHUNKS = 16;

/** Even when writes trickle in below checkpointEvery, the replay work after a crash stays bounded. */
const CHECKPOINT_INTERVAL_MS = 30_000;

/** After a compaction failed, the next one is not tried before this (a broken disk must not spin a core). */
const COMPACTION_RETRY_MS = 60_000;

/**
 * The embedded backend: SQLite (articles, chunks with their vectors, FTS5, a change log) is the truth, and an
 * HNSW graph in memory (hnswlib-node, checkpointed to disk) answers k-NN. One process writes (a lock file);
 * mutations of the graph — writes, checkpoints, compaction, a generation swap — run one at a time.
 */
export class SqliteStore implements IndexStore {
  readonly backend = 'sqlite' as const;
  private gen: Generation | null;
  private currentManifest: Manifest | null;
  private why: string | null;
  private readonly mutations = new Serial();
  private readonly maintenance: MaintenancePolicy;
  private readonly log: Logger;
  /** Generations being built: while any is, the change log is kept (they replay from it). */
  private building = 0;
  /** Snapshots being written: while any is, the change log is kept (the copy replays it after its checkpoint). */
  private snapshotting = 0;
  /** The compaction being built beside the live graph (one at a time): the change log is kept meanwhile. */
  private compaction: { job: Compaction; gen: Generation; done: Promise<void> } | null = null;
  private compactionRetryAt = 0;
  /** Generations whose close already tells the read worker to close its connection too. */
  private readonly readWorkerGens = new WeakSet<Generation>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** close() began: no new compaction starts (the one running is being stopped). */
  private closing = false;

  private constructor(
    private readonly opts: SqliteStoreOptions,
    gen: Generation | null,
    manifest: Manifest | null,
    why: string | null,
    private readonly releaseLock: () => void,
    private readonly readWorker: ReadWorker | null = null,
  ) {
    this.gen = gen;
    this.currentManifest = manifest;
    this.why = why;
    this.log = opts.logger ?? silentLogger;
    this.maintenance = new MaintenancePolicy(opts.checkpointEvery, opts.compactDeletedRatio);
    if (opts.access === 'write') {
      this.timer = setInterval(() => void this.checkpoint().catch((e) => this.log.error({ err: e }, 'checkpoint failed')), CHECKPOINT_INTERVAL_MS);
      this.timer.unref();
    }
  }

  static async open(opts: SqliteStoreOptions): Promise<SqliteStore> {
    const release = opts.access === 'write' ? acquireWriterLock(opts.root) : () => {};
    try {
      if (opts.access === 'write') removeStaleGenerations(opts.root);
      const dir = currentGenerationDir(opts.root);
      if (!dir) return new SqliteStore(opts, null, null, null, release, await startReadWorker(opts));
      const manifest = readManifest(dir);
      const why = incompatibility(manifest, opts.identity.model, opts.identity.chunker);
      // An index made with another model is not loaded (its graph may not even have our dimensions); its
      // articles stay readable so it can be rebuilt from them.
      const gen = why ? null : await Generation.open(dir, manifest, { readonly: opts.access === 'read', efSearch: opts.hnsw.efSearch });
      return new SqliteStore(opts, gen, manifest, why ? `cannot open the index in ${dir}: ${why}` : null, release, await startReadWorker(opts));
    } catch (e) {
      release();
      throw e;
    }
  }

  get hasIndex(): boolean {
    return this.currentManifest !== null;
  }

  get manifest(): Manifest {
    if (!this.currentManifest) throw this.missing();
    return this.currentManifest;
  }

  get incompatibility(): string | null {
    return this.why;
  }

  private missing(): QuarryError {
    return new QuarryError('index_missing', `there is no index in ${this.opts.root}: build one with \`quarry rebuild-index\``);
  }

  /** The generation searches and writes use; throws when there is none or it cannot be used. */
  private usable(): Generation {
    if (this.gen) return this.gen;
    if (this.why) throw new QuarryError('index_incompatible', this.why);
    throw this.missing();
  }

  private writable(): Generation {
    if (this.closed) throw new QuarryError('unavailable', 'the index is closed');
    if (this.opts.access !== 'write') throw new QuarryError('forbidden', 'this index was opened read-only');
    return this.usable();
  }

  reader(): StoreReader {
    const gen = this.usable();
    const release = gen.acquire();
    /** A scope is only meaningful in the generation that resolved it. */
    const ours = (scope: FilterScope | undefined): SqliteScope | null => {
      if (!scope) return null;
      if (!(scope instanceof SqliteScope) || scope.generation !== gen.dir) throw new Error('a filter scope from another reader');
      return scope;
    };
    const read = this.readsOf(gen);
    return {
      generation: gen.dir,
      manifest: gen.manifest,
      counts: () => ({ articles: gen.liveArticles, chunks: gen.liveChunks }),
      scope: async (filter, exclude = []) => gen.meta.scope(filter, exclude, gen.liveChunks, gen.dir),
      lexicalCandidates: async (q) => {
        const scope = ours(q.scope);
        const opts = { limit: q.limit, titleWeight: q.titleWeight, textWeight: q.textWeight };
        // A filtered BM25 asks the metadata index (main-thread memory) about every match: it stays here.
        if (scope) return { chunks: gen.db.lexicalSearch(q.terms, { ...opts, inScope: scope.hasChunk }), path: 'fts5-filtered' };
        return { chunks: await read('lexicalSearch', q.terms, opts), path: 'fts5' };
      },
      vectorCandidates: async (q) => denseCandidates(gen, q, ours(q.scope), this.opts.exactScanMaxChunks, this.opts.filteredEfExponent),
      articlesOfChunks: (ids) => read('articleOfChunks', ids),
      chunkTexts: (ids) => read('chunkTexts', ids),
      articleMetas: (keys) => read('articleMetas', keys),
      matchedTerms: (terms, ids) => read('matchedTerms', terms, ids),
      highlights: (terms, ids) => read('highlights', terms, ids),
      duplicateGroups: async (keys) => {
        const out = new Map<number, number>();
        for (const k of keys) {
          const g = gen.meta.groupOf(k);
          if (g !== null) out.set(k, g);
        }
        return out;
      },
      groupMembers: (groups) => read('groupMembers', groups),
      articleKey: async (id) => gen.db.articleRowidOf(id),
      articleVectors: async (key) => gen.db.vectorsOfArticle(key).map((c) => ({ chunkId: c.rowid, vector: c.vector })),
      newestDate: async () => gen.db.newestDate(),
      release,
    };
  }

  /**
   * How a reader of `gen` runs a text look-up: in the read worker when there is one (whose connection to `gen`
   * closes with it), else on this thread's connection.
   */
  private readsOf(gen: Generation): <M extends ReadMethod>(method: M, ...args: ReadArgs<M>) => Promise<ReadResult<M>> {
    const worker = this.readWorker;
    if (!worker) return async (method, ...args) => runRead(gen.db, method, args);
    if (!this.readWorkerGens.has(gen)) {
      this.readWorkerGens.add(gen);
      gen.onClose(() => worker.forget(gen.dir));
    }
    return (method, ...args) => worker.via(gen.db, gen.dir, method, ...args);
  }

  write(ops: WriteOp[]): Promise<WriteOutcome[]> {
    return this.mutations.run(async () => {
      const gen = this.writable();
      const outcomes = gen.write(ops);
      await this.maintain(gen);
      return outcomes;
    });
  }

  /** The change log may be pruned up to a new checkpoint only when no rebuild or snapshot still needs it. */
  private get mayPruneLog(): boolean {
    return this.building === 0 && this.snapshotting === 0 && this.compaction === null;
  }

  /**
   * After a write (inside the mutation queue): a checkpoint when one is due, and a compaction started when one
   * is due — started, not awaited: it is built beside the live graph while writes go on (startCompaction).
   */
  private async maintain(gen: Generation): Promise<void> {
    if (this.compaction === null && !this.closing && Date.now() >= this.compactionRetryAt && this.maintenance.compactionDue(gen)) this.startCompaction(gen);
    if (this.maintenance.checkpointDue(gen)) await gen.checkpoint(this.mayPruneLog);
  }

  /**
   * Compacts the graph without holding writes for the build: a worker thread builds a new graph from one read
   * snapshot of SQLite at change S (the log after S is kept: mayPruneLog), then the swap — replay of the changes
   * after S, the graph file published as the checkpoint at S — runs in the mutation queue. A generation swap,
   * close or a failure discards it; the live graph is untouched until the swap.
   */
  private startCompaction(gen: Generation): void {
    const started = performance.now();
    this.log.info({ deleted: gen.deletedPoints, points: gen.vectors.points }, 'compacting the HNSW graph beside the live one');
    const job = new Compaction(gen.dir, gen.manifest.model.dims, gen.vectors.params);
    const entry = { job, gen, done: Promise.resolve() };
    this.compaction = entry;
    entry.done = (async () => {
      try {
        const graph = await job.built;
        await this.opts.onCompactionBuilt?.(graph.seq);
        const abandoned = () => job.cancelled || this.closed || this.gen !== gen;
        const caughtUp = await gen.catchUpCompacted(graph, abandoned);
        const installed = await this.mutations.run(() => {
          if (abandoned()) return false;
          const { replayed } = gen.installCompacted(graph);
          this.log.info(
            {
              points: graph.vectors.points,
              deleted: gen.deletedPoints,
              replayed: caughtUp + replayed,
              replayedHoldingWrites: replayed,
              buildMs: graph.buildMs,
              ms: Math.round(performance.now() - started),
            },
            'compacted HNSW graph swapped in',
          );
          return true;
        });
        // Its native memory now, not when V8 gets round to the object (VectorIndex.release).
        if (!installed) graph.vectors.release();
      } catch (e) {
        if (!job.cancelled) {
          this.compactionRetryAt = Date.now() + COMPACTION_RETRY_MS;
          this.log.error({ err: e }, 'compacting the HNSW graph failed; the live graph stays in use');
        }
      } finally {
        job.removeFile();
        if (this.compaction === entry) this.compaction = null;
      }
    })();
  }

  /** Stops a compaction being built and waits until it has let go (call outside the mutation queue). */
  private async stopCompaction(): Promise<void> {
    const c = this.compaction;
    if (!c) return;
    await c.job.cancel();
    await c.done;
  }

  /** Saves the HNSW graph if it changed since the last checkpoint (never during a mutation). */
  checkpoint(): Promise<void> {
    return this.mutations.run(async () => {
      if (this.gen && !this.gen.readonly && !this.closed) await this.gen.checkpoint(this.mayPruneLog);
    });
  }

  async getArticle(id: string): Promise<ArticleRecord | null> {
    return this.usable().db.getArticle(id);
  }

  async listArticles(): Promise<ArticleSummary[]> {
    return this.usable().db.listArticles();
  }

  async *articles(): AsyncIterable<ArticleRecord> {
    if (this.gen) {
      yield* this.gen.db.iterateArticles();
      return;
    }
    const db = this.openCurrentDatabaseReadOnly();
    try {
      yield* db.iterateArticles();
    } finally {
      db.close();
    }
  }

  async folderFiles(): Promise<Map<string, string>> {
    if (this.gen) return this.gen.db.folderFiles();
    const db = this.openCurrentDatabaseReadOnly();
    try {
      return db.folderFiles();
    } finally {
      db.close();
    }
  }

  setFolderFiles(files: ReadonlyMap<string, string>): Promise<void> {
    return this.mutations.run(() => this.writable().db.setFolderFiles(files));
  }

  /** The current generation's database even when it cannot be searched with this model (to rebuild from it). */
  private openCurrentDatabaseReadOnly(): ArticleDatabase {
    const dir = currentGenerationDir(this.opts.root);
    if (!dir) throw this.missing();
    return new ArticleDatabase(join(dir, DATABASE_FILE), { readonly: true });
  }

  async stats(): Promise<StoreStats> {
    const gen = this.usable();
    const disk = gen.diskBytes();
    return {
      backend: 'sqlite',
      articles: gen.liveArticles,
      chunks: gen.liveChunks,
      deleted: gen.deletedPoints,
      hnsw: { M: gen.manifest.hnsw.M, efConstruction: gen.manifest.hnsw.efConstruction, efSearch: gen.vectors.params.efSearch, points: gen.vectors.points },
      disk: { sqliteBytes: disk.sqlite, hnswBytes: disk.hnsw, totalBytes: disk.sqlite + disk.hnsw },
      lastCheckpoint: gen.lastCheckpointAt,
      changesSinceCheckpoint: gen.changesSinceCheckpoint,
      dir: gen.dir,
    };
  }

  async checkIntegrity(): Promise<IntegrityReport> {
    return checkIntegrity(this.usable());
  }

  async ping(): Promise<void> {
    if (!this.usable().db.open) throw new QuarryError('unavailable', 'the index database is closed');
  }

  /**
   * The capture runs inside the mutation queue (no write, checkpoint or compaction meanwhile): it notes the
   * generation, opens its checkpoint file and stops log pruning — microseconds, the only time writes are held.
   * The copy then runs beside writes. In a read-only process (the CLI beside a running server) the writer's
   * checkpoints cannot be held back; writeSnapshot then checks the copy's log still covers the checkpoint.
   */
  async snapshot(dest: string): Promise<SnapshotReport> {
    const startedAt = performance.now();
    for (let attempt = 1; ; attempt++) {
      const take = () => {
        if (this.closed) throw new QuarryError('unavailable', 'the index is closed');
        const t0 = performance.now();
        const genDir = this.gen?.dir ?? currentGenerationDir(this.opts.root);
        if (!genDir) throw this.missing();
        const checkpoint = openCheckpoint(genDir);
        this.snapshotting++;
        return { genDir, checkpoint, writesHeldMs: performance.now() - t0 };
      };
      const capture = this.opts.access === 'write' ? await this.mutations.run(take) : take();
      try {
        return await writeSnapshot({ root: this.opts.root, dest, startedAt, ...capture });
      } catch (e) {
        // A rebuild swapped generations (and removed the old one's files) before the copy opened them: again.
        if (attempt < 3 && currentGenerationDir(this.opts.root) !== capture.genDir) continue;
        throw e;
      } finally {
        this.snapshotting--;
        releaseCheckpoint(capture.checkpoint);
      }
    }
  }

  async beginGeneration(origin: GenerationOrigin): Promise<GenerationBuilder> {
    if (this.opts.access !== 'write') throw new QuarryError('forbidden', 'this index was opened read-only');
    const { identity, hnsw } = this.opts;
    const manifest = newManifest(identity, hnsw, origin.source);
    const dir = startGeneration(this.opts.root);
    const fresh = Generation.create(dir, manifest, 1024);
    const base = this.gen;
    // The change log's position already replayed into the new generation (changedSince moves it on).
    let seenSeq = base ? base.db.lastSeq() : 0;
    this.building++;
    let done = false;
    const finish = () => {
      if (!done) this.building--;
      done = true;
    };
    return {
      write: async (articles, opts) => {
        // In slices of about BUILD_WRITE_CHUNKS chunks, yielding between them: a background rebuild then holds
        // the event loop (and the searches it serves) for one slice's SQLite rows and HNSW inserts at a time
        // (before slicing, a whole group held every search for a second or more: a 2.3 s p99 in the soak bench).
        for (const slice of slicesByChunks(articles, opts?.background ? BACKGROUND_WRITE_CHUNKS : BUILD_WRITE_CHUNKS)) {
          fresh.write(
            slice.map((article) => ({ op: 'upsert', article })),
            opts?.profile,
          );
          await yieldToEventLoop();
          await opts?.pace?.();
        }
      },
      delete: async (ids) => {
        fresh.write(ids.map((id) => ({ op: 'delete', id })));
      },
      changedSince: async () => {
        if (!base) return [];
        const changes = base.db.changesAfter(seenSeq);
        seenSeq = changes.at(-1)?.seq ?? seenSeq;
        return [...new Set(changes.map((c) => c.articleId))];
      },
      publish: ({ folderFiles, buildSeconds }) =>
        this.mutations.run(async () => {
          try {
            fresh.db.setFolderFiles(folderFiles);
            const counts = fresh.db.counts();
            await fresh.finishBuild();
            writeManifest(dir, { ...manifest, counts, built: new Date().toISOString(), buildSeconds: Math.round(buildSeconds * 1000) / 1000 });
            fresh.retire();
            const finalDir = publishGeneration(this.opts.root, dir);
            const opened = await Generation.open(finalDir, readManifest(finalDir), { readonly: false, efSearch: hnsw.efSearch });
            const old = this.gen;
            // A compaction of the old generation is moot: its result would never be installed (gen changed).
            if (this.compaction) await this.compaction.job.cancel();
            this.gen = opened;
            this.currentManifest = opened.manifest;
            this.why = null;
            old?.retire();
            removeStaleGenerations(this.opts.root);
            return counts;
          } finally {
            finish();
          }
        }),
      discard: async () => {
        finish();
        fresh.retire();
        discardGeneration(dir);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.closing = true;
    // Before the queue: the compaction's swap step waits in that queue, and must find it cancelled, not closed.
    await this.stopCompaction();
    // Through the queue: a write that is running finishes first, and nothing mutates the graph while hnswlib
    // writes it on its worker thread.
    await this.mutations.run(async () => {
      if (this.gen && !this.gen.readonly) await this.gen.checkpoint(this.mayPruneLog);
      this.closed = true;
      this.gen?.retire();
    });
    await this.readWorker?.close();
    this.releaseLock();
  }
}

/** The read worker when asked for; a worker that cannot start leaves the reads on the main thread (logged). */
async function startReadWorker(opts: SqliteStoreOptions): Promise<ReadWorker | null> {
  if (!opts.readWorker) return null;
  try {
    return await ReadWorker.start();
  } catch (e) {
    (opts.logger ?? silentLogger).warn({ err: e }, 'the search read worker did not start: searches read on the main thread');
    return null;
  }
}
