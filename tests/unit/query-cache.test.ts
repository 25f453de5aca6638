import { describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { withQueryCache } from '../../src/embed/query-cache.ts';

/** Counts model calls; the cache's logic does not depend on what the vectors are. */
function countingEmbedder(): Embedder & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    info: { id: 'counting', dtype: 'fp32', pooling: 'mean', normalized: true, dims: 1, maxTokens: 8, queryPrefix: '', passagePrefix: '', files: {} },
    embedQuery: async (t) => {
      calls.push(t);
      return new Float32Array([t.length]);
    },
    embedPassages: async (ts) => ts.map((t) => new Float32Array([t.length])),
    countTokens: (t) => t.length,
    close: async () => {},
  };
}

describe('withQueryCache', () => {
  it('answers a repeated query without the model, and evicts the least recently used', async () => {
    const inner = countingEmbedder();
    const cached = withQueryCache(inner, 2);
    await cached.embedQuery('a');
    await cached.embedQuery('bb');
    expect(await cached.embedQuery('a')).toEqual(new Float32Array([1])); // hit; 'a' is now most recent
    await cached.embedQuery('ccc'); // evicts 'bb'
    await cached.embedQuery('a'); // still cached
    await cached.embedQuery('bb'); // evicted: back to the model
    expect(inner.calls).toEqual(['a', 'bb', 'ccc', 'bb']);
    expect({ hits: cached.hits, misses: cached.misses }).toEqual({ hits: 2, misses: 4 });
  });

  it('never caches passages', async () => {
    const inner = countingEmbedder();
    const cached = withQueryCache(inner, 10);
    await cached.embedPassages(['x']);
    await cached.embedQuery('x');
    expect(inner.calls).toEqual(['x']);
  });

  it('passes token ids and the passage encoder through to the inner embedder', async () => {
    const seen: Array<ReadonlyArray<readonly number[]> | undefined> = [];
    const inner: Embedder = {
      ...countingEmbedder(),
      encodePassage: (t) => [...t].map((c) => c.charCodeAt(0)),
      embedPassages: async (ts, _p, ids) => {
        seen.push(ids);
        return ts.map((t) => new Float32Array([t.length]));
      },
    };
    const cached = withQueryCache(inner, 10);
    expect(cached.encodePassage?.('ab')).toEqual([97, 98]);
    await cached.embedPassages(['ab'], undefined, [[97, 98]]);
    expect(seen).toEqual([[[97, 98]]]);
  });
});
