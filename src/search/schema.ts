import { z } from 'zod';

export const MAX_QUERY_LENGTH = 1000;
export const MAX_K = 100;

const booleanFlag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');
/** Numbers arrive as strings in a query string; "abc" must be an error naming the field, not NaN. */
const num = () =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
    z.number({ error: 'must be a number' }).finite('must be a finite number'),
  );
const int = (min: number, max: number) =>
  num().pipe(z.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const SearchModeSchema = z.enum(['hybrid', 'semantic', 'lexical']);
export type SearchMode = z.infer<typeof SearchModeSchema>;
export const FusionSchema = z.enum(['rrf', 'relative']);
export type Fusion = z.infer<typeof FusionSchema>;

/** The one definition of a search request: the HTTP API (GET query or POST body) and the CLI both parse with it. */
export const SearchRequestSchema = z
  .object({
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
  })
  .strict();
export type SearchRequest = z.output<typeof SearchRequestSchema>;
export type SearchRequestInput = z.input<typeof SearchRequestSchema>;

export const ArticleMetaSchema = z.object({
  id: z.string(),
  title: z.string(),
  date: z.string().nullable(),
  source: z.string().nullable(),
  url: z.string().nullable(),
});

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
  explain: EvidenceExplainSchema.optional(),
});

export const SearchResultSchema = z.object({ article: ArticleMetaSchema, score: z.number(), evidence: z.array(EvidenceSchema) });

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
  total: z.number().int().describe('articles that matched (after minScore), before the cut to k'),
  cutByMinScore: z.number().int().describe('articles that matched but scored below minScore'),
  results: z.array(SearchResultSchema),
  index: IndexSummarySchema,
  timingsMs: SearchTimingsSchema.optional().describe(
    'per-stage time, with explain. BM25 (lexical) runs while the query is embedded, so `embed` (until the query vector was ready) and `lexical` overlap and can sum to more than tookMs',
  ),
});
export type SearchResponse = z.infer<typeof SearchResponseSchema>;
export type SearchResult = z.infer<typeof SearchResultSchema>;
export type Evidence = z.infer<typeof EvidenceSchema>;
