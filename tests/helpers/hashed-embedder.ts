import type { Embedder, ModelInfo } from '../../src/embed/embedder.ts';

/*
 * A TEST embedder, not a language model: a hashed bag of words. For tests whose subject is not the model —
 * the HTTP contract (validation, auth, OpenAPI, metrics, logging), storage, fusion, grouping — so they run
 * in milliseconds and never load ONNX. Deterministic: the same text always gives the same vector, in any
 * process. Texts that share words get similar vectors (cosine = overlap of their word counts), which keeps
 * a "semantic" search of an article's own words meaningful; it knows nothing of synonyms or meaning, so a test
 * that needs real semantic ranking belongs in tests/e2e with the real model.
 *
 * Its identity (`info.id`) names it as a test model, so an index it built is refused by the real model (and the
 * other way round) like any other model change.
 */

export const HASHED_EMBEDDER_ID = 'test/hashed-bag-of-words';
export const HASHED_EMBEDDER_DIMS = 384;

/** Words as the vectors see them: runs of letters and digits, lower-cased. */
const words = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];

/** FNV-1a, 32 bits: small, stable across platforms and runs. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The vector of a text: each word adds ±1 at its hashed dimension (the sign halves collision bias); L2-normalised. */
export function hashedVector(text: string, dims = HASHED_EMBEDDER_DIMS): Float32Array {
  const v = new Float32Array(dims);
  // Text with no word at all (punctuation, emoji) still gets a vector of its own: the whole string is one "word".
  const tokens = words(text);
  for (const w of tokens.length > 0 ? tokens : [text]) {
    const h = fnv1a(w);
    v[h % dims]! += h & 0x80000000 ? -1 : 1;
  }
  let norm = Math.hypot(...v);
  if (norm === 0) {
    // Every word cancelled out (or the text is empty): a fixed unit vector rather than NaNs.
    v[0] = 1;
    norm = 1;
  }
  for (let i = 0; i < dims; i++) v[i]! /= norm;
  return v;
}

export function hashedEmbedderInfo(opts: { dims?: number; maxTokens?: number } = {}): ModelInfo {
  const dims = opts.dims ?? HASHED_EMBEDDER_DIMS;
  return {
    id: `${HASHED_EMBEDDER_ID}-${dims}`,
    dtype: 'none',
    pooling: 'mean',
    normalized: true,
    dims,
    maxTokens: opts.maxTokens ?? 256,
    queryPrefix: '',
    passagePrefix: '',
    files: {},
  };
}

/**
 * The test embedder (see the top of this file). `countTokens` is one token per word plus two special tokens.
 * `gate`, when given, holds every passage embedding until it resolves, so a test controls exactly when a write
 * is "still embedding".
 */
export function createHashedEmbedder(opts: { dims?: number; maxTokens?: number; gate?: () => Promise<void> } = {}): Embedder {
  const info = hashedEmbedderInfo(opts);
  return {
    info,
    embedPassages: async (texts, onProgress) => {
      await opts.gate?.();
      const out = texts.map((t) => hashedVector(t, info.dims));
      onProgress?.({ done: texts.length, total: texts.length });
      return out;
    },
    embedQuery: async (text) => hashedVector(text, info.dims),
    countTokens: (text) => words(text).length + 2,
    close: async () => {},
  };
}
