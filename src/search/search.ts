import type { Embedder } from '../embed/embedder.ts';
import type { IndexStore, RankedChunk } from '../store/store.ts';
import { searchTerms } from './query-terms.ts';
import { candidateCount, rankArticles, type SearchDefaults } from './rank.ts';
import type { SearchRequest, SearchResponse, SearchTimings } from './schema.ts';

export interface SearchOutcome {
  response: SearchResponse;
  timings: SearchTimings;
  tookMs: number;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * One search: embed the query and, meanwhile, take the BM25 candidates (with the query worker the two run on
 * two cores); then the k-NN candidates, fusion, grouping and evidence — all from one reader, so every chunk id
 * is read in the generation it came from even if a rebuild swaps generations during the search.
 */
export async function runSearch(store: IndexStore, embedder: Embedder, req: SearchRequest, defaults: SearchDefaults): Promise<SearchOutcome> {
  const started = performance.now();
  const terms = searchTerms(req.q, defaults.lexicalStopwords);
  const reader = store.reader();
  try {
    const vectorPromise = req.mode !== 'lexical' ? embedder.embedQuery(req.q) : null;
    // Handled below; this only keeps a rejection from counting as unhandled should BM25 throw first.
    vectorPromise?.catch(() => undefined);
    const limit = candidateCount(req, defaults);

    let t = performance.now();
    const lexical: RankedChunk[] =
      req.mode !== 'semantic'
        ? await reader.lexicalCandidates({ terms, limit, titleWeight: defaults.bm25TitleWeight, textWeight: defaults.bm25TextWeight })
        : [];
    const lexicalMs = performance.now() - t;

    let embedMs = 0;
    let knnMs = 0;
    let dense: RankedChunk[] = [];
    if (vectorPromise) {
      const vector = await vectorPromise;
      embedMs = performance.now() - started;
      t = performance.now();
      dense = await reader.vectorCandidates({ vector, limit, efSearch: req.efSearch });
      knnMs = performance.now() - t;
    }

    const ranked = await rankArticles(reader, req, { dense, lexical, terms }, defaults);
    const tookMs = performance.now() - started;
    const timings: SearchTimings = { embed: embedMs, knn: knnMs, lexical: lexicalMs, ...ranked.timings };
    const counts = reader.counts();
    const response: SearchResponse = {
      query: req.q,
      mode: req.mode,
      tookMs: round2(tookMs),
      total: ranked.total,
      cutByMinScore: ranked.cutByMinScore,
      results: ranked.results,
      index: {
        model: reader.manifest.model.id,
        dims: reader.manifest.model.dims,
        articles: counts.articles,
        chunks: counts.chunks,
        built: reader.manifest.built,
      },
      ...(req.explain ? { timingsMs: timings } : {}),
    };
    return { response, timings, tookMs };
  } finally {
    reader.release();
  }
}
