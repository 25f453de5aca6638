import type { Embedder } from '../embed/embedder.ts';
import type { Manifest } from '../store/manifest.ts';
import type { GenerationBuilder, IndexStore } from '../store/store.ts';
import { folderRecordOf } from './folder-origin.ts';
import { type ChunkerSettings, prepareArticles, type SourcedArticle } from './prepare.ts';

export interface BuildProgress {
  articlesDone: number;
  articlesTotal: number;
  chunksDone: number;
}

export interface BuildReport {
  articles: number;
  chunks: number;
  seconds: number;
  chunksPerSecond: number;
}

export interface BuildRequest {
  articles: SourcedArticle[];
  /** Where the articles came from, recorded in the manifest (a seeds folder is synced on later starts). */
  source: Manifest['source'];
  /** The seeds-folder record to keep (a rebuild of an existing index); by default, the folder articles built. */
  folderFiles?: ReadonlyMap<string, string>;
  onProgress?: (p: BuildProgress) => void;
  /** Called between groups of articles: throws to abandon the build (the server is closing). */
  checkpoint?: () => void;
}

/** Articles embedded together: big enough for length-sorted batches to pad little, small enough to stream. */
const GROUP_ARTICLES = 256;

/**
 * Chunks, embeds and stores articles into a new generation of `store`, without publishing it: the caller
 * replays live writes into it (a rebuild) or publishes it straight away (a first build).
 */
export async function fillGeneration(builder: GenerationBuilder, embedder: Embedder, chunker: ChunkerSettings, req: BuildRequest): Promise<number> {
  let chunks = 0;
  let articlesDone = 0;
  const total = req.articles.length;
  for (let i = 0; i < total; i += GROUP_ARTICLES) {
    req.checkpoint?.();
    const group = req.articles.slice(i, i + GROUP_ARTICLES);
    const prepared = await prepareArticles(group, embedder, chunker, (p) =>
      req.onProgress?.({ articlesDone: articlesDone + Math.floor((p.done / p.total) * group.length), articlesTotal: total, chunksDone: chunks + p.done }),
    );
    await builder.write(prepared);
    chunks += prepared.reduce((n, p) => n + p.chunks.length, 0);
    articlesDone += group.length;
    req.onProgress?.({ articlesDone, articlesTotal: total, chunksDone: chunks });
  }
  return chunks;
}

/** Builds a complete new generation from `req.articles` and makes it current (first start, `rebuild-index`). */
export async function buildIndex(store: IndexStore, embedder: Embedder, chunker: ChunkerSettings, req: BuildRequest): Promise<BuildReport> {
  const started = performance.now();
  const builder = await store.beginGeneration({ source: req.source });
  try {
    await fillGeneration(builder, embedder, chunker, req);
    const counts = await builder.publish({ folderFiles: req.folderFiles ?? folderRecordOf(req.articles), buildSeconds: (performance.now() - started) / 1000 });
    const seconds = (performance.now() - started) / 1000;
    return { ...counts, seconds, chunksPerSecond: counts.chunks / Math.max(seconds, 1e-9) };
  } catch (e) {
    await builder.discard();
    throw e;
  }
}
