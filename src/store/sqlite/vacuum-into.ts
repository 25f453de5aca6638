import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { QuarryError } from '../../errors.ts';

/** What the copy holds, read back from it. */
export interface CopiedDatabase {
  /** The newest change sequence number (the state the copy is consistent at). */
  lastSeq: number;
  /** The oldest change still in its log (null: the log is empty). */
  firstLoggedSeq: number | null;
  articles: number;
  chunks: number;
  ms: number;
}

/**
 * Plain JavaScript run in a worker thread (no TypeScript loader needed, from the sources or dist/ alike):
 * VACUUM INTO copies one read transaction of the live database into a new, compact file while the writer goes
 * on (WAL), then the copy is fsynced (SQLite does not) and read back.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const Database = require(workerData.module);
try {
  const t0 = Date.now();
  const src = new Database(workerData.source, { readonly: true, fileMustExist: true });
  src.pragma('busy_timeout = 10000');
  src.prepare('VACUUM INTO ?').run(workerData.target);
  src.close();
  const fd = fs.openSync(workerData.target, 'r+');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const copy = new Database(workerData.target, { readonly: true, fileMustExist: true });
  const r = copy.prepare("SELECT (SELECT max(seq) FROM changes) AS maxSeq, (SELECT min(seq) FROM changes) AS minSeq, (SELECT seq FROM sqlite_sequence WHERE name = 'changes') AS baseSeq, (SELECT count(*) FROM articles) AS articles, (SELECT count(*) FROM chunks) AS chunks").get();
  copy.close();
  parentPort.postMessage({ ok: true, lastSeq: r.maxSeq ?? r.baseSeq ?? 0, firstLoggedSeq: r.minSeq, articles: r.articles, chunks: r.chunks, ms: Date.now() - t0 });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e && e.message || e) });
}
`;

/**
 * Copies the SQLite database at `source` into `target` as of one read transaction, on a worker thread: a copy
 * of a large index takes seconds of I/O, which must not stall the event loop that serves searches.
 */
export function vacuumInto(source: string, target: string): Promise<CopiedDatabase> {
  const module = createRequire(import.meta.url).resolve('better-sqlite3');
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { module, source, target }, name: 'quarry-snapshot' });
    let settled = false;
    worker.once('message', (m: ({ ok: true } & CopiedDatabase) | { ok: false; error: string }) => {
      settled = true;
      if (m.ok) resolve({ lastSeq: m.lastSeq, firstLoggedSeq: m.firstLoggedSeq, articles: m.articles, chunks: m.chunks, ms: m.ms });
      else reject(new QuarryError('unavailable', `copying the database ${source} failed: ${m.error}`));
    });
    worker.once('error', (e) => {
      if (!settled) reject(new QuarryError('unavailable', `copying the database ${source} failed: ${e.message}`));
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new QuarryError('unavailable', `copying the database ${source} failed: its worker exited with code ${code}`));
      settled = true;
    });
  });
}
