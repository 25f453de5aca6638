import { join } from 'node:path';
import type { Article } from '../corpus/article.ts';
import type { Config } from '../config/config.ts';
import type { Embedder } from '../embed/embedder.ts';
import { ArticleDatabase, articleContentHash, DATABASE_FILE } from '../store/database.ts';
import { discardGeneration, startGeneration } from '../store/index-dir.ts';
import { MANIFEST_FORMAT, writeManifest, type Manifest } from '../store/manifest.ts';
import { VectorIndex } from '../store/vector-index.ts';
import { chunkerManifest, prepareArticles } from './ingest.ts';
import { FOLDER_ORIGIN_PREFIX } from './seeds-sync.ts';

export interface SourcedArticle {
  article: Article;
  /** Where it came from ("folder:000_x.txt", "api", …), kept so a seeds sync knows what it owns. */
  origin: string;
}

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

/** Articles embedded together: big enough for length-sorted batches to pad little, small enough to stream. */
const GROUP_ARTICLES = 256;

/**
 * Builds a complete generation in a new `.building` directory (not yet current): chunk, embed, store,
 * graph, checkpoint, manifest. The caller publishes it (after catching up with live writes, if any).
 */
export async function buildGeneration(opts: {
  root: string;
  config: Config;
  embedder: Embedder;
  articles: SourcedArticle[];
  source: Manifest['source'];
  onProgress?: (p: BuildProgress) => void;
  /** The seeds-folder record to keep (a rebuild of an existing index); by default, the folder articles built. */
  folderFiles?: ReadonlyMap<string, string>;
}): Promise<{ buildingDir: string; report: BuildReport }> {
  const { config, embedder } = opts;
  const started = performance.now();
  const dir = startGeneration(opts.root);
  const db = new ArticleDatabase(join(dir, DATABASE_FILE), { bulk: true });
  try {
    const hnsw = { space: 'cosine' as const, M: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.efSearch };
    const vectors = VectorIndex.create(embedder.info.dims, hnsw, opts.articles.length * 8);
    let chunks = 0;
    let articlesDone = 0;
    for (let i = 0; i < opts.articles.length; i += GROUP_ARTICLES) {
      const group = opts.articles.slice(i, i + GROUP_ARTICLES);
      const prepared = await prepareArticles(
        group.map((g) => g.article),
        embedder,
        config,
        (p) => opts.onProgress?.({ articlesDone: articlesDone + Math.floor((p.done / p.total) * group.length), articlesTotal: opts.articles.length, chunksDone: chunks + p.done }),
      );
      prepared.forEach(({ article, chunks: withVectors }, j) => {
        const result = db.upsertArticle(article, withVectors, group[j]!.origin);
        result.added.forEach((rowid, n) => vectors.add(rowid, withVectors[n]!.vector));
        chunks += result.added.length - result.removed.length;
      });
      articlesDone += group.length;
      opts.onProgress?.({ articlesDone, articlesTotal: opts.articles.length, chunksDone: chunks });
    }
    vectors.seq = db.lastSeq();
    db.setFolderFiles(opts.folderFiles ?? new Map(opts.articles.filter((a) => a.origin.startsWith(FOLDER_ORIGIN_PREFIX)).map((a) => [a.article.id, articleContentHash(a.article)])));
    db.finishBulk();
    await vectors.saveCheckpoint(dir);
    db.pruneChanges(vectors.seq);
    const counts = db.counts();
    const seconds = (performance.now() - started) / 1000;
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      model: embedder.info,
      chunker: chunkerManifest(config),
      hnsw,
      counts,
      built: new Date().toISOString(),
      buildSeconds: Math.round(seconds * 1000) / 1000,
      source: opts.source,
    };
    writeManifest(dir, manifest);
    db.close();
    return { buildingDir: dir, report: { articles: counts.articles, chunks: counts.chunks, seconds, chunksPerSecond: counts.chunks / Math.max(seconds, 1e-9) } };
  } catch (e) {
    db.close();
    discardGeneration(dir);
    throw e;
  }
}
