/**
 * Runs in a worker thread: a model session of its own, embedding either passages (writes and rebuilds: token
 * ids the main thread made) or queries (searches: text), one worker per role. onnxruntime-node runs inference
 * synchronously on the thread that calls it, so a model call on the main thread holds every search and every
 * HTTP request for its length, and nothing else (BM25, the next request) can use the other core meanwhile.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelInfo } from './embedder.ts';
import { createTransformersEmbedder, type TransformersEmbedderOptions } from './transformers-embedder.ts';

export type WorkerRequest =
  | { id: number; kind: 'tokens'; ids: Int32Array; lengths: Int32Array }
  | { id: number; kind: 'query'; text: string }
  | { id: number; close: true };
export type WorkerResponse = {
  id: number;
  /** rows × dims, row-major (one row for a query). */
  vectors?: Float32Array;
  /** Time spent in the model and in pooling, in ms (the rebuild profile). */
  modelMs?: number;
  poolMs?: number;
  error?: string;
  ready?: true;
  info?: ModelInfo;
};

/** What the worker is started with: the model's options, and the CPU priority of a background session. */
export type WorkerData = TransformersEmbedderOptions & { nice?: number };

const port = parentPort!;
const { nice = 0, ...options } = workerData as WorkerData;
// Linux keeps a nice value per thread: this lowers only this worker's thread, before the model loads so any thread
// ONNX Runtime starts inherits it (with one intra-op thread it runs the model on this one). Lowering needs no
// privilege; a system that refuses it runs the session at normal priority.
if (nice > 0) {
  try {
    setPriority(0, nice);
  } catch {}
}
const embedder = await createTransformersEmbedder(options).catch((e: Error) => {
  port.postMessage({ id: 0, error: e.message } satisfies WorkerResponse);
  return null;
});
if (embedder) {
  port.postMessage({ id: 0, ready: true, info: embedder.info } satisfies WorkerResponse);
  port.on('message', async (msg: WorkerRequest) => {
    if ('close' in msg) {
      await embedder.close();
      port.postMessage({ id: msg.id } satisfies WorkerResponse);
      port.close();
      return;
    }
    try {
      const ids = msg.kind === 'query' ? Int32Array.from(embedder.encodeQuery(msg.text)) : msg.ids;
      const lengths = msg.kind === 'query' ? Int32Array.of(ids.length) : msg.lengths;
      const { vectors, modelMs, poolMs } = await embedder.embedTokenBatch(ids, lengths);
      // Transferred, not copied: the batch's vectors are one buffer of their own.
      port.postMessage({ id: msg.id, vectors, modelMs, poolMs } satisfies WorkerResponse, [vectors.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ id: msg.id, error: (e as Error).message } satisfies WorkerResponse);
    }
  });
}
