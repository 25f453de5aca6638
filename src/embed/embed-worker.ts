/**
 * Runs in a worker thread: a model session of its own, embedding either passages (writes and rebuilds) or
 * queries (searches), one worker per role. onnxruntime-node runs inference synchronously on the thread
 * that calls it, so a model call on the main thread holds every search and every HTTP request for its
 * length, and nothing else (BM25, the next request) can use the other core meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelInfo } from './embedder.ts';
import { createTransformersEmbedder, type TransformersEmbedderOptions } from './transformers-embedder.ts';

export type WorkerRequest = { id: number; kind: 'passages' | 'query'; texts: string[] } | { id: number; close: true };
export type WorkerResponse = { id: number; vectors?: Float32Array[]; error?: string; ready?: true; info?: ModelInfo };

const port = parentPort!;
const embedder = await createTransformersEmbedder(workerData as TransformersEmbedderOptions).catch((e: Error) => {
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
      const vectors = msg.kind === 'query' ? [await embedder.embedQuery(msg.texts[0] ?? '')] : await embedder.embedPassages(msg.texts);
      // Transferred, not copied: each vector owns its buffer (see transformers-embedder's slice()).
      port.postMessage(
        { id: msg.id, vectors } satisfies WorkerResponse,
        vectors.map((v) => v.buffer as ArrayBuffer),
      );
    } catch (e) {
      port.postMessage({ id: msg.id, error: (e as Error).message } satisfies WorkerResponse);
    }
  });
}
