import type { Embedder } from '../embed/embedder.ts';
import type { CandidateList, DensePath, FilterScope, IndexStore, LexicalPath, RankedChunk, SearchFilter, StoreReader } from '../store/store.ts';
import { yieldToEventLoop } from '../util/event-loop.ts';
import { searchTerms } from './query-terms.ts';
import { candidateCount, type RankedArticles, type RankOptions, rankArticles, type SearchDefaults } from './rank.ts';
import type { SearchRequest, SearchResponse, SearchTimings } from './schema.ts';

export interface SearchOutcome {
  response: SearchResponse;
  timings: SearchTimings;
  tookMs: number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** The request's filters, or null when it has none (then no scope is resolved: the unfiltered path is unchanged). */
export function filterOf(req: Pick<SearchRequest, 'source' | 'tag' | 'from' | 'to'>): SearchFilter | null {
  const f: SearchFilter = {};
  if (req.source?.length) f.sources = req.source;
  if (req.tag?.length) f.tags = req.tag;
  if (req.from) f.from = req.from;
  if (req.to) f.to = req.to;
  return Object.keys(f).length > 0 ? f : null;
}

/** `explain.retrieval`: which path each retriever took and how much of the index the filter let through. */
export function retrievalExplain(
  reader: StoreReader,
  scope: FilterScope | undefined,
  dense: CandidateList<DensePath> | null,
  lexical: CandidateList<LexicalPath> | null,
): NonNullable<SearchResponse['explain']>['retrieval'] {
  const counts = reader.counts();
  return {
    dense: dense?.path ?? null,
    lexical: lexical?.path ?? null,
    filtered: scope !== undefined,
    matchingArticles: scope?.articles ?? counts.articles,
    matchingChunks: scope?.chunks ?? counts.chunks,
    selectivity: scope ? round2(scope.selectivity * 1e4) / 1e4 : 1,
  };
}

/** The recency the request asks for, its reference date resolved (the newest article's unless given). */
export async function recencyOf(reader: StoreReader, req: Pick<SearchRequest, 'recency' | 'recencyDate'>): Promise<RankOptions['recency']> {
  if (req.recency === undefined) return undefined;
  return { reference: req.recencyDate ?? (await reader.newestDate()), halfLifeDays: req.recency };
}

/** How a search shares the event loop (config: QUARRY_SEARCH_YIELD_TURNS). */
export interface SearchScheduling {
  searchYieldTurns?: boolean;
}

/**
 * One search: embed the query and, meanwhile, take the BM25 candidates (with the query worker the two run on
 * two cores); then the k-NN candidates, fusion, grouping and evidence — all from one reader, so every chunk id
 * is read in the generation it came from even if a rebuild swaps generations during the search. With filters,
 * both retrievers search only the matching articles (a scope resolved once, first).
 */
export async function runSearch(
  store: IndexStore,
  embedder: Embedder,
  req: SearchRequest,
  defaults: SearchDefaults & SearchScheduling,
): Promise<SearchOutcome> {
  const started = performance.now();
  const terms = searchTerms(req.q, defaults.lexicalStopwords);
  const reader = store.reader();
  try {
    const vectorPromise = req.mode !== 'lexical' ? embedder.embedQuery(req.q) : null;
    // Handled below; this only keeps a rejection from counting as unhandled should BM25 throw first.
    vectorPromise?.catch(() => undefined);
    // With searchYieldTurns, a search computes in turns of the event loop of its own, never inside the callback
    // that admitted it or that delivered its query vector: the loop reads requests only between callbacks and
    // accepts one new connection a turn (libuv 1.45+), so milliseconds of BM25 or ranking there leave the requests
    // arriving meanwhile unseen (in socket buffers, in the kernel's accept queue) where the search queue can neither
    // count nor refuse them: the slowest searches at the onset of an overload (docs/history/overload.md).
    if (defaults.searchYieldTurns) await yieldToEventLoop();
    const limit = candidateCount(req, defaults);
    const filter = filterOf(req);
    const scope = filter ? await reader.scope(filter) : undefined;

    let t = performance.now();
    const lexical =
      req.mode !== 'semantic'
        ? await reader.lexicalCandidates({ terms, limit, titleWeight: defaults.bm25TitleWeight, textWeight: defaults.bm25TextWeight, scope })
        : null;
    const lexicalMs = performance.now() - t;

    let embedMs = 0;
    let knnMs = 0;
    let dense: CandidateList<DensePath> | null = null;
    if (vectorPromise) {
      const vector = await vectorPromise;
      embedMs = performance.now() - started;
      if (defaults.searchYieldTurns) await yieldToEventLoop();
      t = performance.now();
      dense = await reader.vectorCandidates({ vector, limit, efSearch: req.efSearch, scope });
      knnMs = performance.now() - t;
    }

    const options: RankOptions = { ...req, recency: await recencyOf(reader, req) };
    const noChunks: RankedChunk[] = [];
    const ranked = await rankArticles(reader, options, { dense: dense?.chunks ?? noChunks, lexical: lexical?.chunks ?? noChunks, terms }, defaults);
    const tookMs = performance.now() - started;
    const timings: SearchTimings = { embed: embedMs, knn: knnMs, lexical: lexicalMs, ...ranked.timings };
    const response = responseOf(req, reader, ranked, tookMs, {
      retrieval: retrievalExplain(reader, scope, dense, lexical),
      recency: options.recency ? { referenceDate: options.recency.reference, halfLifeDays: options.recency.halfLifeDays } : null,
      timings,
    });
    return { response, timings, tookMs };
  } finally {
    reader.release();
  }
}

/** What a response says about the index it searched. */
export function indexSummary(reader: StoreReader): SearchResponse['index'] {
  const counts = reader.counts();
  return { model: reader.manifest.model.id, dims: reader.manifest.model.dims, articles: counts.articles, chunks: counts.chunks, built: reader.manifest.built };
}

/** The response body; the explain fields only when asked for. */
export function responseOf(
  req: Pick<SearchRequest, 'q' | 'mode' | 'offset' | 'explain'>,
  reader: StoreReader,
  ranked: RankedArticles,
  tookMs: number,
  explain: {
    retrieval: NonNullable<SearchResponse['explain']>['retrieval'];
    recency: NonNullable<SearchResponse['explain']>['recency'];
    timings: SearchTimings;
  },
): SearchResponse {
  return {
    query: req.q,
    mode: req.mode,
    tookMs: round2(tookMs),
    total: ranked.total,
    offset: req.offset,
    cutByMinScore: ranked.cutByMinScore,
    results: ranked.results,
    ...(ranked.facets ? { facets: ranked.facets } : {}),
    index: indexSummary(reader),
    ...(req.explain ? { explain: { retrieval: explain.retrieval, recency: explain.recency }, timingsMs: explain.timings } : {}),
  };
}
