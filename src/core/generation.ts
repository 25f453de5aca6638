import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QuarryError } from '../errors.ts';
import type { Embedder } from '../embed/embedder.ts';
import { ArticleDatabase, DATABASE_FILE, type WriteResult } from '../store/database.ts';
import { incompatibility, readManifest, type Manifest } from '../store/manifest.ts';
import { checkpointBytes, VectorIndex } from '../store/vector-index.ts';
import type { ChunkerSettings } from './ingest.ts';
import { chunkerManifest } from './ingest.ts';

const YIELD_EVERY = 512;
/** lastCheckpointSeq when the graph in memory is not the one on disk whatever its seq. */
const NO_CHECKPOINT = -1;
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

/**
 * One complete index on disk (a generation): manifest, SQLite database and HNSW graph, open together.
 * SQLite is the truth; the graph is brought up to date with it on open.
 */
export class Generation {
  /** Chunks in the database (= live points in the graph); kept here because count(*) is O(n). */
  liveChunks: number;
  liveArticles: number;
  lastCheckpointSeq: number;
  lastCheckpointAt: string | null = null;

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly db: ArticleDatabase,
    public vectors: VectorIndex,
    readonly readonly: boolean,
    checkpointSeq: number,
  ) {
    const counts = db.counts();
    this.liveChunks = counts.chunks;
    this.liveArticles = counts.articles;
    this.lastCheckpointSeq = checkpointSeq;
  }

  static async open(dir: string, embedder: Embedder, chunker: ChunkerSettings, opts: { readonly: boolean; efSearch: number }): Promise<Generation> {
    const manifest = readManifest(dir);
    const why = incompatibility(manifest, embedder.info, chunkerManifest(chunker));
    if (why) throw new QuarryError('index_incompatible', `cannot open the index in ${dir}: ${why}`);
    const dbPath = join(dir, DATABASE_FILE);
    if (!existsSync(dbPath)) throw new QuarryError('index_missing', `the index in ${dir} has no database: run \`npm run rebuild-index\``);
    const db = new ArticleDatabase(dbPath, { readonly: opts.readonly });
    const params = { ...manifest.hnsw, efSearch: opts.efSearch };
    try {
      let vectors = await VectorIndex.loadCheckpoint(dir, manifest.model.dims, params);
      // The seq the file on disk holds, not the replayed one: changes replayed after a crash must reach the
      // next checkpoint, or every later start would replay them again (and the log could never be pruned).
      let checkpointSeq = NO_CHECKPOINT;
      if (vectors === null || vectors.seq > db.lastSeq()) {
        // No usable checkpoint (crash before the first one, or a damaged file): rebuild from SQLite's vectors.
        vectors = await rebuildVectors(db, manifest.model.dims, params);
      } else {
        checkpointSeq = vectors.seq;
        replayChanges(db, vectors);
      }
      return new Generation(dir, manifest, db, vectors, opts.readonly, checkpointSeq);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  get deletedPoints(): number {
    return this.vectors.points - this.liveChunks;
  }

  /** Brings the graph in line with a committed write. Called right after the transaction, with no await between. */
  applyWrite(result: WriteResult, vectorsByRowid: Map<number, Float32Array>): void {
    for (const rowid of result.removed) this.vectors.remove(rowid);
    for (const rowid of result.added) this.vectors.add(rowid, vectorsByRowid.get(rowid)!);
    this.vectors.seq = result.lastSeq;
    this.liveChunks += result.added.length - result.removed.length;
    if (result.kind === 'insert') this.liveArticles++;
    else if (result.kind === 'delete') this.liveArticles--;
  }

  /** Saves the graph; the caller guarantees no mutation until it resolves. */
  async checkpoint(pruneLog: boolean): Promise<void> {
    if (this.readonly || this.vectors.seq === this.lastCheckpointSeq) return;
    await this.vectors.saveCheckpoint(this.dir);
    this.lastCheckpointSeq = this.vectors.seq;
    this.lastCheckpointAt = new Date().toISOString();
    if (pruneLog) this.db.pruneChanges(this.vectors.seq);
  }

  /** Replaces the graph with one built from SQLite's vectors, dropping marked-deleted points. */
  async compact(): Promise<void> {
    const fresh = await rebuildVectors(this.db, this.manifest.model.dims, this.vectors.params);
    this.vectors = fresh;
    // Same seq, different graph: the next checkpoint must write it even though no change came in.
    this.lastCheckpointSeq = NO_CHECKPOINT;
  }

  diskBytes(): { sqlite: number; hnsw: number } {
    const size = (f: string) => (existsSync(join(this.dir, f)) ? statSync(join(this.dir, f)).size : 0);
    return { sqlite: size(DATABASE_FILE) + size(`${DATABASE_FILE}-wal`), hnsw: checkpointBytes(this.dir) };
  }

  close(): void {
    this.db.close();
  }
}

/** Applies the changes logged after the checkpoint (idempotent: adds of deleted chunks are skipped). */
function replayChanges(db: ArticleDatabase, vectors: VectorIndex): void {
  for (const change of db.changesAfter(vectors.seq)) {
    if (change.op === 'delete') vectors.remove(change.chunkRowid);
    else {
      const v = db.vectorOf(change.chunkRowid);
      if (v) vectors.add(change.chunkRowid, v);
    }
    vectors.seq = change.seq;
  }
  vectors.seq = Math.max(vectors.seq, db.lastSeq());
}

async function rebuildVectors(db: ArticleDatabase, dims: number, params: VectorIndex['params']): Promise<VectorIndex> {
  const seq = db.lastSeq();
  const vectors = VectorIndex.create(dims, params, Math.ceil(db.counts().chunks * 1.2));
  let n = 0;
  for (const { rowid, vector } of db.iterateVectors()) {
    vectors.add(rowid, vector);
    if (++n % YIELD_EVERY === 0) await yieldToEventLoop();
  }
  vectors.seq = seq;
  return vectors;
}
