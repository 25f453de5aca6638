import { articleContentHash } from '../store/database.ts';
import type { QuarryError } from '../errors.ts';
import type { Quarry } from './quarry.ts';
import type { SourcedArticle } from './build-index.ts';

export interface SyncReport {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
  errors: QuarryError[];
}

export const FOLDER_ORIGIN_PREFIX = 'folder:';

/**
 * Makes the index match a folder of articles without a rebuild: new and changed files are embedded and
 * upserted, articles whose file disappeared are deleted, unchanged ones are skipped (content hash).
 * Articles that came from elsewhere (the API, the CLI) are never touched.
 */
export async function syncFolderArticles(quarry: Quarry, loaded: { articles: SourcedArticle[]; errors: QuarryError[] }): Promise<SyncReport> {
  const stored = new Map(quarry.listArticles().map((a) => [a.id, a]));
  const changed = loaded.articles.filter(({ article }) => stored.get(article.id)?.contentHash !== articleContentHash(article));
  const wanted = new Set(loaded.articles.map((a) => a.article.id));
  const gone = [...stored.values()].filter((a) => a.origin.startsWith(FOLDER_ORIGIN_PREFIX) && !wanted.has(a.id));
  const origins = new Map(changed.map((c) => [c.article.id, c.origin]));
  if (changed.length > 0) await quarry.upsertArticles(changed.map((c) => c.article), (a) => origins.get(a.id)!);
  for (const a of gone) await quarry.deleteArticle(a.id);
  const updated = changed.filter((c) => stored.has(c.article.id)).length;
  return { added: changed.length - updated, updated, removed: gone.length, unchanged: loaded.articles.length - changed.length, errors: loaded.errors };
}
