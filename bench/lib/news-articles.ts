import { toArticle } from '../../scripts/dataset-to-articles.mjs';
import type { SourcedArticle } from '../../src/core/prepare.ts';
import { normaliseArticle } from '../../src/corpus/article.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { readDocs, type Source } from './corpus.ts';
import { cachedParagraphs, type LoadedCache } from './vector-cache.ts';

/** A collection's articles as Quarry stores them (tags, dates and source from scripts/dataset-to-articles.mjs). */
export function newsArticles(source: Source, origin = 'bench'): SourcedArticle[] {
  const out: SourcedArticle[] = [];
  for (const d of readDocs(source)) {
    const a = toArticle(source, d as unknown as Record<string, unknown>);
    if (a) out.push({ article: normaliseArticle(a), origin });
  }
  return out;
}

/**
 * An Embedder answering passages from the vector cache when the text is a cached paragraph, and from the
 * real model otherwise (a chunk the chunker split or merged): every vector is that text's own embedding.
 */
export function cacheFirstEmbedder(real: Embedder, cache: LoadedCache): Embedder & { cached: number; embedded: number } {
  const dims = cache.header.dims;
  const byText = new Map<string, Float32Array>();
  cachedParagraphs(cache.header).forEach((p, i) => byText.set(p.text, cache.vectors.subarray(i * dims, (i + 1) * dims)));
  const self = {
    cached: 0,
    embedded: 0,
    info: real.info,
    countTokens: (t: string) => real.countTokens(t),
    embedQuery: (t: string) => real.embedQuery(t),
    close: async () => {},
    async embedPassages(texts: string[]): Promise<Float32Array[]> {
      const missing = texts.filter((t) => !byText.has(t));
      const fresh = missing.length > 0 ? await real.embedPassages(missing) : [];
      missing.forEach((t, i) => byText.set(t, fresh[i]!));
      self.embedded += missing.length;
      self.cached += texts.length - missing.length;
      return texts.map((t) => byText.get(t)!);
    },
  };
  return self;
}
