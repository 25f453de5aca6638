import type { TextRange } from '../store/store.ts';

/** Sentences by the Unicode rules (UAX #29) as the JavaScript runtime implements them; stateless. */
const SENTENCES = new Intl.Segmenter('en', { granularity: 'sentence' });

const commonPrefix = (a: string, b: string): number => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

/**
 * Which query term a matched word stands for: the term it shares the longest prefix with (the lexical index
 * stems by suffix stripping, so "cooperating" and "cooperation" both come from the term "cooperation"). A
 * word sharing nothing with any term counts as itself.
 */
function termOf(word: string, terms: readonly string[]): string {
  let best = word;
  let bestLength = 0;
  for (const t of terms) {
    const n = commonPrefix(word, t);
    if (n > bestLength) {
      best = t;
      bestLength = n;
    }
  }
  return best;
}

/**
 * The sentence of `text` that best shows why it matched: the most distinct query terms among the matched
 * ranges in it, then the most matched ranges, then the first. Null when nothing matched. The range excludes
 * the whitespace after the sentence.
 */
export function bestSentence(text: string, matches: readonly TextRange[], terms: readonly string[]): TextRange | null {
  if (matches.length === 0) return null;
  let best: TextRange | null = null;
  let bestDistinct = 0;
  let bestCount = 0;
  for (const seg of SENTENCES.segment(text)) {
    const start = seg.index;
    const end = start + seg.segment.trimEnd().length;
    const inside = matches.filter((m) => m.start >= start && m.start < end);
    if (inside.length === 0) continue;
    const distinct = new Set(inside.map((m) => termOf(text.slice(m.start, m.end).toLowerCase(), terms))).size;
    if (distinct > bestDistinct || (distinct === bestDistinct && inside.length > bestCount)) {
      best = { start, end };
      bestDistinct = distinct;
      bestCount = inside.length;
    }
  }
  return best;
}
