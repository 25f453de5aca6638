import type { PreparedArticle } from './store.ts';

/**
 * Consecutive runs of articles of about `chunks` chunks each (an article is never split): how a backend cuts a
 * generation builder's write into steps, so a build never holds the process (or a transaction) for a whole group.
 */
export function slicesByChunks(articles: PreparedArticle[], chunks: number): PreparedArticle[][] {
  const out: PreparedArticle[][] = [];
  let current: PreparedArticle[] = [];
  let n = 0;
  for (const a of articles) {
    current.push(a);
    n += a.chunks.length;
    if (n >= chunks) {
      out.push(current);
      current = [];
      n = 0;
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}
