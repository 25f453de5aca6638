import { articleContentHash } from '../corpus/article.ts';
import type { SourcedArticle } from './prepare.ts';

/** Origin of an article read from the seeds folder: "folder:<id>". A seeds sync touches only these. */
export const FOLDER_ORIGIN_PREFIX = 'folder:';

/** The seeds-folder record of a build from a folder: every folder article, by content hash. */
export const folderRecordOf = (articles: SourcedArticle[]): Map<string, string> =>
  new Map(articles.filter((a) => a.origin.startsWith(FOLDER_ORIGIN_PREFIX)).map((a) => [a.article.id, articleContentHash(a.article)]));
