import type { Config } from '../config/config.ts';
import { loadArticleFolder } from '../corpus/load-folder.ts';
import { isQuarryError, type QuarryError } from '../errors.ts';
import type { Embedder } from '../embed/embedder.ts';
import type { Logger } from '../logger.ts';
import { currentGenerationDir } from '../store/index-dir.ts';
import { readManifest } from '../store/manifest.ts';
import { ArticleDatabase, DATABASE_FILE } from '../store/database.ts';
import { join } from 'node:path';
import type { BuildProgress, SourcedArticle } from './build-index.ts';
import { Quarry } from './quarry.ts';
import { FOLDER_ORIGIN_PREFIX, syncFolderArticles, type SyncReport } from './seeds-sync.ts';

export async function loadFolderArticles(dir: string): Promise<{ articles: SourcedArticle[]; errors: QuarryError[] }> {
  const loaded = await loadArticleFolder(dir);
  return { articles: loaded.articles.map((a) => ({ article: a, origin: `${FOLDER_ORIGIN_PREFIX}${a.id}` })), errors: loaded.errors };
}

function storedFolderFiles(indexDir: string): Map<string, string> {
  const db = new ArticleDatabase(join(currentGenerationDir(indexDir)!, DATABASE_FILE), { readonly: true });
  try {
    return db.folderFiles();
  } finally {
    db.close();
  }
}

export interface OpenReport {
  built: boolean;
  rebuiltReason: string | null;
  sync: SyncReport | null;
  parseErrors: QuarryError[];
}

/**
 * What `npm start` does before serving: build the index from the seeds folder if there is none; rebuild
 * it from its own stored articles if it was made with another model or chunker; then bring it in line
 * with the seeds folder (new, changed and removed files) when the index tracks that folder.
 */
export async function openOrBuild(deps: { config: Config; embedder: Embedder; logger: Logger; onProgress?: (p: BuildProgress) => void }): Promise<{ quarry: Quarry; report: OpenReport }> {
  const { config, embedder, logger } = deps;
  const report: OpenReport = { built: false, rebuiltReason: null, sync: null, parseErrors: [] };
  const seeds = { kind: 'folder' as const, path: config.seedsDir };

  if (!currentGenerationDir(config.indexDir)) {
    const loaded = await loadFolderArticles(config.seedsDir);
    report.parseErrors = loaded.errors;
    logger.info({ seeds: config.seedsDir, articles: loaded.articles.length }, 'no index yet: building it from the seeds folder');
    await Quarry.buildFrom({ config, embedder, articles: loaded.articles, source: seeds, onProgress: deps.onProgress });
    report.built = true;
  }

  let quarry: Quarry;
  try {
    quarry = await Quarry.open({ config, embedder, logger });
  } catch (e) {
    if (!isQuarryError(e) || e.code !== 'index_incompatible') throw e;
    // The stored articles are the truth (they include ones added through the API): re-embed them all.
    const previous = readManifest(currentGenerationDir(config.indexDir)!);
    report.rebuiltReason = e.message;
    logger.warn({ reason: e.message }, 'index built with other settings: rebuilding it from its stored articles');
    await Quarry.buildFrom({ config, embedder, articles: Quarry.readStoredArticles(config.indexDir), source: previous.source, onProgress: deps.onProgress, folderFiles: storedFolderFiles(config.indexDir) });
    quarry = await Quarry.open({ config, embedder, logger });
  }

  if (quarry.manifest.source.path === config.seedsDir && !report.built) {
    const loaded = await loadFolderArticles(config.seedsDir);
    report.parseErrors = loaded.errors;
    report.sync = await syncFolderArticles(quarry, loaded);
  }
  return { quarry, report };
}
