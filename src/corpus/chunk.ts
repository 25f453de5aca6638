import { type Article, PARAGRAPH_SEPARATOR } from './article.ts';

/** Bumped whenever chunk boundaries can change: an index built by another chunker version must be rebuilt. */
export const CHUNKER_VERSION = 'paragraph-v1';

export interface Chunk {
  /** 0-based index of the (first) paragraph this chunk covers. */
  paragraph: number;
  /** Character offsets into the article text (paragraphs joined by a blank line). */
  start: number;
  end: number;
  text: string;
}

export interface ChunkOptions {
  /** Paragraphs with fewer words than this are merged with a neighbour (a dateline, "He added:"). */
  minWords: number;
  /** The model's window; longer paragraphs are split on sentences so nothing is silently truncated. */
  maxTokens: number;
  /** Tokens the model would see for this text, special tokens and prefix included. */
  countTokens: (text: string) => number;
}

export const DEFAULT_MIN_WORDS = 6;

interface Span {
  paragraph: number;
  start: number;
  end: number;
}

const wordCount = (s: string): number => s.split(/\s+/u).filter(Boolean).length;
const sentenceSegmenter = new Intl.Segmenter('en', { granularity: 'sentence' });
const wordSegmenter = new Intl.Segmenter('en', { granularity: 'word' });

export function chunkArticle(article: Pick<Article, 'paragraphs'>, opts: ChunkOptions): Chunk[] {
  const text = article.paragraphs.join(PARAGRAPH_SEPARATOR);
  const spans: Span[] = [];
  let offset = 0;
  article.paragraphs.forEach((p, i) => {
    spans.push({ paragraph: i, start: offset, end: offset + p.length });
    offset += p.length + PARAGRAPH_SEPARATOR.length;
  });

  const merged = mergeShort(spans, text, opts.minWords);
  const chunks: Chunk[] = [];
  for (const span of merged) {
    for (const piece of splitLong(text, span.start, span.end, opts)) {
      chunks.push({ paragraph: span.paragraph, start: piece.start, end: piece.end, text: text.slice(piece.start, piece.end) });
    }
  }
  return chunks;
}

/** Merges each short paragraph into the following one (the last into the preceding one). */
function mergeShort(spans: Span[], text: string, minWords: number): Span[] {
  const out: Span[] = [];
  let pending: Span | null = null;
  for (const span of spans) {
    const current: Span = pending ? { paragraph: pending.paragraph, start: pending.start, end: span.end } : span;
    pending = null;
    if (wordCount(text.slice(span.start, span.end)) < minWords) pending = current;
    else out.push(current);
  }
  if (pending) {
    const last = out.pop();
    out.push(last ? { paragraph: last.paragraph, start: last.start, end: pending.end } : pending);
  }
  return out;
}

/** A cheap upper bound first: a WordPiece token covers at least one character, so a text shorter than
 * the window (minus special tokens) cannot overflow and needs no tokenising. */
const mayOverflow = (s: string, maxTokens: number): boolean => s.length + 8 > maxTokens;

function splitLong(text: string, start: number, end: number, opts: ChunkOptions): Array<{ start: number; end: number }> {
  const whole = text.slice(start, end);
  if (!mayOverflow(whole, opts.maxTokens) || opts.countTokens(whole) <= opts.maxTokens) return [{ start, end }];
  const sentences = segments(sentenceSegmenter, text, start, end);
  const units = sentences.flatMap((s) =>
    mayOverflow(text.slice(s.start, s.end), opts.maxTokens) && opts.countTokens(text.slice(s.start, s.end)) > opts.maxTokens
      ? segments(wordSegmenter, text, s.start, s.end)
      : [s],
  );
  return packUnits(text, units, opts);
}

function segments(segmenter: Intl.Segmenter, text: string, start: number, end: number): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (const seg of segmenter.segment(text.slice(start, end))) {
    out.push({ start: start + seg.index, end: start + seg.index + seg.segment.length });
  }
  return out;
}

/** Greedily packs consecutive units into pieces that fit the window; offsets are trimmed of whitespace. */
function packUnits(text: string, units: Array<{ start: number; end: number }>, opts: ChunkOptions): Array<{ start: number; end: number }> {
  const pieces: Array<{ start: number; end: number }> = [];
  let piece: { start: number; end: number } | null = null;
  for (const unit of units) {
    if (piece) {
      const candidate: { start: number; end: number } = { start: piece.start, end: unit.end };
      const candidateText = text.slice(candidate.start, candidate.end);
      if (!mayOverflow(candidateText, opts.maxTokens) || opts.countTokens(candidateText) <= opts.maxTokens) {
        piece = candidate;
        continue;
      }
      pieces.push(piece);
    }
    piece = { ...unit };
  }
  if (piece) pieces.push(piece);
  return pieces.map((p) => trim(text, p)).filter((p) => p.end > p.start);
}

function trim(text: string, p: { start: number; end: number }): { start: number; end: number } {
  let { start, end } = p;
  while (start < end && /\s/u.test(text[start]!)) start++;
  while (end > start && /\s/u.test(text[end - 1]!)) end--;
  return { start, end };
}
