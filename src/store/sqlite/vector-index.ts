import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import hnswlib from 'hnswlib-node';
import { z } from 'zod';
import { fsyncDir, fsyncFileAsync, writeFileAtomic } from '../../util/atomic-file.ts';
import type { HnswParams } from '../manifest.ts';

const { HierarchicalNSW } = hnswlib;
type Hnsw = InstanceType<typeof HierarchicalNSW>;

export const CHECKPOINT_FILE = 'checkpoint.json';
export const CheckpointSchema = z.object({ file: z.string(), seq: z.number().int(), points: z.number().int(), written: z.string() });
export type Checkpoint = z.infer<typeof CheckpointSchema>;

export interface Neighbour {
  label: number;
  /** Cosine similarity (1 - hnswlib's cosine distance). */
  similarity: number;
}

const MIN_CAPACITY = 1024;

/**
 * The HNSW graph (hnswlib-node) over chunk vectors, labelled by chunk rowid. It is a derived cache of the
 * vectors in SQLite: saved as a checkpoint that records the last change it includes.
 *
 * hnswlib-node traps handled here: `ef` resets on every load (setEf after initIndex/readIndex); k larger
 * than the live count throws (callers pass the live count); deleted points stay in the graph until it is
 * rebuilt (the caller compacts); writeIndex runs on a worker thread (the caller never mutates meanwhile).
 */
export class VectorIndex {
  private constructor(
    private readonly hnsw: Hnsw,
    readonly dims: number,
    readonly params: HnswParams,
    /** The last change sequence number included in the graph. */
    public seq: number,
  ) {}

  static create(dims: number, params: HnswParams, capacity: number): VectorIndex {
    const hnsw = new HierarchicalNSW('cosine', dims);
    hnsw.initIndex({ maxElements: Math.max(MIN_CAPACITY, capacity), m: params.M, efConstruction: params.efConstruction, randomSeed: 100 });
    hnsw.setEf(params.efSearch);
    return new VectorIndex(hnsw, dims, params, 0);
  }

  /** Loads the checkpoint in `dir`; null when there is none or it cannot be read (the caller rebuilds). */
  static async loadCheckpoint(dir: string, dims: number, params: HnswParams): Promise<VectorIndex | null> {
    const cpPath = join(dir, CHECKPOINT_FILE);
    if (!existsSync(cpPath)) return null;
    try {
      const cp = CheckpointSchema.parse(JSON.parse(readFileSync(cpPath, 'utf8')));
      const hnsw = new HierarchicalNSW('cosine', dims);
      await hnsw.readIndex(join(dir, cp.file));
      hnsw.setEf(params.efSearch);
      if (hnsw.getCurrentCount() !== cp.points) return null;
      return new VectorIndex(hnsw, dims, params, cp.seq);
    } catch {
      return null;
    }
  }

  /**
   * Loads a graph file written elsewhere (a compaction's worker) that holds the changes up to `seq`. readIndex
   * runs on hnswlib-node's own worker thread, so the event loop keeps serving meanwhile.
   */
  static async loadFile(path: string, dims: number, params: HnswParams, seq: number): Promise<VectorIndex> {
    const hnsw = new HierarchicalNSW('cosine', dims);
    await hnsw.readIndex(path);
    hnsw.setEf(params.efSearch);
    return new VectorIndex(hnsw, dims, params, seq);
  }

  /**
   * Frees the graph's memory now (hnswlib-node's initIndex deletes the native index it replaces) instead of when
   * V8 collects this object: V8 does not see the native memory, so with a small JS heap a replaced graph (a
   * compaction's, a retired generation's) could stay resident for a long time. The caller must not use it after.
   */
  release(): void {
    this.hnsw.initIndex({ maxElements: 1, m: this.params.M, efConstruction: this.params.efConstruction, randomSeed: 100 });
  }

  /** Points in the graph, marked-deleted ones included. */
  get points(): number {
    return this.hnsw.getCurrentCount();
  }

  setEf(ef: number): void {
    this.hnsw.setEf(ef);
  }

  add(label: number, vector: Float32Array): void {
    const count = this.hnsw.getCurrentCount();
    if (count >= this.hnsw.getMaxElements()) this.hnsw.resizeIndex(Math.max(MIN_CAPACITY, Math.ceil(count * 1.5)));
    this.hnsw.addPoint(Array.from(vector), label);
  }

  /** Marks a point deleted; a label that is absent or already deleted is ignored (replay is idempotent). */
  remove(label: number): void {
    try {
      this.hnsw.markDelete(label);
    } catch {
      /* not present, or already deleted */
    }
  }

  /** Every label in the graph, marked-deleted ones included. */
  labels(): number[] {
    return this.hnsw.getIdsList();
  }

  /** The stored vector of a live point; null when the label is absent or marked deleted (hnswlib throws then). */
  pointOf(label: number): Float32Array | null {
    try {
      return Float32Array.from(this.hnsw.getPoint(label));
    } catch {
      return null;
    }
  }

  /**
   * The k nearest live points (that `filter` accepts, when given: then fewer than k when the graph search
   * does not reach k accepted points). `liveCount` clamps k: hnswlib throws when k exceeds what it can return.
   */
  search(vector: Float32Array, k: number, liveCount: number, ef?: number, filter?: (label: number) => boolean): Neighbour[] {
    const n = Math.min(k, liveCount);
    if (n <= 0) return [];
    if (ef !== undefined) this.hnsw.setEf(Math.max(ef, n));
    else if (n > this.params.efSearch) this.hnsw.setEf(n);
    try {
      const { neighbors, distances } = this.hnsw.searchKnn(Array.from(vector), n, filter);
      return neighbors.map((label, i) => ({ label, similarity: 1 - distances[i]! }));
    } finally {
      if (ef !== undefined || n > this.params.efSearch) this.hnsw.setEf(this.params.efSearch);
    }
  }

  /**
   * Writes the graph as a checkpoint: temp file, fsync, rename, then checkpoint.json (atomically) names
   * it. A crash at any point leaves the previous checkpoint intact. The caller must not mutate the graph
   * until this resolves (hnswlib-node writes on a worker thread).
   */
  async saveCheckpoint(dir: string): Promise<Checkpoint> {
    const tmp = join(dir, `hnsw-${this.seq}-${Date.now()}.bin.tmp`);
    await this.hnsw.writeIndex(tmp);
    await fsyncFileAsync(tmp);
    return publishCheckpoint(dir, tmp, this.seq, this.hnsw.getCurrentCount());
  }
}

/**
 * Makes a written, fsynced graph file (holding the changes up to `seq`, `points` points) the checkpoint of
 * `dir`: renamed to its final name, then checkpoint.json (atomically) names it, then older graphs go. A crash
 * at any point leaves the previous checkpoint or this one, each whole.
 */
export function publishCheckpoint(dir: string, written: string, seq: number, points: number): Checkpoint {
  const file = `hnsw-${seq}-${Date.now()}.bin`;
  renameSync(written, join(dir, file));
  fsyncDir(dir);
  const cp: Checkpoint = { file, seq, points, written: new Date().toISOString() };
  writeFileAtomic(join(dir, CHECKPOINT_FILE), `${JSON.stringify(cp)}\n`);
  for (const old of readdirSync(dir)) {
    // Older graphs, and temporary files left by a process killed mid-checkpoint (graph or checkpoint.json).
    if ((/^hnsw-.*\.bin(\.tmp)?$/.test(old) && old !== file) || old.startsWith(`${CHECKPOINT_FILE}.tmp-`)) rmSync(join(dir, old), { force: true });
  }
  return cp;
}

/** On-disk size of the checkpoint files in `dir`. */
export function checkpointBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.startsWith('hnsw-'))
    .reduce((total, f) => total + statSync(join(dir, f)).size, 0);
}
