import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { yieldToEventLoop } from '../../util/event-loop.ts';
import { type StageProfile, timed } from '../../util/stage-profile.ts';
import type { Manifest } from '../manifest.ts';
import type { WriteOp, WriteOutcome } from '../store.ts';
import { type CompactedGraph, removeUnfinishedCompactions } from './compaction.ts';
import { ArticleDatabase, type Change, DATABASE_FILE, type WriteResult } from './database.ts';
import { findDuplicates } from './find-duplicates.ts';
import { MetadataIndex } from './metadata-index.ts';
import { checkpointBytes, publishCheckpoint, VectorIndex } from './vector-index.ts';

const YIELD_EVERY = 512;
/** A compaction's swap replays at most about this many changes while it holds writes (catchUpCompacted). */
const HELD_REPLAY = 64;
/** HNSW inserts between two turns of the event loop while a compacted graph catches up (~1–5 ms each). */
const REPLAY_SLICE = 16;
/** Open catch-up rounds at most: writes that outpace the replay leave the rest to the swap. */
const CATCH_UP_ROUNDS = 8;
/** lastCheckpointSeq when the graph in memory is not the one on disk whatever its seq. */
const NO_CHECKPOINT = -1;

/**
 * One complete index on disk (a generation): manifest, SQLite database and HNSW graph, open together.
 * SQLite is the truth; the graph is brought up to date with it on open, and every write goes through
 * {@link Generation.write}: commit in SQLite first, then the same change in the graph.
 */
export class Generation {
  /** Chunks in the database (= live points in the graph); kept here because count(*) is O(n). */
  liveChunks: number;
  liveArticles: number;
  lastCheckpointAt: string | null = null;
  private lastCheckpointSeq: number;
  private vectorIndex: VectorIndex;
  /** Dates, sources, tags, chunk counts and duplicate groups in memory, for filters and collapsing. */
  readonly meta: MetadataIndex;
  private readers = 0;
  private retired = false;
  private readonly closeListeners: Array<() => void> = [];

  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
    readonly db: ArticleDatabase,
    vectors: VectorIndex,
    readonly readonly: boolean,
    checkpointSeq: number,
  ) {
    const counts = db.counts();
    this.liveChunks = counts.chunks;
    this.liveArticles = counts.articles;
    this.lastCheckpointSeq = checkpointSeq;
    this.vectorIndex = vectors;
    this.meta = MetadataIndex.load(db);
  }

  /** Opens a published generation: the graph from its checkpoint plus the changes logged after it. */
  static async open(dir: string, manifest: Manifest, opts: { readonly: boolean; efSearch: number }): Promise<Generation> {
    const db = new ArticleDatabase(join(dir, DATABASE_FILE), { readonly: opts.readonly });
    const params = { ...manifest.hnsw, efSearch: opts.efSearch };
    try {
      if (!opts.readonly) removeUnfinishedCompactions(dir);
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
      const gen = new Generation(dir, manifest, db, vectors, opts.readonly, checkpointSeq);
      // Articles whose duplicates were never looked for: an index from before duplicate groups existed, or a
      // crash between a write's commit and its grouping (the second step of Generation.write).
      if (!opts.readonly) await gen.groupDuplicates(db.uncheckedArticles());
      return gen;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** A new, empty generation being built in `dir` (bulk mode: durable once {@link finishBuild} ran). */
  static create(dir: string, manifest: Manifest, expectedChunks: number): Generation {
    const db = new ArticleDatabase(join(dir, DATABASE_FILE), { bulk: true });
    return new Generation(dir, manifest, db, VectorIndex.create(manifest.model.dims, manifest.hnsw, expectedChunks), false, NO_CHECKPOINT);
  }

  get vectors(): VectorIndex {
    return this.vectorIndex;
  }

  get deletedPoints(): number {
    return this.vectorIndex.points - this.liveChunks;
  }

  /** Chunk changes not yet in the checkpoint on disk. */
  get changesSinceCheckpoint(): number {
    return this.lastCheckpointSeq === NO_CHECKPOINT ? this.vectorIndex.seq : this.vectorIndex.seq - this.lastCheckpointSeq;
  }

  /**
   * Applies upserts and deletes as one SQLite transaction, then brings the graph in line with it (no await
   * in between, so no reader sees the database and the graph disagree). A crash between the two is repaired
   * on the next open by replaying the change log.
   */
  write(ops: WriteOp[], profile?: StageProfile): WriteOutcome[] {
    const outcomes = this.writeArticles(ops, profile);
    timed(profile, 'duplicates', () => this.groupDuplicatesNow(this.written));
    return outcomes;
  }

  /** Article rows inserted by the last writeArticles call (to group with their duplicates). */
  private written: number[] = [];

  private writeArticles(ops: WriteOp[], profile?: StageProfile): WriteOutcome[] {
    this.written = [];
    const vectorsByRowid = new Map<number, Float32Array>();
    const results = timed(profile, 'sqlite+fts5', () =>
      this.db.transaction(() =>
        ops.map((op): WriteResult | null => {
          if (op.op === 'delete') return this.db.deleteArticle(op.id);
          const { article, chunks, origin } = op.article;
          const r = this.db.upsertArticle(article, chunks, origin);
          r.added.forEach((rowid, i) => vectorsByRowid.set(rowid, chunks[i]!.vector));
          return r;
        }),
      ),
    );
    return timed(profile, 'hnsw', () =>
      results.map((r, i) => {
        if (!r) {
          const op = ops[i]!;
          return { id: op.op === 'delete' ? op.id : op.article.article.id, result: 'absent', chunks: 0 };
        }
        this.applyToGraph(r, vectorsByRowid);
        return { id: r.articleId, result: r.kind === 'insert' ? 'inserted' : r.kind === 'replace' ? 'replaced' : 'deleted', chunks: r.added.length };
      }),
    );
  }

  private applyToGraph(result: WriteResult, vectorsByRowid: Map<number, Float32Array>): void {
    for (const rowid of result.removed) {
      this.vectorIndex.remove(rowid);
      this.meta.removeChunk(rowid);
    }
    if (result.removedArticleRowid !== null) this.meta.removeArticle(result.removedArticleRowid);
    if (result.articleRowid !== null) {
      for (const f of this.db.articleFacts(result.articleRowid)) this.meta.setArticle(f);
      this.written.push(result.articleRowid);
    }
    for (const rowid of result.added) {
      this.vectorIndex.add(rowid, vectorsByRowid.get(rowid)!);
      this.meta.setChunk(rowid, result.articleRowid!);
    }
    this.vectorIndex.seq = result.lastSeq;
    this.liveChunks += result.added.length - result.removed.length;
    if (result.kind === 'insert') this.liveArticles++;
    else if (result.kind === 'delete') this.liveArticles--;
  }

  /**
   * The second step of a write: each new article joins the group of the stored articles that are the same
   * story (corpus/duplicates.ts), in one transaction that also marks it checked. A crash before it leaves the
   * articles unchecked, and the next open groups them.
   */
  private groupDuplicatesNow(articleRowids: number[]): void {
    if (articleRowids.length === 0) return;
    this.db.transaction(() => {
      for (const rowid of articleRowids) {
        const same = findDuplicates(this, rowid);
        if (same.length > 0) {
          const { group, changed } = this.db.mergeGroups(rowid, same);
          for (const r of changed) this.meta.setGroup(r, group);
        }
        this.db.markDuplicatesChecked(rowid);
      }
    });
  }

  /** Groups many unchecked articles (on open), a slice at a time so the event loop keeps turning. */
  async groupDuplicates(articleRowids: number[]): Promise<void> {
    for (let i = 0; i < articleRowids.length; i += YIELD_EVERY) {
      this.groupDuplicatesNow(articleRowids.slice(i, i + YIELD_EVERY));
      await yieldToEventLoop();
    }
  }

  /** Saves the graph; the caller guarantees no mutation until it resolves. */
  async checkpoint(pruneLog: boolean): Promise<void> {
    if (this.readonly || this.vectorIndex.seq === this.lastCheckpointSeq) return;
    await this.vectorIndex.saveCheckpoint(this.dir);
    this.lastCheckpointSeq = this.vectorIndex.seq;
    this.lastCheckpointAt = new Date().toISOString();
    if (pruneLog) this.db.pruneChanges(this.vectorIndex.seq);
  }

  /**
   * Swaps in a graph compacted beside this one (compaction.ts): built from the vectors stored as of change S,
   * it is brought up to date here by replaying the changes logged after S (a delete is applied, an add of a
   * chunk deleted since is skipped), then its file — the graph as of S — becomes the checkpoint, so nothing is
   * written while writes wait: a crash from here on reopens from it plus the log after S. The caller runs this
   * inside the mutation queue and has kept the log after S from being pruned; catchUpCompacted, outside it, has
   * replayed most of that log already.
   */
  installCompacted(graph: CompactedGraph): { replayed: number } {
    const replayed = replayChanges(this.db, graph.vectors);
    // Published before the swap: if the file cannot be renamed, the live graph and its checkpoint stay as they were.
    publishCheckpoint(this.dir, graph.file, graph.seq, graph.points);
    const old = this.vectorIndex;
    this.vectorIndex = graph.vectors;
    // Nothing holds the old graph across an await (searches call it synchronously; checkpoints run in the queue).
    old.release();
    this.lastCheckpointSeq = graph.seq;
    this.lastCheckpointAt = new Date().toISOString();
    return { replayed };
  }

  /**
   * Brings a compacted graph (not yet live) towards the change log while writes go on, before its swap holds
   * them: in slices, serving the event loop between slices. Replayed in the swap, the changes of a compaction
   * that took a minute under writes were hundreds of HNSW inserts in one task, which held every search for
   * 0.2–0.5 s (soak: searches refused past their deadline). Returns once what is left is small enough for the
   * swap (or after a few rounds if writes outpace it), or when `abandoned()` says the graph will not be installed.
   */
  async catchUpCompacted(graph: CompactedGraph, abandoned: () => boolean): Promise<number> {
    let replayed = 0;
    for (let round = 0; round < CATCH_UP_ROUNDS; round++) {
      const changes = this.db.changesAfter(graph.vectors.seq);
      if (changes.length <= HELD_REPLAY) break;
      for (let i = 0; i < changes.length; i += REPLAY_SLICE) {
        if (abandoned()) return replayed;
        replayed += applyChanges(this.db, graph.vectors, changes.slice(i, i + REPLAY_SLICE));
        await yieldToEventLoop();
      }
    }
    return replayed;
  }

  /** Ends a build: the database durable, the change log (only the build's own inserts) pruned, the graph saved. */
  async finishBuild(): Promise<void> {
    this.db.finishBulk();
    await this.checkpoint(true);
  }

  diskBytes(): { sqlite: number; hnsw: number } {
    const size = (f: string) => (existsSync(join(this.dir, f)) ? statSync(join(this.dir, f)).size : 0);
    return { sqlite: size(DATABASE_FILE) + size(`${DATABASE_FILE}-wal`), hnsw: checkpointBytes(this.dir) };
  }

  /** Counts a reader in; the generation stays open until the last one is released, even once retired. */
  acquire(): () => void {
    this.readers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      if (this.retired && this.readers === 0) this.close();
    };
  }

  /** Closes the generation now, or when its last reader is released. */
  retire(): void {
    this.retired = true;
    if (this.readers === 0) this.close();
  }

  /** Runs `fn` once the generation is closed (another connection to its database, say, closes with it). */
  onClose(fn: () => void): void {
    this.closeListeners.push(fn);
  }

  private close(): void {
    this.db.close();
    this.vectorIndex.release();
    for (const fn of this.closeListeners.splice(0)) fn();
  }
}

/** Applies the changes logged after the checkpoint (idempotent: adds of deleted chunks are skipped). */
function replayChanges(db: ArticleDatabase, vectors: VectorIndex): number {
  const replayed = applyChanges(db, vectors, db.changesAfter(vectors.seq));
  vectors.seq = Math.max(vectors.seq, db.lastSeq());
  return replayed;
}

/** Applies logged changes in order (idempotent: an add of a chunk deleted since is skipped). */
function applyChanges(db: ArticleDatabase, vectors: VectorIndex, changes: Change[]): number {
  for (const change of changes) {
    if (change.op === 'delete') vectors.remove(change.chunkRowid);
    else {
      const v = db.vectorOf(change.chunkRowid);
      if (v) vectors.add(change.chunkRowid, v);
    }
    vectors.seq = change.seq;
  }
  return changes.length;
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
