import { join } from 'node:path';
import { AutoTokenizer, type PreTrainedTokenizer } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { lengthSortedBatches } from '../../src/embed/embedder.ts';

/** A feed of int64 tensors, built before any timing starts. */
export type Feed = Record<string, ort.Tensor>;

export interface TokenisedBatch {
  feed: Feed;
  /** Real (unpadded) tokens. */
  tokens: number;
  /** batch × padded length. */
  padded: number;
  mask: BigInt64Array;
  dims: [number, number];
}

export function modelFile(modelsDir: string, model: string, dtype: string): string {
  const suffix: Record<string, string> = { fp32: '', q8: '_quantized', q4: '_q4', int8: '_int8', uint8: '_uint8', fp16: '_fp16' };
  return join(modelsDir, model, 'onnx', `model${suffix[dtype] ?? ''}.onnx`);
}

export async function loadTokenizer(model: string): Promise<PreTrainedTokenizer> {
  // Relies on the Transformers.js env (local model path, no remote) set by createEmbedder.
  return AutoTokenizer.from_pretrained(model);
}

/**
 * Tokenises exactly as Transformers.js' feature-extraction pipeline does (padding to the longest in the
 * batch, truncation to the model maximum), in Quarry's length-sorted batches.
 */
export function tokeniseBatches(tokenizer: PreTrainedTokenizer, texts: string[], batchSize: number, inputNames: readonly string[]): TokenisedBatch[] {
  // Same batches as Quarry's embedPassages: sorted by token count.
  const lengths = texts.map((t) => tokenizer.encode(t).length);
  return lengthSortedBatches(texts, batchSize, lengths).map((idx) => {
    const enc = tokenizer(
      idx.map((i) => texts[i]!),
      { padding: true, truncation: true },
    ) as unknown as Record<string, { data: BigInt64Array; dims: number[] }>;
    const mask = enc.attention_mask!;
    const dims = mask.dims as [number, number];
    const feed: Feed = {};
    for (const name of inputNames) {
      const t = enc[name] ?? { data: new BigInt64Array(mask.data.length), dims };
      feed[name] = new ort.Tensor('int64', t.data, t.dims);
    }
    let tokens = 0;
    for (const v of mask.data) tokens += Number(v);
    return { feed, tokens, padded: dims[0] * dims[1], mask: mask.data, dims };
  });
}

export function createSession(file: string, opts: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, opts);
}

/** Mean pooling over the attention mask and L2 normalisation, in plain JS (what the pipeline does after the model). */
export function meanPoolNormalise(hidden: Float32Array, mask: BigInt64Array, batch: number, seq: number, dims: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const v = new Float32Array(dims);
    let n = 0;
    for (let s = 0; s < seq; s++) {
      if (mask[b * seq + s] === 0n) continue;
      n++;
      const off = (b * seq + s) * dims;
      for (let d = 0; d < dims; d++) v[d]! += hidden[off + d]!;
    }
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      v[d]! /= n;
      norm += v[d]! * v[d]!;
    }
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dims; d++) v[d]! /= norm;
    out.push(v);
  }
  return out;
}
