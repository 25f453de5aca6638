import { QuarryError } from '../errors.ts';
import type { IndexStore } from '../store/store.ts';
import { candidateCount, rankArticles, type SearchDefaults } from './rank.ts';
import type { SearchResponse, SimilarRequest } from './schema.ts';
import { filterOf, indexSummary, retrievalExplain } from './search.ts';

export type SimilarResponse = Omit<SearchResponse, 'query' | 'mode' | 'cutByMinScore'> & { article: SearchResponse['results'][number]['article'] };

/** The normalised mean of unit vectors: the direction an article's paragraphs share. */
function centroid(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < v.length; i++) out[i]! += v[i]!;
  const norm = Math.hypot(...out) || 1;
  for (let i = 0; i < out.length; i++) out[i]! /= norm;
  return out;
}

/**
 * Articles closest to a stored one, from its stored paragraph vectors (nothing is re-embedded): their
 * normalised mean is the query, searched like a semantic query with the same filters, paging and collapsing,
 * the article itself and its duplicate group excluded inside retrieval. Evidence: the other articles'
 * paragraphs nearest to it.
 */
export async function runSimilar(store: IndexStore, id: string, req: SimilarRequest, defaults: SearchDefaults): Promise<SimilarResponse> {
  const started = performance.now();
  const reader = store.reader();
  try {
    const key = await reader.articleKey(id);
    if (key === null) throw new QuarryError('not_found', `no article with id ${id}`, { field: 'id' });
    const [vectors, groups, metas] = await Promise.all([reader.articleVectors(key), reader.duplicateGroups([key]), reader.articleMetas([key])]);
    const group = groups.get(key);
    const members = group === undefined ? [] : ((await reader.groupMembers([group])).get(group) ?? []);
    const scope = await reader.scope(filterOf(req) ?? {}, [key, ...members.map((m) => m.key)]);
    const dense =
      vectors.length > 0
        ? await reader.vectorCandidates({ vector: centroid(vectors.map((v) => v.vector)), limit: candidateCount(req, defaults), scope })
        : { chunks: [], path: 'exact-scan' as const };
    const ranked = await rankArticles(reader, { ...req, mode: 'semantic', sort: 'relevance' }, { dense: dense.chunks, lexical: [], terms: [] }, defaults);
    return {
      article: metas.get(key)!,
      tookMs: Math.round((performance.now() - started) * 100) / 100,
      total: ranked.total,
      offset: req.offset,
      results: ranked.results,
      index: indexSummary(reader),
      ...(req.explain ? { explain: { retrieval: retrievalExplain(reader, scope, dense, null), recency: null } } : {}),
    };
  } finally {
    reader.release();
  }
}
