import type { TextRange } from '../store.ts';

/** One row of PostgreSQL's ts_debug(): a token of the text in order, and the lexemes it indexes as. */
export interface DebugToken {
  alias: string;
  token: string;
  lexemes: string[] | null;
}

/**
 * Token types the default parser emits twice: a compound token (a hyphenated word, a URL) and then its parts.
 * The parts overlap the compound, so they are located inside it instead of after it.
 */
const COMPOUNDS = new Set(['asciihword', 'hword', 'numhword', 'url']);
const PARTS = new Set(['hword_asciipart', 'hword_part', 'hword_numpart', 'host', 'url_path']);

/**
 * Character ranges of the tokens whose lexemes include one of `wanted` (the query terms stemmed by the same
 * text search configuration), from ts_debug's tokens of `text`. The parser's main tokens tile the text in
 * order, so each one starts where the previous ended; a part token is looked up inside its compound. Ranges
 * are sorted and merged where they overlap (a compound and its part); ranges that merely touch stay apart.
 */
export function highlightRanges(text: string, tokens: readonly DebugToken[], wanted: ReadonlySet<string>): TextRange[] {
  const ranges: TextRange[] = [];
  let cursor = 0;
  let compound: { start: number; end: number; next: number } | null = null;
  for (const t of tokens) {
    let start: number;
    if (compound && PARTS.has(t.alias)) {
      start = text.indexOf(t.token, compound.next);
      if (start < 0 || start + t.token.length > compound.end) continue;
      compound.next = start + t.token.length;
    } else {
      start = text.startsWith(t.token, cursor) ? cursor : text.indexOf(t.token, cursor);
      if (start < 0) continue; // never for the default parser; a token we cannot place is not highlighted
      cursor = start + t.token.length;
      compound = COMPOUNDS.has(t.alias) ? { start, end: cursor, next: start } : null;
    }
    if (t.lexemes?.some((l) => wanted.has(l))) ranges.push({ start, end: start + t.token.length });
  }
  ranges.sort((a, b) => a.start - b.start || a.end - b.end);
  const out: TextRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && r.start < last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
