import { articleContentHash } from '../corpus/article.ts';
import type { QuarryError } from '../errors.ts';
import { FOLDER_ORIGIN_PREFIX } from './folder-origin.ts';
import type { SourcedArticle } from './prepare.ts';
import type { Quarry } from './quarry.ts';

export interface SyncReport {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
  errors: QuarryError[];
}

/**
 * Brings the changes made in a seeds folder since the last start into the index, without a rebuild: new
 * files and files edited since they were last applied are embedded and upserted, articles whose file
 * disappeared are deleted, the rest is skipped (content hash). What was done through the API or the CLI
 * is never undone: a seed article deleted or replaced there stays so until its file changes again.
 */
export async function syncFolderArticles(quarry: Quarry, loaded: { articles: SourcedArticle[]; errors: QuarryError[] }): Promise<SyncReport> {
  const applied = await quarry.folderFiles();
  const stored = new Map((await quarry.listArticles()).map((a) => [a.id, a]));
  const hashes = new Map(loaded.articles.map(({ article }) => [article.id, articleContentHash(article)]));
  const changed = loaded.articles.filter(({ article }) => {
    const hash = hashes.get(article.id)!;
    if (applied.has(article.id)) return applied.get(article.id) !== hash;
    // An index made before the record was kept: compare with the stored article, if the folder still owns it.
    const s = stored.get(article.id);
    return !s || (s.origin.startsWith(FOLDER_ORIGIN_PREFIX) && s.contentHash !== hash);
  });
  // A file that cannot be read right now (half-written, bad encoding) must not delete its article: while
  // any file fails to parse, nothing is deleted — the article comes back or goes at the next clean start.
  const gone = loaded.errors.length > 0 ? [] : [...stored.values()].filter((a) => a.origin.startsWith(FOLDER_ORIGIN_PREFIX) && !hashes.has(a.id));
  const origins = new Map(changed.map((c) => [c.article.id, c.origin]));
  if (changed.length > 0)
    await quarry.upsertArticles(
      changed.map((c) => c.article),
      (a) => origins.get(a.id)!,
    );
  for (const a of gone) await quarry.deleteArticle(a.id);
  // After the writes: a crash in between only makes the next start apply the same files again.
  await quarry.recordFolderFiles(hashes);
  const updated = changed.filter((c) => stored.has(c.article.id)).length;
  return { added: changed.length - updated, updated, removed: gone.length, unchanged: loaded.articles.length - changed.length, errors: loaded.errors };
}
