import type { Article } from '../corpus/article.ts';
import { CHUNKER_VERSION, chunkArticle, type Chunk } from '../corpus/chunk.ts';
import type { EmbedProgress, Embedder } from '../embed/embedder.ts';
import type { ChunkWithVector } from '../store/database.ts';
import type { Manifest } from '../store/manifest.ts';

export interface ChunkerSettings {
  minWords: number;
  maxTokens: number;
}

export const chunkerManifest = (s: ChunkerSettings): Manifest['chunker'] => ({ version: CHUNKER_VERSION, minWords: s.minWords, maxTokens: s.maxTokens });

export function chunkWithModel(article: Article, embedder: Embedder, s: ChunkerSettings): Chunk[] {
  return chunkArticle(article, { minWords: s.minWords, maxTokens: s.maxTokens, countTokens: (t) => embedder.countTokens(t) });
}

/**
 * Chunks and embeds a group of articles in one embedding pass (batches sorted by length across all of
 * them, which keeps padding low). Runs before any transaction: the database is never held while the
 * model works.
 */
export async function prepareArticles(
  articles: Article[],
  embedder: Embedder,
  s: ChunkerSettings,
  onProgress?: (p: EmbedProgress) => void,
): Promise<Array<{ article: Article; chunks: ChunkWithVector[] }>> {
  const chunked = articles.map((article) => ({ article, chunks: chunkWithModel(article, embedder, s) }));
  const texts = chunked.flatMap((c) => c.chunks.map((ch) => ch.text));
  const vectors = await embedder.embedPassages(texts, onProgress);
  let i = 0;
  return chunked.map(({ article, chunks }) => ({ article, chunks: chunks.map((c) => ({ ...c, vector: vectors[i++]! })) }));
}
