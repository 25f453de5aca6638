/**
 * Builds an FTS5 MATCH expression from query terms that can never be a syntax error: every term is a quoted
 * string of letters and digits, joined with OR (BM25 ranks chunks matching more terms higher). FTS5 operators
 * typed by the user (AND, NEAR, *, ^, :, quotes, parentheses) never reach here as operators: the terms come
 * from search/query-terms.ts, which keeps only letters and digits. Returns null when there is no term.
 */
export function ftsMatchExpression(terms: readonly string[]): string | null {
  const safe = terms.map((t) => t.replace(/[^\p{L}\p{N}]+/gu, '')).filter((t) => t.length > 0);
  if (safe.length === 0) return null;
  return safe.map((t) => `"${t}"`).join(' OR ');
}
