import { Worker } from 'node:worker_threads';
import { QuarryError } from '../errors.ts';
import type { WorkerRequest, WorkerResponse } from './embed-worker.ts';
import { type Embedder, type EmbedProgress, lengthSortedBatches, type ModelInfo } from './embedder.ts';
import type { TokenCounter, TransformersEmbedderOptions } from './transformers-embedder.ts';

/** Passages per message: progress is reported per slice, and a slice's vectors come back together. */
const SLICE = 64;

type Job = { kind: 'passages' | 'query'; texts: string[] };

interface ModelWorker {
  /** The model as the worker loaded it (dims probed, file checksums). */
  info: ModelInfo;
  run(job: Job): Promise<Float32Array[]>;
  close(): Promise<void>;
}

/**
 * The worker's entry: the compiled embed-worker.js next to this file in dist/; from the TypeScript sources (tests,
 * benches run with tsx) a boot file that registers tsx in the worker first.
 */
const WORKER_ENTRY = import.meta.url.endsWith('.ts') ? new URL('./embed-worker-boot.mjs', import.meta.url) : new URL('./embed-worker.js', import.meta.url);

/** Starts a worker thread with its own model session; resolves once the model is loaded. */
async function startModelWorker(opts: TransformersEmbedderOptions, role: string): Promise<ModelWorker> {
  const worker = new Worker(WORKER_ENTRY, { workerData: opts, name: `quarry-${role}` });
  worker.unref();
  const pending = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failed: Error | null = null;
  const info = await new Promise<ModelInfo>((resolve, reject) => {
    worker.on('message', (msg: WorkerResponse) => {
      if (msg.id === 0) return msg.ready && msg.info ? resolve(msg.info) : reject(new QuarryError('model_unavailable', `${role} worker: ${msg.error}`));
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (!p) return;
      if (msg.error !== undefined) p.reject(new Error(`${role} worker: ${msg.error}`));
      else p.resolve(msg.vectors ?? []);
    });
    const fail = (e: Error) => {
      failed = e;
      reject(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${role} worker exited with code ${code}`)));
  });

  const call = (msg: WorkerRequest): Promise<Float32Array[]> => {
    if (failed) return Promise.reject(failed);
    return new Promise((resolve, reject) => {
      pending.set(msg.id, { resolve, reject });
      worker.postMessage(msg);
    });
  };
  return {
    info,
    run: (job) => call({ id: nextId++, ...job }),
    async close() {
      if (!failed) await call({ id: nextId++, close: true }).catch(() => []);
      await worker.terminate();
    },
  };
}

export interface WorkerRoles {
  /** Writes and rebuilds: a long embedding call no longer blocks searches, which then only share the CPU with it. */
  passages: boolean;
  /**
   * Searches: the main thread is free while the query is embedded, so the search runs BM25 meanwhile (the
   * two overlap on a second core) and the event loop keeps serving other requests.
   */
  queries: boolean;
  /** Intra-op threads of the query session (default: opts.threads). */
  queryThreads?: number;
}

/**
 * Wraps an embedder so passages and/or queries are embedded by the same model in worker threads, one
 * session per role (a query never waits behind a write's batch). Token counts stay on the main thread.
 * With both roles in workers, `main` needs no model session: a {@link TokenCounter} is enough.
 */
export async function withWorkers(main: Embedder | TokenCounter, opts: TransformersEmbedderOptions, roles: WorkerRoles): Promise<Embedder> {
  const embedder = 'embedQuery' in main ? main : null;
  if (!embedder && !(roles.passages && roles.queries)) throw new Error('withWorkers: a main thread without a model session needs both workers');
  if (embedder && !roles.passages && !roles.queries) return embedder;
  const [passageWorker, queryWorker] = await Promise.all([
    roles.passages ? startModelWorker(opts, 'passage') : null,
    roles.queries ? startModelWorker({ ...opts, threads: roles.queryThreads ?? opts.threads }, 'query') : null,
  ]);

  const embedPassagesInWorker = async (worker: ModelWorker, texts: string[], onProgress?: (p: EmbedProgress) => void): Promise<Float32Array[]> => {
    // Sorted by token count across the whole call before it is cut into messages: the worker only sorts
    // within a message, and slices of mixed lengths would be padded (measured 40% slower unsorted).
    const out = new Array<Float32Array>(texts.length);
    let done = 0;
    for (const slice of lengthSortedBatches(
      texts,
      SLICE,
      texts.map((t) => main.countTokens(t)),
    )) {
      const vectors = await worker.run({ kind: 'passages', texts: slice.map((j) => texts[j]!) });
      slice.forEach((j, n) => (out[j] = vectors[n]!));
      done += slice.length;
      onProgress?.({ done, total: texts.length });
    }
    return out;
  };

  const info = embedder?.info ?? queryWorker?.info ?? passageWorker!.info;
  return {
    info,
    passagesOffMainThread: passageWorker !== null,
    countTokens: (text) => main.countTokens(text),
    embedPassages: (texts, onProgress) =>
      passageWorker ? embedPassagesInWorker(passageWorker, texts, onProgress) : embedder!.embedPassages(texts, onProgress),
    embedQuery: async (text) => (queryWorker ? (await queryWorker.run({ kind: 'query', texts: [text] }))[0]! : embedder!.embedQuery(text)),
    async close(): Promise<void> {
      await Promise.all([passageWorker?.close(), queryWorker?.close()]);
      await main.close();
    },
  };
}
