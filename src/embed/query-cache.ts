import type { Embedder } from './embedder.ts';

/**
 * Remembers the vectors of the most recent distinct queries (bounded LRU, keyed by the exact query
 * text). The query embedding is most of a search's time; a repeated query (paging, a dashboard, the
 * same question from many users) then skips the model. Passages are never cached.
 */
export function withQueryCache(inner: Embedder, maxEntries: number): Embedder & { readonly hits: number; readonly misses: number } {
  const cache = new Map<string, Float32Array>();
  let hits = 0;
  let misses = 0;
  return {
    get info() {
      return inner.info;
    },
    passagesOffMainThread: inner.passagesOffMainThread,
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    // Passages pass straight through, token ids included: dropping them (and encodePassage) made every write
    // tokenise each paragraph twice on the main thread, once for the chunker and once more for the workers.
    embedPassages: (texts, onProgress, tokenIds, opts) => inner.embedPassages(texts, onProgress, tokenIds, opts),
    encodePassage: inner.encodePassage ? (text) => inner.encodePassage!(text) : undefined,
    countTokens: (text) => inner.countTokens(text),
    close: () => inner.close(),
    async embedQuery(text: string): Promise<Float32Array> {
      const cached = cache.get(text);
      if (cached) {
        hits++;
        // Map keeps insertion order: re-inserting marks the entry most recently used.
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      misses++;
      const vector = await inner.embedQuery(text);
      cache.set(text, vector);
      if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
      return vector;
    },
  };
}
