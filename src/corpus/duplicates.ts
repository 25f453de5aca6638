import { createHash } from 'node:crypto';

/*
 * What makes two stored articles the same story (shared by every backend; a backend finds the candidates,
 * this decides). Titles are ignored throughout: a syndicated copy often changes the headline.
 *
 * - Exact: the same text after normalisation (NFKC, lower case, punctuation dropped, whitespace collapsed).
 * - Near: the same story republished with small edits. Each side's paragraphs (chunk vectors) are matched
 *   with the other side's: a paragraph has a counterpart when some paragraph of the other article is at
 *   cosine >= NEAR_DUPLICATE.paragraphCosine. The pair is a duplicate when at least NEAR_DUPLICATE.share of
 *   the paragraphs on BOTH sides have one (so a short story quoted inside a long one is not its duplicate).
 *
 * The thresholds were chosen on bbc-news (bench/duplicates.ts; docs/benchmarks.md, "duplicates"): of the 530
 * article pairs that share a paragraph at cosine >= 0.8 without being exact copies, every pair scoring >= 0.5
 * (at paragraph cosine 0.95) is, by eye, an edited copy of one story (same lead, mostly the same headline);
 * the highest-scoring pairs of different stories (a match preview and its report, two interviews quoting
 * one statement) score 0.44. A share of 0.6 keeps a margin above them (and needs both paragraphs of a
 * two-paragraph article, so one shared boilerplate paragraph is not enough). The paragraph threshold moves
 * the counts little between 0.9 and 0.97; 0.95 admits a word changed here and there.
 */
export const NEAR_DUPLICATE = {
  paragraphCosine: 0.95,
  share: 0.6,
  /** Neighbours looked up per paragraph when searching for candidates (besides the article's own). */
  neighbours: 8,
} as const;

/** The text as compared for exact duplicates: NFKC, lower-cased, punctuation removed, whitespace collapsed. */
export function normaliseForDuplicates(paragraphs: readonly string[]): string {
  return paragraphs
    .join(' ')
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Identifies a text for exact-duplicate detection (see {@link normaliseForDuplicates}). */
export function duplicateTextHash(paragraphs: readonly string[]): string {
  return createHash('sha256').update(normaliseForDuplicates(paragraphs)).digest('hex').slice(0, 32);
}

const dot = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export interface PairScore {
  /** Share of `a`'s paragraphs with a counterpart in `b` at or above the threshold. */
  aShare: number;
  bShare: number;
  /** The smaller of the two: what the decision compares. */
  score: number;
}

/** How much of each article the other one covers, paragraph by paragraph (unit vectors: dot = cosine). */
export function pairScore(a: readonly Float32Array[], b: readonly Float32Array[], paragraphCosine: number = NEAR_DUPLICATE.paragraphCosine): PairScore {
  if (a.length === 0 || b.length === 0) return { aShare: 0, bShare: 0, score: 0 };
  const bMatched = new Uint8Array(b.length);
  let aMatched = 0;
  for (const va of a) {
    let any = false;
    for (let j = 0; j < b.length; j++) {
      if (dot(va, b[j]!) >= paragraphCosine) {
        any = true;
        bMatched[j] = 1;
      }
    }
    if (any) aMatched++;
  }
  const aShare = aMatched / a.length;
  const bShare = bMatched.reduce((n, x) => n + x, 0) / b.length;
  return { aShare, bShare, score: Math.min(aShare, bShare) };
}

export const isNearDuplicate = (a: readonly Float32Array[], b: readonly Float32Array[]): boolean => pairScore(a, b).score >= NEAR_DUPLICATE.share;
