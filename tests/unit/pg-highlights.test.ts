import { describe, expect, it } from 'vitest';
import { type DebugToken, highlightRanges } from '../../src/store/postgres/highlights.ts';
import { boundedQuery, rankWeights } from '../../src/store/postgres/pg-lexical.ts';
import { tsQueryText } from '../../src/store/postgres/pg-reader.ts';

// Tokens as PostgreSQL's default parser emits them for the text (ts_parse), lexemes as the english
// configuration stems them; the compound "well-known" is followed by its parts.
const TEXT = 'Markets rallied; a well-known trader said “markets” rose.';
const TOKENS: DebugToken[] = [
  { alias: 'asciiword', token: 'Markets', lexemes: ['market'] },
  { alias: 'blank', token: ' ', lexemes: null },
  { alias: 'asciiword', token: 'rallied', lexemes: ['ralli'] },
  { alias: 'blank', token: '; ', lexemes: null },
  { alias: 'asciiword', token: 'a', lexemes: [] },
  { alias: 'blank', token: ' ', lexemes: null },
  { alias: 'asciihword', token: 'well-known', lexemes: null },
  { alias: 'hword_asciipart', token: 'well', lexemes: ['well'] },
  { alias: 'blank', token: '-', lexemes: null },
  { alias: 'hword_asciipart', token: 'known', lexemes: ['known'] },
  { alias: 'blank', token: ' ', lexemes: null },
  { alias: 'asciiword', token: 'trader', lexemes: ['trader'] },
  { alias: 'blank', token: ' ', lexemes: null },
  { alias: 'asciiword', token: 'said', lexemes: ['said'] },
  { alias: 'blank', token: ' “', lexemes: null },
  { alias: 'asciiword', token: 'markets', lexemes: ['market'] },
  { alias: 'blank', token: '” ', lexemes: null },
  { alias: 'asciiword', token: 'rose', lexemes: ['rose'] },
  { alias: 'blank', token: '.', lexemes: null },
];

describe('PostgreSQL highlights and query text', () => {
  it('marks the tokens whose lexemes were asked for, at their offsets in the text, parts inside their compound', () => {
    const ranges = highlightRanges(TEXT, TOKENS, new Set(['market', 'known']));
    expect(ranges.map((r) => TEXT.slice(r.start, r.end))).toEqual(['Markets', 'known', 'markets']);
    expect(ranges[1]).toEqual({ start: TEXT.indexOf('known'), end: TEXT.indexOf('known') + 5 });
    expect(highlightRanges(TEXT, TOKENS, new Set(['nothing']))).toEqual([]);
  });

  it('builds a tsquery OR of letters and digits only, and rank weights within (0, 1]', () => {
    expect(tsQueryText(['market', "o'neil", 'a&b|c', '!!', 'market'])).toBe('market | oneil | abc');
    expect(tsQueryText(['<->', '&'])).toBeNull();
    expect(rankWeights(0.75, 1)).toEqual({ weights: [0, 0, 1, 0.75], scale: 1 });
    expect(rankWeights(2, 1)).toEqual({ weights: [0, 0, 0.5, 1], scale: 2 });
  });

  it('bounds the lexical candidates: rare lexemes and pairs of common ones; all when none is common; nothing for one common word', () => {
    const lex = (lexeme: string, df: number | null) => ({ lexeme, df });
    // df null: the statistics do not list it (rarer than every listed lexeme); over the limit: common.
    expect(boundedQuery([lex('zebra', null), lex('market', 500), lex('climat', 300), lex('herd', 5)], 100)).toBe('zebra | herd | (market & climat)');
    expect(boundedQuery([lex('zebra', null), lex('herd', 50)], 100)).toBe('zebra | herd');
    expect(boundedQuery([lex('market', 500)], 100)).toBe('');
  });
});
