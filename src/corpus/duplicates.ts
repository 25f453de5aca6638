import { createHash } from 'node:crypto';

/*
 * What makes two stored articles the same story (shared by every backend; a backend finds the candidates,
 * this decides). A syndicated copy often changes the headline, so titles are ignored — except for short
 * texts (briefs such as "Qtly div 15 cts vs 15 cts prior", where only the headline names the company).
 *
 * - Exact: the same text after normalisation (NFKC, lower case, punctuation dropped, whitespace collapsed);
 *   below SHORT_TEXT_WORDS words, the same title too.
 * - Near: the same story republished with small edits. Each side's paragraphs (chunk vectors) are matched
 *   with the other side's: a paragraph has a counterpart when some paragraph of the other article is at
 *   cosine >= paragraphCosine. The pair is a duplicate when at least `share` of the paragraphs on BOTH sides
 *   have one (so a short story quoted inside a long one is not its duplicate), and
 *   - the figures agree: at least `numbers` of the numbers of the side with fewer of them appear on the
 *     other side (the embedding barely sees numbers, and a wire's template stories — reserves added by the
 *     Fed, weekly oil demand, livestock slaughter — differ in nothing else);
 *   - a short text also has the same title.
 *
 * Thresholds (bench/duplicates.ts; docs/benchmarks.md, "duplicates"). On bbc-news: of the 530 article pairs
 * that share a paragraph at cosine >= 0.8 without being exact copies, every pair scoring >= 0.5 (at paragraph
 * cosine 0.95) is, by eye, an edited copy of one story; the highest-scoring pairs of different stories (a
 * match preview and its report) score 0.44. A share of 0.6 keeps a margin (and needs both paragraphs of a
 * two-paragraph article). The paragraph threshold moves the counts little between 0.9 and 0.97. On the first
 * 4,000 Reuters stories the vectors alone also joined template stories and dividend briefs of different
 * companies (191 pairs); the figures and short-text rules reject them, while every bbc-news copy keeps >= 0.92
 * of its numbers.
 */
export const NEAR_DUPLICATE = {
  paragraphCosine: 0.95,
  share: 0.6,
  /** Share of the numbers (of the side with fewer) found on the other side. */
  numbers: 0.8,
  /** Neighbours looked up per paragraph when searching for candidates (besides the article's own). */
  neighbours: 8,
} as const;

/** Below this many words, a text alone does not identify a story: the title must match too. */
export const SHORT_TEXT_WORDS = 40;

/** What duplicate detection reads of an article. */
export interface DuplicateText {
  title: string;
  paragraphs: readonly string[];
}

const normalise = (s: string): string =>
  s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();

/** The text as compared for exact duplicates: NFKC, lower-cased, punctuation removed, whitespace collapsed. */
export const normaliseForDuplicates = (paragraphs: readonly string[]): string => normalise(paragraphs.join(' '));

const wordCount = (normalised: string): number => (normalised === '' ? 0 : normalised.split(' ').length);

export const isShortText = (a: DuplicateText): boolean => wordCount(normaliseForDuplicates(a.paragraphs)) < SHORT_TEXT_WORDS;

/** Identifies an article for exact-duplicate detection: its normalised text, and its title when the text is short. */
export function duplicateTextHash(a: DuplicateText): string {
  const text = normaliseForDuplicates(a.paragraphs);
  const key = wordCount(text) < SHORT_TEXT_WORDS ? `${normalise(a.title)}\n${text}` : text;
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/** The numbers of a text (digits with inner . , / - kept: 6-3/16, 1,250.5), thousands separators dropped. */
export const numbersOf = (a: DuplicateText): Set<string> => new Set((a.paragraphs.join(' ').match(/\d+(?:[.,/-]\d+)*/g) ?? []).map((n) => n.replace(/,/g, '')));

/** Share of the numbers of the side with fewer that appear on the other side (1 when either has none). */
export function numbersAgreement(a: DuplicateText, b: DuplicateText): number {
  const na = numbersOf(a);
  const nb = numbersOf(b);
  const fewer = Math.min(na.size, nb.size);
  if (fewer === 0) return 1;
  let shared = 0;
  for (const n of na) if (nb.has(n)) shared++;
  return shared / fewer;
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

/** The near-duplicate decision: paragraphs, figures, and for a short text the title (see the top of this file). */
export function isNearDuplicate(a: DuplicateText & { vectors: readonly Float32Array[] }, b: DuplicateText & { vectors: readonly Float32Array[] }): boolean {
  if (pairScore(a.vectors, b.vectors).score < NEAR_DUPLICATE.share) return false;
  if (numbersAgreement(a, b) < NEAR_DUPLICATE.numbers) return false;
  if ((isShortText(a) || isShortText(b)) && normalise(a.title) !== normalise(b.title)) return false;
  return true;
}
