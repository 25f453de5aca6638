import { Worker } from 'node:worker_threads';
import { QuarryError } from '../../errors.ts';
import { workerEntry } from '../../util/worker-entry.ts';
import { WorkerRpc } from '../../util/worker-rpc.ts';
import type { ArticleDatabase } from './database.ts';
import { type ReadArgs, type ReadMethod, type ReadRequest, type ReadResponse, type ReadResult, runRead } from './read-protocol.ts';

/**
 * The search reads of a SQLite store, answered by a worker thread with read-only connections of its own
 * (read-worker-thread.ts), so the main thread only sends ids and gets rows back. Calls are answered in order.
 * Once the worker has died every read runs on the main thread's connection instead (see {@link via}): a
 * search never fails because the worker did.
 */
export class ReadWorker {
  private constructor(private readonly rpc: WorkerRpc<Extract<ReadRequest, { id: number }>, ReadResponse, void>) {}

  static async start(): Promise<ReadWorker> {
    const entry = workerEntry(import.meta.url, 'read-worker-thread');
    const worker = new Worker(entry.file, { argv: entry.argv, name: 'quarry-read' });
    worker.unref();
    const rpc = new WorkerRpc<Extract<ReadRequest, { id: number }>, ReadResponse, void>(worker, 'read worker', () => undefined);
    await rpc.started;
    return new ReadWorker(rpc);
  }

  get dead(): boolean {
    return this.rpc.failed !== null;
  }

  /**
   * `db.method(...args)` on the worker's connection to the same database file, or on `db` itself when the worker
   * is gone (also for a call in flight when it died).
   */
  via<M extends ReadMethod>(db: ArticleDatabase, dir: string, method: M, ...args: ReadArgs<M>): Promise<ReadResult<M>> {
    const local = () => runRead(db, method, args);
    if (this.dead) return Promise.resolve(local());
    return this.rpc.call({ kind: 'read', dir, method, args }).then(
      (answer) => {
        const e = answer.error;
        if (!e) return answer.result as ReadResult<M>;
        throw e.code ? new QuarryError(e.code, e.message, { field: e.field }) : new Error(`read worker: ${e.message}`);
      },
      (e: Error) => {
        if (this.dead) return local();
        throw e;
      },
    );
  }

  /** The generation in `dir` is closed: the worker closes its connection to it. */
  forget(dir: string): void {
    this.rpc.post({ kind: 'forget', dir } satisfies ReadRequest);
  }

  close(): Promise<void> {
    return this.rpc.close({ kind: 'close' }, 'read worker closed');
  }
}
