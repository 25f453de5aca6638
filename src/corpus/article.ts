import { createHash } from 'node:crypto';
import { z } from 'zod';

/** Ids end up in URLs and file names: letters, digits and . _ : - only, no path characters. */
export const ARTICLE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
export const MAX_ARTICLE_ID_LENGTH = 200;
export const MAX_TAGS = 50;
export const MAX_TAG_LENGTH = 100;

const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$/, 'must be an ISO 8601 date (YYYY-MM-DD)')
  .refine((s) => isCalendarDate(s.slice(0, 10)), 'is not a real calendar date');

/** True for a YYYY-MM-DD that exists (Date.parse alone accepts 2023-02-30 and rolls it into March). */
export function isCalendarDate(ymd: string): boolean {
  const d = new Date(`${ymd}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === ymd;
}

/**
 * An article as it arrives in a `.json`/`.jsonl` file or an API body: either `text` (paragraphs separated
 * by blank lines) or `paragraphs[]`. This schema is the one contract for both; the OpenAPI document is
 * generated from it.
 */
export const ArticleInputSchema = z
  .object({
    id: z
      .string()
      .min(1, 'must not be empty')
      .max(MAX_ARTICLE_ID_LENGTH, `must be at most ${MAX_ARTICLE_ID_LENGTH} characters`)
      .regex(ARTICLE_ID_PATTERN, 'may contain only letters, digits and . _ : - (no path characters), starting with a letter or digit'),
    title: z.string().trim().min(1, 'must not be empty').max(1000),
    date: isoDate.nullish(),
    source: z.string().max(200).nullish(),
    // Only web links: a javascript: or data: URL stored here would run in any page that links it.
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
      .max(2000)
      .nullish(),
    tags: z
      .array(z.string({ error: 'must be a string' }).trim().min(1, 'must not be empty').max(MAX_TAG_LENGTH, `must be at most ${MAX_TAG_LENGTH} characters`), {
        error: 'must be an array of strings',
      })
      .max(MAX_TAGS, `at most ${MAX_TAGS} tags`)
      .optional()
      .describe('topics, places, a desk or section; duplicates (ignoring case) are dropped, keeping the first spelling'),
    text: z.string().max(2_000_000).optional(),
    paragraphs: z.array(z.string().max(200_000)).max(10_000).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.text === undefined && a.paragraphs === undefined) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'an article needs `text` or `paragraphs`' });
    }
    if (a.text !== undefined && a.paragraphs !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['paragraphs'], message: 'give either `text` or `paragraphs`, not both' });
    }
    if (a.paragraphs?.every((p) => p.trim() === '')) {
      ctx.addIssue({ code: 'custom', path: ['paragraphs'], message: 'must contain at least one non-empty paragraph' });
    }
    if (a.text !== undefined && a.text.trim() === '') {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'must not be empty' });
    }
  });
export type ArticleInput = z.infer<typeof ArticleInputSchema>;

/** The normalised article every later stage works on. `text` is the paragraphs joined by "\n\n"; chunk
 * offsets point into it. */
export interface Article {
  id: string;
  title: string;
  date: string | null;
  source: string | null;
  url: string | null;
  /** Trimmed, no duplicates ignoring case (see {@link cleanTags}); absent means none. */
  tags?: string[];
  paragraphs: string[];
}

export const PARAGRAPH_SEPARATOR = '\n\n';
export const articleText = (a: Pick<Article, 'paragraphs'>): string => a.paragraphs.join(PARAGRAPH_SEPARATOR);

/** Normalises whitespace inside a paragraph: CR, tabs and runs of spaces become single spaces. */
export const cleanParagraph = (p: string): string => p.replace(/\s+/gu, ' ').trim();

/** Splits free text into paragraphs on blank lines (any line ending). */
export function splitParagraphs(text: string): string[] {
  return text
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n+/)
    .map(cleanParagraph)
    .filter((p) => p.length > 0);
}

export function normaliseArticle(input: ArticleInput): Article {
  const paragraphs = input.paragraphs !== undefined ? input.paragraphs.map(cleanParagraph).filter((p) => p.length > 0) : splitParagraphs(input.text ?? '');
  return {
    id: input.id,
    title: cleanParagraph(input.title),
    date: input.date ?? null,
    source: input.source ?? null,
    url: input.url ?? null,
    tags: cleanTags(input.tags ?? []),
    paragraphs,
  };
}

/** Tags trimmed, inner whitespace collapsed, duplicates removed ignoring case (the first spelling is kept). */
export function cleanTags(tags: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of tags) {
    const tag = cleanParagraph(t);
    const key = metadataKey(tag);
    if (tag === '' || seen.has(key)) continue;
    seen.add(key);
    out.push(tag);
  }
  return out;
}

/**
 * How a source or a tag is compared (filters and facets match regardless of case and Unicode form):
 * NFKC, lower-cased, whitespace collapsed. "Xinhua", "XINHUA" and " xinhua " are one source.
 */
export const metadataKey = (s: string): string => s.normalize('NFKC').toLowerCase().replace(/\s+/gu, ' ').trim();

/** The calendar date an article's date is filtered, sorted and faceted by: its first 10 characters as written
 * (YYYY-MM-DD), not converted to UTC, so 2023-12-04T23:30-05:00 counts as 2023-12-04. */
export const dateKey = (date: string | null | undefined): string | null => (date ? date.slice(0, 10) : null);

/** Identifies an article's content (not where it came from): a seeds sync skips articles whose hash is unchanged. */
export function articleContentHash(a: Article): string {
  // Tags join the hash only when there are some: an untagged article keeps the hash it had before tags
  // existed, so a seeds folder recorded by an older version is not re-embedded for nothing.
  const tags = a.tags ?? [];
  return createHash('sha256')
    .update(JSON.stringify(tags.length > 0 ? [a.title, a.date, a.source, a.url, a.paragraphs, tags] : [a.title, a.date, a.source, a.url, a.paragraphs]))
    .digest('hex')
    .slice(0, 32);
}
