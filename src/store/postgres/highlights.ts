import type { TextRange } from '../store.ts';

/** The default text search parser's token types (ts_token_type('default')), by id. */
export const TOKEN_ALIASES: Record<number, string> = {
  1: 'asciiword',
  2: 'word',
  3: 'numword',
  4: 'email',
  5: 'url',
  6: 'host',
  7: 'sfloat',
  8: 'version',
  9: 'hword_numpart',
  10: 'hword_part',
  11: 'hword_asciipart',
  12: 'blank',
  13: 'tag',
  14: 'protocol',
  15: 'numhword',
  16: 'asciihword',
  17: 'hword',
  18: 'url_path',
  19: 'file',
  20: 'float',
  21: 'int',
  22: 'uint',
  23: 'entity',
};

/** One token of the text in order (from ts_parse), and the lexemes it indexes as. */
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
