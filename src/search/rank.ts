import type { ArticleMeta, RankedChunk, StoreReader } from '../store/store.ts';
import { bestSentence } from './best-sentence.ts';
import { type FusedChunk, type FusionMethod, type FusionParams, reciprocalRankFusion, relativeScoreFusion } from './fuse.ts';
import { type FacetName, MAX_DEPTH, type SearchMode, type SearchRequest, type SearchResponse, type SearchResult, type SearchTimings } from './schema.ts';
import { applyRecency, collapseStories, countFacets, type Recency, type ScoredArticle, type Story, sortStories } from './stories.ts';

export interface SearchDefaults {
  candidates: number;
  rrfK: number;
  denseWeight: number;
  lexicalWeight: number;
  bm25TitleWeight: number;
  bm25TextWeight: number;
  fusion: FusionMethod;
  /** Hybrid only: fuse each article's best paragraph per retriever ('article') or single paragraphs ('chunk'). */
  fuseBy: 'chunk' | 'article';
  lexicalStopwords: boolean;
}

export interface RankedArticles {
  results: SearchResult[];
  total: number;
  cutByMinScore: number;
  facets?: SearchResponse['facets'];
  timings: Omit<SearchTimings, 'embed' | 'lexical' | 'knn'>;
}

/** What ranking needs of a request: a search's, or the one /similar makes up. */
export type RankOptions = Pick<
  SearchRequest,
  'mode' | 'k' | 'offset' | 'evidence' | 'minScore' | 'explain' | 'collapse' | 'sort' | 'fusion' | 'rrfK' | 'denseWeight' | 'lexicalWeight'
> & {
  facets?: FacetName[];
  /** Decay by age, with the reference date already resolved. */
  recency?: Recency;
};

/**
 * Chunk candidates taken from each retriever: `candidates`, or 4 per requested article if that is more. It
 * does not depend on `offset`: every page of a query is cut from the same pool (the matching set).
 */
export const candidateCount = (req: Pick<SearchRequest, 'candidates' | 'k'>, defaults: Pick<SearchDefaults, 'candidates'>): number =>
  Math.max(req.candidates ?? defaults.candidates, req.k * 4);

/** The two retrievers' candidate lists, each best first (empty for a retriever the mode does not use). */
export interface Candidates {
  dense: RankedChunk[];
  lexical: RankedChunk[];
  /** The query terms BM25 searched for (for `explain`). */
  terms: string[];
}

/**
 * From candidate chunks to a page of stories: fusion -> group by article -> minScore -> recency -> collapse
 * -> sort -> page -> evidence. Scores are higher-is-better in every mode: cosine (semantic), BM25 (lexical),
 * fused (hybrid). An article scores as its best paragraph, or, with fuseBy 'article', as the fusion of its
 * best paragraph in each retriever.
 */
export async function rankArticles(reader: StoreReader, req: RankOptions, candidates: Candidates, defaults: SearchDefaults): Promise<RankedArticles> {
  let t = performance.now();
  const method = req.fusion ?? defaults.fusion;
  const params: FusionParams = {
    k: req.rrfK ?? defaults.rrfK,
    denseWeight: req.denseWeight ?? defaults.denseWeight,
    lexicalWeight: req.lexicalWeight ?? defaults.lexicalWeight,
  };
  const fused = fuse(req.mode, method, candidates.dense, candidates.lexical, params);
  const fuseMs = performance.now() - t;
  t = performance.now();
  const byArticle = req.mode === 'hybrid' && defaults.fuseBy === 'article' ? { dense: candidates.dense, lexical: candidates.lexical, method, params } : null;
  const articles = await groupByArticle(reader, fused, req.evidence, byArticle);
  const paged = await pageOfStories(reader, articles, req, candidates.terms);
  return { ...paged, timings: { fuse: fuseMs, group: performance.now() - t } };
}

function fuse(mode: SearchMode, method: FusionMethod, dense: RankedChunk[], lexical: RankedChunk[], p: FusionParams): FusedChunk[] {
  if (mode === 'hybrid') return fuseLists(method, dense, lexical, p);
  const single = mode === 'semantic' ? dense : lexical;
  return single.map((c) => ({
    chunkId: c.chunkId,
    score: c.score,
    raw: c.score,
    dense: mode === 'semantic' ? c : undefined,
    lexical: mode === 'lexical' ? c : undefined,
    denseTerm: 0,
    lexicalTerm: 0,
  }));
}

const fuseLists = (method: FusionMethod, dense: RankedChunk[], lexical: RankedChunk[], p: FusionParams): FusedChunk[] =>
  method === 'relative' ? relativeScoreFusion(dense, lexical, p) : reciprocalRankFusion(dense, lexical, p);

interface ArticleFusion {
  dense: RankedChunk[];
  lexical: RankedChunk[];
  method: FusionMethod;
  params: FusionParams;
}

/**
 * Article-level fusion: each retriever's list becomes a list of articles (an article ranks and scores as its
 * best paragraph in that retriever), and those two lists are fused. An article whose best dense paragraph and
 * best BM25 paragraph differ — the name in one paragraph, the meaning in another — then gets credit from both,
 * which paragraph-level fusion cannot give it.
 */
function articleScores(articleOf: Map<number, number>, f: ArticleFusion): Map<number, number> {
  const perArticle = (list: RankedChunk[]): RankedChunk[] => {
    const seen = new Set<number>();
    const out: RankedChunk[] = [];
    for (const c of list) {
      const article = articleOf.get(c.chunkId);
      if (article === undefined || seen.has(article)) continue;
      seen.add(article);
      out.push({ chunkId: article, rank: out.length + 1, score: c.score });
    }
    return out;
  };
  const fused = fuseLists(f.method, perArticle(f.dense), perArticle(f.lexical), f.params);
  return new Map(fused.map((a) => [a.chunkId, a.score]));
}

/**
 * Every candidate's article (ids only, no text) to group and rank: an article's score is its best chunk's
 * (`fused` is best first), or the article-level fusion. Best first; equal scores keep the chunk order.
 */
async function groupByArticle(reader: StoreReader, fused: FusedChunk[], evidence: number, byArticle: ArticleFusion | null): Promise<ScoredArticle[]> {
  // Hybrid fusion lists every candidate of both retrievers, so this also covers articleScores' lookups.
  const articleOf = await reader.articlesOfChunks(fused.map((f) => f.chunkId));
  const groups = new Map<number, ScoredArticle>();
  for (const f of fused) {
    const key = articleOf.get(f.chunkId);
    if (key === undefined) continue; // deleted between retrieval and now
    let a = groups.get(key);
    if (!a) groups.set(key, (a = { key, relevance: f.score, score: f.score, recencyFactor: null, chunks: [] }));
    if (a.chunks.length < evidence) a.chunks.push(f);
  }
  const all = [...groups.values()];
  if (byArticle) {
    const scores = articleScores(articleOf, byArticle);
    for (const a of all) a.relevance = a.score = scores.get(a.key) ?? 0;
    all.sort((a, b) => b.score - a.score); // stable: equal scores keep the paragraph-level order
  }
  return all;
}

/** Fetches article fields only for keys not fetched yet, into one map. */
async function fillMetas(reader: StoreReader, metas: Map<number, ArticleMeta>, keys: Iterable<number>): Promise<void> {
  const missing = [...new Set(keys)].filter((k) => !metas.has(k));
  if (missing.length === 0) return;
  for (const [k, m] of await reader.articleMetas(missing)) metas.set(k, m);
}

/**
 * The matching set and the page of it that was asked for. Article fields are read for the whole set only
 * when recency, a date sort or facets need them; otherwise for the page (and the members of duplicate groups
 * tied for representative) alone.
 */
async function pageOfStories(reader: StoreReader, all: ScoredArticle[], req: RankOptions, terms: string[]): Promise<Omit<RankedArticles, 'timings'>> {
  let kept = req.minScore === undefined ? all : all.filter((a) => a.relevance >= req.minScore!);
  const metas = new Map<number, ArticleMeta>();
  if (req.recency || req.sort === 'date' || (req.facets && req.facets.length > 0))
    await fillMetas(
      reader,
      metas,
      kept.map((a) => a.key),
    );
  if (req.recency) kept = applyRecency(kept, metas, req.recency);

  // Duplicate groups of every pool article (held in memory by the store): also to count the stories cut.
  const groups = req.collapse ? await reader.duplicateGroups(all.map((a) => a.key)) : new Map<number, number>();
  if (req.collapse && groups.size > 0) {
    // Members competing for their group's place: their dates and ids break ties.
    await fillMetas(
      reader,
      metas,
      kept.filter((a) => groups.has(a.key)).map((a) => a.key),
    );
  }
  let stories: Story[] = collapseStories(kept, groups, metas, req.collapse);
  stories = sortStories(stories, req.sort, metas);
  const storyKey = (a: ScoredArticle) => groups.get(a.key) ?? -a.key;
  const cutByMinScore = req.minScore === undefined ? 0 : new Set(all.map(storyKey)).size - new Set(kept.map(storyKey)).size;
  const facets = req.facets && req.facets.length > 0 ? countFacets(stories, req.facets, metas) : undefined;

  const page = stories.slice(req.offset, req.offset + req.k);
  const results = await resultsOf(reader, page, req, terms, metas);
  return { results, total: Math.min(stories.length, MAX_DEPTH), cutByMinScore, ...(facets ? { facets } : {}) };
}

/** Up to this many other members of a group are listed with a result (duplicateCount says how many in all). */
const MAX_LISTED_DUPLICATES = 20;

/** The page's results: article fields, evidence text with highlights, duplicates. */
async function resultsOf(reader: StoreReader, page: Story[], req: RankOptions, terms: string[], metas: Map<number, ArticleMeta>): Promise<SearchResult[]> {
  const evidenceIds = page.flatMap((s) => s.rep.chunks.map((c) => c.chunkId));
  const groupIds = req.collapse ? page.map((s) => s.group).filter((g): g is number => g !== null) : [];
  const [texts, , matched, highlights, members] = await Promise.all([
    reader.chunkTexts(evidenceIds),
    fillMetas(
      reader,
      metas,
      page.map((s) => s.rep.key),
    ),
    req.explain ? reader.matchedTerms(terms, evidenceIds) : null,
    reader.highlights(terms, evidenceIds),
    groupIds.length > 0 ? reader.groupMembers(groupIds) : null,
  ]);
  const results: SearchResult[] = [];
  for (const s of page) {
    const article = metas.get(s.rep.key);
    if (!article) continue; // deleted meanwhile
    const evidence = s.rep.chunks.flatMap((c) => {
      const text = texts.get(c.chunkId);
      if (!text) return [];
      const ranges = highlights.get(c.chunkId) ?? [];
      return [
        {
          paragraph: text.paragraph,
          score: c.score,
          start: text.start,
          end: text.end,
          text: text.text,
          highlights: { terms: ranges, sentence: bestSentence(text.text, ranges, terms) },
          ...(matched ? { explain: explainOf(c, matched) } : {}),
        },
      ];
    });
    const result: SearchResult = { article, score: s.rep.score, evidence };
    if (req.collapse) {
      const others = (s.group === null ? [] : (members?.get(s.group) ?? [])).filter((m) => m.key !== s.rep.key);
      result.duplicates = others.slice(0, MAX_LISTED_DUPLICATES).map(({ id, title, source, date }) => ({ id, title, source, date }));
      result.duplicateCount = others.length;
    }
    if (req.explain) result.explain = { relevance: s.rep.relevance, recencyFactor: s.rep.recencyFactor };
    results.push(result);
  }
  return results;
}

function explainOf(c: FusedChunk, terms: Map<number, string[]>): NonNullable<SearchResult['evidence'][number]['explain']> {
  return {
    dense: c.dense ? { cosine: c.dense.score, rank: c.dense.rank, term: c.denseTerm } : null,
    lexical: c.lexical ? { bm25: c.lexical.score, rank: c.lexical.rank, term: c.lexicalTerm } : null,
    fused: c.raw,
    matchedTerms: terms.get(c.chunkId) ?? [],
  };
}
