import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { HnswParams } from '../manifest.ts';
import { DATABASE_FILE } from './database.ts';
import { VectorIndex } from './vector-index.ts';

/** A compaction's graph file while it is built; never a checkpoint until published (see Generation.open). */
const FILE_PREFIX = 'compacting-';

/**
 * Plain JavaScript run in a worker thread (no TypeScript loader needed, from the sources or dist/ alike; both
 * better-sqlite3 and hnswlib-node are N-API addons that keep per-thread state, so they load in a worker). It
 * reads every stored vector in ONE read transaction of its own connection (WAL: the writer goes on meanwhile)
 * together with the newest change seq S that transaction sees, inserts them into a new graph, writes it and
 * fsyncs it, at nice 10 (a background job). The SQL mirrors database.ts (lastSeq, iterateVectors); it lives here because it runs elsewhere.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.sqlite);
const { HierarchicalNSW } = require(workerData.hnswlib);
try {
  // Background work: on Linux this lowers only this thread, so searches and writes get the cores first.
  try { require('node:os').setPriority(0, 10); } catch {}
  const t0 = Date.now();
  const db = new Database(workerData.database, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 10000');
  db.exec('BEGIN');
  let seq, points;
  try {
    const r = db.prepare("SELECT (SELECT max(seq) FROM changes) AS maxSeq, (SELECT seq FROM sqlite_sequence WHERE name = 'changes') AS baseSeq, (SELECT count(*) FROM chunks) AS chunks").get();
    seq = r.maxSeq ?? r.baseSeq ?? 0;
    const { dims, M, efConstruction } = workerData;
    const index = new HierarchicalNSW('cosine', dims);
    index.initIndex({ maxElements: Math.max(1024, Math.ceil(r.chunks * 1.2)), m: M, efConstruction, randomSeed: 100 });
    const v = new Float32Array(dims);
    const bytes = new Uint8Array(v.buffer);
    for (const row of db.prepare('SELECT rowid, vector FROM chunks ORDER BY rowid').iterate()) {
      bytes.set(row.vector);
      index.addPoint(Array.from(v), row.rowid);
    }
    points = index.getCurrentCount();
    db.exec('COMMIT');
    db.close();
    index.writeIndexSync(workerData.file);
  } finally {
    if (db.open) db.close();
  }
  const fd = fs.openSync(workerData.file, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  parentPort.postMessage({ ok: true, seq, points, ms: Date.now() - t0 });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String((e && e.message) || e) });
}
`;

/** A graph built from the vectors stored as of change `seq`, loaded, and its file (to publish as a checkpoint). */
export interface CompactedGraph {
  vectors: VectorIndex;
  file: string;
  seq: number;
  points: number;
  buildMs: number;
}

/**
 * One compaction of a generation's HNSW graph, built beside the live graph: a worker thread builds it from a
 * read snapshot of SQLite at seq S while writes and searches go on; the caller then, inside its mutation queue,
 * replays the changes logged after S into it and swaps it in (Generation.installCompacted). The caller keeps
 * the change log from being pruned while this exists. `cancel` stops the worker and throws the file away; a
 * cancelled compaction's result is never installed.
 */
export class Compaction {
  readonly file: string;
  /** Settles with the graph, or rejects (the worker failed, or the compaction was cancelled). */
  readonly built: Promise<CompactedGraph>;
  private worker: Worker | null;
  private cancelledFlag = false;

  constructor(dir: string, dims: number, params: HnswParams) {
    this.file = join(dir, `${FILE_PREFIX}${process.pid}-${Date.now()}.bin`);
    const modules = createRequire(import.meta.url);
    this.worker = new Worker(WORKER, {
      eval: true,
      name: 'quarry-compaction',
      workerData: {
        sqlite: modules.resolve('better-sqlite3'),
        hnswlib: modules.resolve('hnswlib-node'),
        database: join(dir, DATABASE_FILE),
        file: this.file,
        dims,
        M: params.M,
        efConstruction: params.efConstruction,
      },
    });
    const worker = this.worker;
    const done = new Promise<{ seq: number; points: number; ms: number }>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (!settled) f();
        settled = true;
      };
      worker.once('message', (m: { ok: true; seq: number; points: number; ms: number } | { ok: false; error: string }) =>
        settle(() => (m.ok ? resolve(m) : reject(new Error(`compacting the HNSW graph failed: ${m.error}`)))),
      );
      worker.once('error', (e) => settle(() => reject(new Error(`compacting the HNSW graph failed: ${e.message}`))));
      worker.once('exit', (code) => settle(() => reject(new Error(`compacting the HNSW graph stopped: its worker exited with code ${code}`))));
    });
    this.built = done.then(async (r) => {
      this.worker = null;
      if (this.cancelledFlag) throw new Error('compaction cancelled');
      const vectors = await VectorIndex.loadFile(this.file, dims, params, r.seq);
      return { vectors, file: this.file, seq: r.seq, points: r.points, buildMs: r.ms };
    });
    // Observed by the caller; marked handled so a cancellation while nobody awaits it is not unhandled.
    this.built.catch(() => {});
  }

  get cancelled(): boolean {
    return this.cancelledFlag;
  }

  /** Stops the worker (resolves once it has exited) and removes the file; the result will not be installed. */
  async cancel(): Promise<void> {
    this.cancelledFlag = true;
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
    this.removeFile();
  }

  /** Removes the graph file unless it was published (renamed) as the checkpoint. */
  removeFile(): void {
    rmSync(this.file, { force: true });
  }
}

/** Graph files of compactions that never finished (a crash, a kill): removed when a writer opens the generation. */
export function removeUnfinishedCompactions(dir: string): void {
  for (const f of readdirSync(dir)) if (f.startsWith(FILE_PREFIX)) rmSync(join(dir, f), { force: true });
}
