import type { Article } from '../corpus/article.ts';
import { CHUNKER_VERSION, type Chunk, chunkArticle } from '../corpus/chunk.ts';
import { type Embedder, type EmbedProgress, lengthSortedBatches, type PassageOptions } from '../embed/embedder.ts';
import type { Manifest } from '../store/manifest.ts';
import type { PreparedArticle } from '../store/store.ts';
import { yieldToEventLoop } from '../util/event-loop.ts';
import type { StageProfile } from '../util/stage-profile.ts';

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

/** Chunks an article with the model's token counts (`countTokens`: the embedder's, or a memo of its encodings). */
export function chunkWithModel(article: Article, countTokens: (text: string) => number, s: ChunkerSettings): Chunk[] {
  return chunkArticle(article, { minWords: s.minWords, maxTokens: s.maxTokens, countTokens });
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
 * The longest chunking and tokenising runs between two yields to the event loop (a server keeps answering
 * meanwhile): a fixed count of articles held it for as long as they happened to take (16 long ones: tens of ms).
 */
const CHUNK_SLICE_MS = 4;

/** Articles cut into chunks, with every chunk's text and (with a real model) its token ids, in order. */
export interface ChunkedArticles {
  chunked: Array<SourcedArticle & { chunks: Chunk[] }>;
  texts: string[];
  /** One per text; absent for an embedder that does not tokenise (test embedders). */
  tokenIds?: number[][];
}

/**
 * Chunks articles and tokenises every chunk once: the chunker's token counts and the ids the model is fed come
 * from the same encoding (a paragraph that fits the window is its own chunk, so its count is reused as is).
 */
export async function chunkArticles(
  articles: SourcedArticle[],
  embedder: Embedder,
  s: ChunkerSettings,
  opts: { profile?: StageProfile; pace?: () => Promise<void> } = {},
): Promise<ChunkedArticles> {
  const { profile } = opts;
  const encode = embedder.encodePassage?.bind(embedder);
  const seen = new Map<string, number[]>();
  const encodeOnce = (text: string): number[] => {
    let ids = seen.get(text);
    if (!ids) {
      ids = encode!(text);
      seen.set(text, ids);
    }
    return ids;
  };
  const countTokens = encode ? (t: string) => encodeOnce(t).length : (t: string) => embedder.countTokens(t);
  const chunked: ChunkedArticles['chunked'] = [];
  let started = performance.now();
  let cpu = profile ? process.cpuUsage() : undefined;
  const measure = () => {
    if (!profile) return;
    const used = process.cpuUsage(cpu);
    profile.add('chunk+tokenise', performance.now() - started, (used.user + used.system) / 1000);
  };
  for (const { article, origin } of articles) {
    if (performance.now() - started >= CHUNK_SLICE_MS) {
      measure();
      await yieldToEventLoop();
      await opts.pace?.();
      started = performance.now();
      cpu = profile ? process.cpuUsage() : undefined;
    }
    chunked.push({ article, origin, chunks: chunkWithModel(article, countTokens, s) });
  }
  measure();
  const texts = chunked.flatMap((c) => c.chunks.map((ch) => ch.text));
  // Texts the chunker never needed to count (short paragraphs) are encoded here, each once.
  const tokenIds = encode ? (profile ? profile.time('chunk+tokenise', () => texts.map(encodeOnce)) : texts.map(encodeOnce)) : undefined;
  return { chunked, texts, tokenIds };
}

/** Embeds chunked articles (slices sorted by length across all of them, which keeps padding low). */
export async function embedChunked(
  c: ChunkedArticles,
  embedder: Embedder,
  onProgress?: (p: EmbedProgress) => void,
  passage?: PassageOptions,
): Promise<PreparedArticle[]> {
  const { chunked, texts, tokenIds } = c;
  const attach = (vectors: Float32Array[]): PreparedArticle[] => {
    let i = 0;
    return chunked.map(({ article, origin, chunks }) => ({ article, origin, chunks: chunks.map((ch) => ({ ...ch, vector: vectors[i++]! })) }));
  };
  // Workers embed them: nothing here blocks the event loop, so one call with full, token-sorted batches.
  if (embedder.passagesOffMainThread) return attach(await embedder.embedPassages(texts, onProgress, tokenIds, passage));
  const vectors = new Array<Float32Array>(texts.length);
  let done = 0;
  // On the main thread (QUARRY_PASSAGE_WORKER=0): slices cut by token count, not characters: at 4-8 texts a slice, character order leaves 12-20% of the
  // tokens as padding on a build-sized group, token order about 1% (docs/benchmarks.md, padding).
  const tokens = tokenIds?.map((t) => t.length) ?? texts.map((t) => embedder.countTokens(t));
  for (const slice of lengthSortedBatches(texts, WRITE_EMBED_SLICE, tokens)) {
    const out = await embedder.embedPassages(
      slice.map((i) => texts[i]!),
      undefined,
      tokenIds && slice.map((i) => tokenIds[i]!),
      passage,
    );
    slice.forEach((textIndex, j) => (vectors[textIndex] = out[j]!));
    done += slice.length;
    onProgress?.({ done, total: texts.length });
    // Queued searches (their query embeddings) run here, before the next slice.
    await yieldToEventLoop();
  }
  return attach(vectors);
}

/**
 * Chunks and embeds a group of articles. Runs before any transaction: the database is never held while the
 * model works.
 */
export async function prepareArticles(
  articles: SourcedArticle[],
  embedder: Embedder,
  s: ChunkerSettings,
  onProgress?: (p: EmbedProgress) => void,
  passage?: PassageOptions,
  pace?: () => Promise<void>,
): Promise<PreparedArticle[]> {
  return embedChunked(await chunkArticles(articles, embedder, s, { pace }), embedder, onProgress, passage);
}
