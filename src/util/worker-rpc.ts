import type { Transferable, Worker } from 'node:worker_threads';

/** A message without the id that {@link WorkerRpc.call} gives it (for each member of a union). */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * Calls to a worker thread answered by id: each call's message gets a fresh id, which the worker's answer echoes.
 * The worker's first message (id 0) says whether it started: `started` resolves with what `ready` makes of it, or
 * rejects. Once the worker fails (an error, an exit) every pending and later call is rejected with the first cause,
 * and `failed` says so. The answers are the caller's to read (values, error fields): the model and read workers
 * speak different protocols over this one mechanism.
 */
export class WorkerRpc<Request extends { id: number }, Answer extends { id: number }, Ready> {
  readonly started: Promise<Ready>;
  private readonly pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | null = null;
  /** The reason close() was given, once it has begun (null before). */
  private closedWhy: string | null = null;

  /** `what` names the worker in the error its exit gives ("query worker exited with code 1"). */
  constructor(
    private readonly worker: Worker,
    what: string,
    ready: (first: Answer) => Ready | Error,
  ) {
    this.started = new Promise<Ready>((resolve, reject) => {
      worker.on('message', (msg: Answer) => {
        if (msg.id === 0) {
          const r = ready(msg);
          return r instanceof Error ? reject(r) : resolve(r);
        }
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.resolve(msg);
      });
      const fail = (e: Error) => {
        this.failure ??= e;
        reject(e);
        for (const p of this.pending.values()) p.reject(this.failure);
        this.pending.clear();
      };
      worker.on('error', fail);
      // An exit once close() has begun is the close's doing (a worker may stop as soon as it answers the close), not
      // a crash: its reason is the close's. Without this the close's answer and the exit raced, and the exit's
      // "exited with code 0" sometimes became the reason later calls were refused with.
      worker.on('exit', (code) => fail(new Error(this.closedWhy ?? `${what} exited with code ${code}`)));
    });
    // A worker that fails before it is ready rejects `started`; the caller who awaits it handles that.
    this.started.catch(() => undefined);
  }

  /** Why the worker takes no more calls (it crashed, exited, or was closed), or null while it does. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Sends `msg` with a fresh id (moving `transfer`); resolves with the worker's answer to it. */
  call(msg: WithoutId<Request>, transfer: Transferable[] = []): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /** Sends a message that gets no answer (nothing if the worker has failed). */
  post(msg: unknown): void {
    if (!this.failure) this.worker.postMessage(msg);
  }

  /** Asks the worker to close with `closing` (its answer awaited, a failure ignored), then terminates it. */
  async close(closing: WithoutId<Request>, why: string): Promise<void> {
    this.closedWhy = why;
    if (!this.failure) await this.call(closing).catch(() => null);
    this.failure ??= new Error(why);
    await this.worker.terminate();
  }
}
