import type { Embedder } from '../../src/embed/embedder.ts';

/**
 * An Embedder for building benchmark indexes from cached vectors without re-embedding: it reports the
 * real model's info (so the real model can open and query the index) and counts tokens with it (so the
 * chunker splits as in production), but answers embedPassages from the cache. A chunk whose text is not
 * a cached paragraph (the chunker merged or split it, or the paragraph was never embedded) takes the next
 * vector of `fallback`: real-distribution vectors, not that text's own embedding. Counts are kept.
 */
export function precomputedEmbedder(
  real: Embedder,
  byText: Map<string, Float32Array>,
  fallback: () => Float32Array,
): Embedder & { exact: number; substituted: number } {
  const self = {
    exact: 0,
    substituted: 0,
    info: real.info,
    countTokens: (t: string) => real.countTokens(t),
    embedQuery: (t: string) => real.embedQuery(t),
    close: async () => {},
    async embedPassages(texts: string[]): Promise<Float32Array[]> {
      return texts.map((t) => {
        const v = byText.get(t);
        if (v) self.exact++;
        else self.substituted++;
        return v ?? fallback();
      });
    },
  };
  return self;
}
