import type { Config } from '../config/config.ts';
import { loadArticleFolder } from '../corpus/load-folder.ts';
import type { Embedder, ModelInfo } from '../embed/embedder.ts';
import { modelIdentity } from '../embed/model-identity.ts';
import { QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { IndexIdentity, Manifest } from '../store/manifest.ts';
import { openStore } from '../store/open-store.ts';
import type { IndexStore } from '../store/store.ts';
import { type BuildProgress, type BuildReport, buildIndex } from './build-index.ts';
import { FOLDER_ORIGIN_PREFIX } from './folder-origin.ts';
import { chunkerManifest, type SourcedArticle } from './prepare.ts';
import { Quarry } from './quarry.ts';
import { readStoredArticles } from './rebuild.ts';
import { type SyncReport, syncFolderArticles } from './seeds-sync.ts';

export async function loadFolderArticles(dir: string): Promise<{ articles: SourcedArticle[]; errors: QuarryError[] }> {
  const loaded = await loadArticleFolder(dir);
  return { articles: loaded.articles.map((a) => ({ article: a, origin: `${FOLDER_ORIGIN_PREFIX}${a.id}` })), errors: loaded.errors };
}

/** The model and chunker this process indexes with, as an index records them. */
export const identityOf = (config: Config, model: ModelInfo): IndexIdentity => ({ model, chunker: chunkerManifest(config) });

export interface OpenReport {
  built: boolean;
  rebuiltReason: string | null;
  sync: SyncReport | null;
  parseErrors: QuarryError[];
}

/**
 * What `npm start` does before serving: build the index from the seeds folder if there is none; rebuild it
 * from its own stored articles if it was made with another model or chunker; then bring it in line with the
 * seeds folder (new, changed and removed files) when the index tracks that folder.
 */
export async function openOrBuild(deps: {
  config: Config;
  embedder: Embedder;
  logger: Logger;
  onProgress?: (p: BuildProgress) => void;
  /** A live rebuild's pace (QuarryDeps.backgroundPace). */
  backgroundPace?: () => Promise<void>;
}): Promise<{ quarry: Quarry; report: OpenReport }> {
  const { config, embedder, logger } = deps;
  const report: OpenReport = { built: false, rebuiltReason: null, sync: null, parseErrors: [] };
  const store: IndexStore = await openStore(config, {
    identity: identityOf(config, embedder.info),
    access: 'write',
    logger,
    readWorker: config.searchReadWorker,
  });
  try {
    if (!store.hasIndex) {
      const loaded = await loadFolderArticles(config.seedsDir);
      report.parseErrors = loaded.errors;
      logger.info({ seeds: config.seedsDir, articles: loaded.articles.length }, 'no index yet: building it from the seeds folder');
      try {
        await buildIndex(store, embedder, config, {
          articles: loaded.articles,
          source: { kind: 'folder', path: config.seedsDir },
          onProgress: deps.onProgress,
        });
        report.built = true;
      } catch (e) {
        // PostgreSQL: processes started together on an empty database build it once; the others open that one.
        if (!(e instanceof QuarryError && e.details?.indexBuiltElsewhere === true)) throw e;
        logger.info('another process built the index meanwhile: opening it');
        await store.close();
        return openOrBuild(deps);
      }
    } else if (store.incompatibility) {
      // The stored articles are the truth (they include ones added through the API): re-embed them all.
      report.rebuiltReason = store.incompatibility;
      logger.warn({ reason: store.incompatibility }, 'index built with other settings: rebuilding it from its stored articles');
      await buildIndex(store, embedder, config, {
        articles: await readStoredArticles(store),
        source: store.manifest.source,
        folderFiles: await store.folderFiles(),
        onProgress: deps.onProgress,
      });
    }
    const quarry = new Quarry({ config, embedder, store, logger, backgroundPace: deps.backgroundPace });
    if (store.manifest.source.path === config.seedsDir && !report.built) {
      const loaded = await loadFolderArticles(config.seedsDir);
      report.parseErrors = loaded.errors;
      report.sync = await syncFolderArticles(quarry, loaded);
    }
    return { quarry, report };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Opens the configured index for this model without building anything (CLI commands). */
export async function openQuarry(deps: { config: Config; embedder: Embedder | null; access: 'read' | 'write'; logger?: Logger }): Promise<Quarry> {
  const model = deps.embedder?.info ?? (await modelIdentity(deps.config));
  const store = await openStore(deps.config, { identity: identityOf(deps.config, model), access: deps.access, logger: deps.logger });
  if (!store.hasIndex || store.incompatibility) {
    const why = store.incompatibility;
    await store.close();
    throw why
      ? new QuarryError('index_incompatible', `${why}; \`npm start\` rebuilds it from its stored articles, or run \`quarry rebuild-index --from-store\``)
      : new QuarryError('index_missing', `there is no index in ${deps.config.indexDir}: run \`npm run rebuild-index\``);
  }
  return new Quarry({ config: deps.config, embedder: deps.embedder, store, logger: deps.logger });
}

export type RebuildSource = { folder: string } | { store: true } | { articles: SourcedArticle[]; source: Manifest['source'] };

/**
 * `rebuild-index`: builds a new generation from a folder, from the articles already stored, or from given
 * articles, and swaps it in (the previous one serves until then). Files that cannot be read are reported.
 */
export async function rebuildIndex(deps: {
  config: Config;
  embedder: Embedder;
  from: RebuildSource;
  onProgress?: (p: BuildProgress) => void;
}): Promise<{ report: BuildReport; errors: QuarryError[] }> {
  const { config, embedder, from } = deps;
  const store = await openStore(config, { identity: identityOf(config, embedder.info), access: 'write' });
  try {
    if ('store' in from) {
      const report = await buildIndex(store, embedder, config, {
        articles: await readStoredArticles(store),
        source: { kind: 'store' },
        folderFiles: await store.folderFiles(),
        onProgress: deps.onProgress,
      });
      return { report, errors: [] };
    }
    if ('folder' in from) {
      const { articles, errors } = await loadFolderArticles(from.folder);
      const report = await buildIndex(store, embedder, config, { articles, source: { kind: 'folder', path: from.folder }, onProgress: deps.onProgress });
      return { report, errors };
    }
    return { report: await buildIndex(store, embedder, config, { articles: from.articles, source: from.source, onProgress: deps.onProgress }), errors: [] };
  } finally {
    await store.close();
  }
}
