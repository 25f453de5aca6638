import type { Article } from '../corpus/article.ts';
import { CHUNKER_VERSION, type Chunk, chunkArticle } from '../corpus/chunk.ts';
import { type Embedder, type EmbedProgress, lengthSortedBatches } from '../embed/embedder.ts';
import type { Manifest } from '../store/manifest.ts';
import type { PreparedArticle } from '../store/store.ts';
import { yieldToEventLoop } from '../util/event-loop.ts';

export interface SourcedArticle {
  article: Article;
  /** Where it came from ("folder:000_x.txt", "api", …), kept so a seeds sync knows what it owns. */
  origin: string;
}

export interface ChunkerSettings {
  minWords: number;
  maxTokens: number;
}

export const chunkerManifest = (s: ChunkerSettings): Manifest['chunker'] => ({ version: CHUNKER_VERSION, minWords: s.minWords, maxTokens: s.maxTokens });

export function chunkWithModel(article: Article, embedder: Embedder, s: ChunkerSettings): Chunk[] {
  return chunkArticle(article, { minWords: s.minWords, maxTokens: s.maxTokens, countTokens: (t) => embedder.countTokens(t) });
}

/**
 * Passages per model call on the write path. onnxruntime-node runs a session synchronously on the main
 * thread (inside a setImmediate), so every call blocks the event loop, searches included, for its whole
 * duration: a write of 32 articles embedded as 32-passage batches held searches for a whole batch each
 * time. Small calls with a yield between them let a search's query embedding run after at most one of them.
 * Measured on this 2-core machine (bbc-news paragraphs, length-sorted): slices of 4, 8 and 16 embed at the same
 * rate (about 60 chunks/s), and a slice of 4 holds the event loop for about 55 ms (p50), 8 for 100 ms.
 */
export const WRITE_EMBED_SLICE = 4;

/**
 * Chunks and embeds a group of articles (slices sorted by length across all of them, which keeps padding
 * low). Runs before any transaction: the database is never held while the model works.
 */
export async function prepareArticles(
  articles: SourcedArticle[],
  embedder: Embedder,
  s: ChunkerSettings,
  onProgress?: (p: EmbedProgress) => void,
): Promise<PreparedArticle[]> {
  const chunked = articles.map(({ article, origin }) => ({ article, origin, chunks: chunkWithModel(article, embedder, s) }));
  const texts = chunked.flatMap((c) => c.chunks.map((ch) => ch.text));
  if (embedder.passagesOffMainThread) {
    // A worker embeds them: nothing here blocks the event loop, so one call with full, token-sorted batches.
    const vectors = await embedder.embedPassages(texts, onProgress);
    let i = 0;
    return chunked.map(({ article, origin, chunks }) => ({ article, origin, chunks: chunks.map((c) => ({ ...c, vector: vectors[i++]! })) }));
  }
  const vectors = new Array<Float32Array>(texts.length);
  let done = 0;
  // On the main thread (QUARRY_PASSAGE_WORKER=0): slices cut by token count, not characters: at 4-8 texts a slice, character order leaves 12-20% of the
  // tokens as padding on a build-sized group, token order about 1% (docs/benchmarks.md, padding).
  const tokens = texts.map((t) => embedder.countTokens(t));
  for (const slice of lengthSortedBatches(texts, WRITE_EMBED_SLICE, tokens)) {
    const out = await embedder.embedPassages(slice.map((i) => texts[i]!));
    slice.forEach((textIndex, j) => (vectors[textIndex] = out[j]!));
    done += slice.length;
    onProgress?.({ done, total: texts.length });
    // Queued searches (their query embeddings) run here, before the next slice.
    await yieldToEventLoop();
  }
  let i = 0;
  return chunked.map(({ article, origin, chunks }) => ({ article, origin, chunks: chunks.map((c) => ({ ...c, vector: vectors[i++]! })) }));
}
