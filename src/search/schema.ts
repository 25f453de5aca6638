import { z } from 'zod';
import { isCalendarDate } from '../corpus/article.ts';

export const MAX_QUERY_LENGTH = 1000;
export const MAX_K = 100;
/** Paging goes this deep at most: offset + k <= MAX_DEPTH, and `total` counts up to it. */
export const MAX_DEPTH = 1000;
/** Values of one `source` or `tag` filter. */
export const MAX_FILTER_VALUES = 50;
export const FACETS = ['source', 'tag', 'year'] as const;
export type FacetName = (typeof FACETS)[number];

const booleanFlag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');
/** Numbers arrive as strings in a query string; "abc" must be an error naming the field, not NaN. */
const num = () =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
    z.number({ error: 'must be a number' }).finite('must be a finite number'),
  );
const int = (min: number, max: number) =>
  num().pipe(z.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** One or more values: a GET query string repeats the parameter (?source=A&source=B), a JSON body gives an array. */
const manyValues = (what: string) =>
  z
    .union([z.string(), z.array(z.string({ error: 'must be a string' }))], { error: 'must be a string or an array of strings' })
    .transform((v) => (Array.isArray(v) ? v : [v]).map((x) => x.trim()))
    .pipe(
      z
        .array(z.string().min(1, `a ${what} must not be empty`).max(200, `a ${what} must be at most 200 characters`))
        .max(MAX_FILTER_VALUES, `at most ${MAX_FILTER_VALUES} values`),
    );

/** A calendar date YYYY-MM-DD that exists. */
export const calendarDate = z
  .string({ error: 'must be a date YYYY-MM-DD' })
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine(isCalendarDate, 'is not a real calendar date');

/** `30d`, `12h`, `1.5d`: a half-life, in days. */
const halfLife = z
  .string({ error: 'must be a half-life such as 30d or 12h' })
  .regex(/^\d+(\.\d+)?[dh]$/, 'must be a half-life such as 30d or 12h')
  .transform((s) => (s.endsWith('h') ? Number(s.slice(0, -1)) / 24 : Number(s.slice(0, -1))))
  .refine((days) => days > 0 && days <= 365_000, 'must be more than 0 and at most 1000 years');

/** GET: `facets=source,tag`; POST: `["source", "tag"]`. */
const facetList = z
  .union([z.string(), z.array(z.string())], { error: 'must be a list of facet names' })
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((x) => x.trim()).filter((x) => x !== ''))
  .superRefine((names, ctx) => {
    const unknown = names.filter((n) => !(FACETS as readonly string[]).includes(n));
    if (unknown.length > 0)
      ctx.addIssue({ code: 'custom', message: `unknown facet ${unknown.map((n) => `\`${n}\``).join(', ')}: the facets are ${FACETS.join(', ')}` });
  })
  .transform((v) => [...new Set(v)] as FacetName[]);

export const SearchModeSchema = z.enum(['hybrid', 'semantic', 'lexical']);
export type SearchMode = z.infer<typeof SearchModeSchema>;
export const FusionSchema = z.enum(['rrf', 'relative']);
export type Fusion = z.infer<typeof FusionSchema>;

/** The filters (GET: repeat source and tag for several values; POST: arrays). Shared by /search and /similar. */
const FilterFields = {
  source: manyValues('source').optional().describe('only articles from one of these sources (case-insensitive); repeat the parameter for several'),
  tag: manyValues('tag').optional().describe('only articles with at least one of these tags (case-insensitive); repeat the parameter for several'),
  from: calendarDate.optional().describe('only articles dated on or after this day (YYYY-MM-DD, the date as written, not converted to UTC)'),
  to: calendarDate.optional().describe('only articles dated on or before this day (inclusive)'),
};

function checkFilterFields(r: { from?: string; to?: string }, ctx: z.RefinementCtx): void {
  if (r.from !== undefined && r.to !== undefined && r.from > r.to) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: `must not be after \`to\` (${r.to})` });
  }
}

/** `GET /articles/:id/similar`: the same filters, paging and collapsing as a search. */
export const SimilarRequestSchema = z
  .object({
    k: int(1, MAX_K).default(10).describe('number of articles to return'),
    offset: int(0, MAX_DEPTH - 1).default(0),
    evidence: int(1, 20).default(3).describe('evidence paragraphs per article'),
    ...FilterFields,
    collapse: booleanFlag.default(true),
    explain: booleanFlag.default(false),
  })
  .strict()
  .superRefine(checkFilterFields)
  .superRefine((r, ctx) => {
    if (r.offset + r.k > MAX_DEPTH) ctx.addIssue({ code: 'custom', path: ['offset'], message: `offset + k must be at most ${MAX_DEPTH}` });
  });
export type SimilarRequest = z.output<typeof SimilarRequestSchema>;

/** The fields of a search request, without the rules across them (for schemas that reuse some: `quarry eval`). */
export const SearchRequestFields = z.object({
  q: z
    .string({ error: (iss) => (iss.input === undefined ? 'is required' : 'must be a string') })
    .trim()
    .min(1, 'must not be empty')
    .max(MAX_QUERY_LENGTH, `must be at most ${MAX_QUERY_LENGTH} characters`),
  k: int(1, MAX_K).default(10).describe('number of articles to return'),
  mode: SearchModeSchema.default('hybrid'),
  minScore: num().optional().describe('drop results scoring below this (cosine in semantic mode, BM25 in lexical, the fused score in [0, 1] in hybrid)'),
  explain: booleanFlag.default(false).describe('add per-paragraph scoring details'),
  evidence: int(1, 20).default(3).describe('evidence paragraphs per article'),
  candidates: int(1, 2000).optional().describe('chunks taken from each retriever before fusion (default 100)'),
  rrfK: num().pipe(z.number().min(0).max(10000)).optional().describe('RRF k, with fusion=rrf (default 60)'),
  denseWeight: num().pipe(z.number().min(0).max(100)).optional().describe('weight of the dense retriever in fusion (default 1)'),
  lexicalWeight: num().pipe(z.number().min(0).max(100)).optional().describe('weight of the BM25 retriever in fusion (default 1)'),
  fusion: FusionSchema.optional().describe('hybrid fusion: relative (weighted sum of min-max normalised scores, the default) or rrf (reciprocal rank)'),
  efSearch: int(1, 4096).optional().describe('HNSW efSearch for this query (default from the index config)'),
  ...FilterFields,
  sort: z.enum(['relevance', 'date']).default('relevance').describe('relevance (default), or date: newest first among the matching stories'),
  recency: halfLife
    .optional()
    .describe('decay scores with article age: score × 0.5^(age / half-life), e.g. 30d or 12h; age counted from the newest article date in the index'),
  recencyDate: calendarDate.optional().describe('with recency: count ages from this date (YYYY-MM-DD) instead of the newest article'),
  offset: int(0, MAX_DEPTH - 1)
    .default(0)
    .describe(`stories to skip (paging): offset + k must be at most ${MAX_DEPTH}`),
  facets: facetList.optional().describe(`counts over the matching stories: any of ${FACETS.join(', ')} (GET: comma-separated)`),
  collapse: booleanFlag.default(true).describe('show one result per duplicate group, its other members under `duplicates` (default true)'),
});

/** The one definition of a search request: the HTTP API (GET query or POST body) and the CLI both parse with it. */
export const SearchRequestSchema = SearchRequestFields.strict()
  .superRefine(checkFilterFields)
  .superRefine((r, ctx) => {
    if (r.offset + r.k > MAX_DEPTH) {
      ctx.addIssue({ code: 'custom', path: ['offset'], message: `offset + k must be at most ${MAX_DEPTH} (the deepest page served)` });
    }
  });
export type SearchRequest = z.output<typeof SearchRequestSchema>;
export type SearchRequestInput = z.input<typeof SearchRequestSchema>;

export const ArticleMetaSchema = z.object({
  id: z.string(),
  title: z.string(),
  date: z.string().nullable(),
  source: z.string().nullable(),
  url: z.string().nullable(),
  tags: z.array(z.string()),
});

export const RangeSchema = z.object({ start: z.number().int(), end: z.number().int() });

export const HighlightsSchema = z
  .object({
    terms: z.array(RangeSchema).describe('where the lexical index matched a query term (stemmed as it stems), as [start, end) offsets into `text`'),
    sentence: RangeSchema.nullable().describe(
      'the sentence with the most distinct matched terms (then the most matches, then the first); null when no term matched',
    ),
  })
  .describe('offsets are UTF-16 code units, i.e. JavaScript string indices into this evidence text');

export const EvidenceExplainSchema = z.object({
  dense: z.object({ cosine: z.number(), rank: z.number().int(), term: z.number() }).nullable(),
  lexical: z.object({ bm25: z.number(), rank: z.number().int(), term: z.number() }).nullable(),
  fused: z.number(),
  matchedTerms: z.array(z.string()),
});

export const EvidenceSchema = z.object({
  paragraph: z.number().int().describe('0-based index into the article paragraphs'),
  score: z.number(),
  start: z.number().int().describe('character offset into the article text (paragraphs joined by a blank line)'),
  end: z.number().int(),
  text: z.string(),
  highlights: HighlightsSchema,
  explain: EvidenceExplainSchema.optional(),
});

export const DuplicateSchema = z.object({ id: z.string(), title: z.string(), source: z.string().nullable(), date: z.string().nullable() });

export const SearchResultSchema = z.object({
  article: ArticleMetaSchema,
  score: z.number().describe('relevance × the recency factor (when recency is given)'),
  evidence: z.array(EvidenceSchema),
  duplicates: z
    .array(DuplicateSchema)
    .optional()
    .describe('with collapse (the default): the other stored copies of this story, oldest first, at most 20 (see duplicateCount)'),
  duplicateCount: z.number().int().optional().describe('with collapse: how many other copies there are in all'),
  explain: z.object({ relevance: z.number(), recencyFactor: z.number().nullable() }).optional(),
});

export const FacetCountSchema = z.object({ value: z.string(), count: z.number().int() });
export const FacetsSchema = z
  .object({ source: z.array(FacetCountSchema).optional(), tag: z.array(FacetCountSchema).optional(), year: z.array(FacetCountSchema).optional() })
  .describe('per facet asked for, the 20 most frequent values over the matching stories (the set `total` counts), by count then value');

export const RetrievalExplainSchema = z.object({
  dense: z.enum(['hnsw', 'hnsw-filtered', 'exact-scan']).nullable().describe('how the nearest paragraphs were found (null: not used in this mode)'),
  lexical: z.enum(['fts5', 'fts5-filtered']).nullable(),
  filtered: z.boolean(),
  matchingArticles: z.number().int(),
  matchingChunks: z.number().int(),
  selectivity: z.number().describe('matching chunks / all chunks'),
});
export const RecencyExplainSchema = z.object({ referenceDate: z.string().nullable(), halfLifeDays: z.number() });

export const IndexSummarySchema = z.object({
  model: z.string(),
  dims: z.number().int(),
  articles: z.number().int(),
  chunks: z.number().int(),
  built: z.string(),
});

export const SearchTimingsSchema = z.object({ embed: z.number(), knn: z.number(), lexical: z.number(), fuse: z.number(), group: z.number() });
export type SearchTimings = z.infer<typeof SearchTimingsSchema>;

export const SearchResponseSchema = z.object({
  query: z.string(),
  mode: SearchModeSchema,
  tookMs: z.number().describe('time inside the service, in milliseconds'),
  total: z
    .number()
    .int()
    .describe(
      `size of the matching set, at most ${MAX_DEPTH}: the stories (articles, or duplicate groups when collapsed) that own a candidate paragraph of either retriever (within the filters) and score at least minScore`,
    ),
  offset: z.number().int(),
  cutByMinScore: z.number().int().describe('stories that owned candidates but scored below minScore'),
  results: z.array(SearchResultSchema),
  facets: FacetsSchema.optional(),
  explain: z.object({ retrieval: RetrievalExplainSchema, recency: RecencyExplainSchema.nullable() }).optional(),
  index: IndexSummarySchema,
  timingsMs: SearchTimingsSchema.optional().describe(
    'per-stage time, with explain. BM25 (lexical) runs while the query is embedded, so `embed` (until the query vector was ready) and `lexical` overlap and can sum to more than tookMs',
  ),
});
export type SearchResponse = z.infer<typeof SearchResponseSchema>;
export type SearchResult = z.infer<typeof SearchResultSchema>;
export type Evidence = z.infer<typeof EvidenceSchema>;

export const SimilarResponseSchema = z.object({
  article: ArticleMetaSchema.describe('the article the others are similar to'),
  tookMs: z.number(),
  total: z.number().int().describe(`stories among the candidates (within the filters), at most ${MAX_DEPTH}`),
  offset: z.number().int(),
  results: z.array(SearchResultSchema),
  index: IndexSummarySchema,
  explain: z.object({ retrieval: RetrievalExplainSchema, recency: RecencyExplainSchema.nullable() }).optional(),
});
