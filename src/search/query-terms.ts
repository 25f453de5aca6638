import { ENGLISH_STOPWORDS } from './stopwords.ts';

/** Query terms as the lexical indexes tokenise them: runs of Unicode letters and digits, lower-cased, each once. */
export function queryTerms(q: string): string[] {
  const seen = new Set<string>();
  for (const m of q.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) seen.add(m[0]);
  return [...seen];
}

/**
 * The terms a lexical query is made of: {@link queryTerms} without English stop words when `stopwords` is on,
 * unless that would leave nothing (a query of only stop words is still searched, with all of them).
 */
export function searchTerms(q: string, stopwords: boolean): string[] {
  const terms = queryTerms(q);
  if (!stopwords) return terms;
  const content = terms.filter((t) => !ENGLISH_STOPWORDS.has(t));
  return content.length > 0 ? content : terms;
}
