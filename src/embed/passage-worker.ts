/**
 * Runs in a worker thread: a second model session that embeds passages for writes and rebuilds.
 * onnxruntime-node runs inference synchronously on the thread that calls it, so passages embedded on the
 * main thread would hold every search (and every HTTP request) for the length of each model call.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createTransformersEmbedder, type TransformersEmbedderOptions } from './transformers-embedder.ts';

export type WorkerRequest = { id: number; texts: string[] } | { id: number; close: true };
export type WorkerResponse = { id: number; vectors?: Float32Array[]; error?: string; ready?: true };

const port = parentPort!;
const embedder = await createTransformersEmbedder(workerData as TransformersEmbedderOptions).catch((e: Error) => {
  port.postMessage({ id: 0, error: e.message } satisfies WorkerResponse);
  return null;
});
if (embedder) {
  port.postMessage({ id: 0, ready: true } satisfies WorkerResponse);
  port.on('message', async (msg: WorkerRequest) => {
    if ('close' in msg) {
      await embedder.close();
      port.postMessage({ id: msg.id } satisfies WorkerResponse);
      port.close();
      return;
    }
    try {
      const vectors = await embedder.embedPassages(msg.texts);
      // Transferred, not copied: each vector owns its buffer (see transformers-embedder's slice()).
      port.postMessage({ id: msg.id, vectors } satisfies WorkerResponse, vectors.map((v) => v.buffer as ArrayBuffer));
    } catch (e) {
      port.postMessage({ id: msg.id, error: (e as Error).message } satisfies WorkerResponse);
    }
  });
}
