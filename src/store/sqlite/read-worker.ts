import { Worker } from 'node:worker_threads';
import { QuarryError } from '../../errors.ts';
import type { ArticleDatabase } from './database.ts';
import { type ReadArgs, type ReadMethod, type ReadRequest, type ReadResponse, type ReadResult, runRead } from './read-protocol.ts';

/** The compiled thread next to this file in dist/; from the TypeScript sources (tests, benches) a boot file that registers tsx first. */
const ENTRY = import.meta.url.endsWith('.ts') ? new URL('./read-worker-boot.mjs', import.meta.url) : new URL('./read-worker-thread.js', import.meta.url);

/**
 * The search reads of a SQLite store, answered by a worker thread with read-only connections of its own
 * (read-worker-thread.ts), so the main thread only sends ids and gets rows back. Calls are answered in order.
 * Once the worker has died every read runs on the main thread's connection instead (see {@link via}): a
 * search never fails because the worker did.
 */
export class ReadWorker {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failed: Error | null = null;

  private constructor(private readonly worker: Worker) {}

  static async start(): Promise<ReadWorker> {
    const worker = new Worker(ENTRY, { name: 'quarry-read' });
    worker.unref();
    const rw = new ReadWorker(worker);
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: ReadResponse) => {
        if (msg.id === 0) return resolve();
        const p = rw.pending.get(msg.id);
        rw.pending.delete(msg.id);
        if (!p) return;
        if (msg.error)
          p.reject(
            msg.error.code ? new QuarryError(msg.error.code, msg.error.message, { field: msg.error.field }) : new Error(`read worker: ${msg.error.message}`),
          );
        else p.resolve(msg.result);
      });
      const fail = (e: Error) => {
        rw.failed = e;
        reject(e);
        for (const p of rw.pending.values()) p.reject(e);
        rw.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`read worker exited with code ${code}`)));
    });
    return rw;
  }

  get dead(): boolean {
    return this.failed !== null;
  }

  /**
   * `db.method(...args)` on the worker's connection to the same database file, or on `db` itself when the worker
   * is gone (also for a call in flight when it died).
   */
  via<M extends ReadMethod>(db: ArticleDatabase, dir: string, method: M, ...args: ReadArgs<M>): Promise<ReadResult<M>> {
    const local = () => runRead(db, method, args);
    if (this.failed) return Promise.resolve(local());
    return this.request<ReadResult<M>>({ kind: 'read', id: this.nextId++, dir, method, args }).catch((e: Error) => {
      if (this.failed) return local();
      throw e;
    });
  }

  /** The generation in `dir` is closed: the worker closes its connection to it. */
  forget(dir: string): void {
    if (!this.failed) this.worker.postMessage({ kind: 'forget', dir } satisfies ReadRequest);
  }

  async close(): Promise<void> {
    if (!this.failed) await this.request({ kind: 'close', id: this.nextId++ }).catch(() => null);
    this.failed ??= new Error('read worker closed');
    await this.worker.terminate();
  }

  private request<T>(msg: Extract<ReadRequest, { id: number }>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage(msg);
    });
  }
}
