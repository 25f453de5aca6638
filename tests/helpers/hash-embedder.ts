import { createHash } from 'node:crypto';
import type { Embedder } from '../../src/embed/embedder.ts';

const DIMS = 32;

/** A deterministic vector per text (a hash, so near-identical texts get unrelated vectors, as HNSW needs). */
export const hashVector = (text: string): Float32Array => {
  const bytes = createHash('sha512').update(text).digest();
  const v = Float32Array.from({ length: DIMS }, (_, i) => bytes[i]! / 255 - 0.5);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
};

/**
 * A stand-in model for unit tests of code that does not depend on what the vectors mean (storage, queues,
 * snapshots): instant, deterministic. `gate`, when given, holds every passage embedding until it resolves,
 * so a test controls exactly when a write is "still embedding".
 */
export function hashEmbedder(opts: { gate?: () => Promise<void> } = {}): Embedder {
  return {
    info: {
      id: 'test/hash-embedder',
      dtype: 'none',
      pooling: 'mean',
      normalized: true,
      dims: DIMS,
      maxTokens: 256,
      queryPrefix: '',
      passagePrefix: '',
      files: {},
    },
    embedPassages: async (texts) => {
      await opts.gate?.();
      return texts.map(hashVector);
    },
    embedQuery: async (t) => hashVector(t),
    countTokens: (t) => t.split(/\s+/).length + 2,
    close: async () => {},
  };
}
