import { isNearDuplicate, NEAR_DUPLICATE } from '../../corpus/duplicates.ts';
import type { Generation } from './generation.ts';

/**
 * ef of the neighbour look-ups: a near-identical paragraph (cosine >= 0.95) is among the very first points
 * any graph walk reaches, so a narrow search finds it at a fraction of the cost of a query's ef.
 */
const LOOKUP_EF = 48;

/**
 * The stored articles that are the same story as `articleRowid` (corpus/duplicates.ts): the same normalised
 * text (an index look-up on the hash), or near-duplicate paragraphs — candidates from the graph (articles
 * owning a neighbour of one of its paragraphs at or above the paragraph threshold), then the pair test on
 * both articles' stored vectors, numbers and titles.
 */
export function findDuplicates(gen: Generation, articleRowid: number): number[] {
  const found = new Set<number>(gen.db.sameTextAs(articleRowid));
  const own = gen.db.vectorsOfArticle(articleRowid).map((c) => c.vector);
  if (own.length === 0) return [...found];
  const k = NEAR_DUPLICATE.neighbours + own.length;
  const candidates = new Set<number>();
  for (const v of own) {
    for (const n of gen.vectors.search(v, k, gen.liveChunks, Math.max(k, LOOKUP_EF))) {
      if (n.similarity < NEAR_DUPLICATE.paragraphCosine) break; // best first: the rest are further
      const a = gen.meta.articleOf(n.label);
      if (a !== 0 && a !== articleRowid && !found.has(a)) candidates.add(a);
    }
  }
  if (candidates.size === 0) return [...found];
  const mine = { ...gen.db.duplicateText(articleRowid)!, vectors: own };
  for (const c of candidates) {
    const theirs = gen.db.duplicateText(c);
    if (theirs && isNearDuplicate(mine, { ...theirs, vectors: gen.db.vectorsOfArticle(c).map((x) => x.vector) })) found.add(c);
  }
  return [...found];
}
