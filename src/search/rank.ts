import type { RankedChunk, StoreReader } from '../store/store.ts';
import { type FusedChunk, type FusionMethod, type FusionParams, reciprocalRankFusion, relativeScoreFusion } from './fuse.ts';
import type { Evidence, SearchMode, SearchRequest, SearchResult, SearchTimings } from './schema.ts';

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
  timings: Omit<SearchTimings, 'embed' | 'lexical' | 'knn'>;
}

/** Chunk candidates taken from each retriever: `candidates`, or 4 per requested article if that is more. */
export const candidateCount = (req: SearchRequest, defaults: SearchDefaults): number => Math.max(req.candidates ?? defaults.candidates, req.k * 4);

/** The two retrievers' candidate lists, each best first (empty for a retriever the mode does not use). */
export interface Candidates {
  dense: RankedChunk[];
  lexical: RankedChunk[];
  /** The query terms BM25 searched for (for `explain`). */
  terms: string[];
}

/**
 * From candidate chunks to ranked articles: fusion -> group by article -> evidence. Scores are higher-is-better
 * in every mode: cosine (semantic), BM25 (lexical), fused (hybrid). An article scores as its best paragraph,
 * or, with fuseBy 'article', as the fusion of its best paragraph in each retriever.
 */
export async function rankArticles(reader: StoreReader, req: SearchRequest, candidates: Candidates, defaults: SearchDefaults): Promise<RankedArticles> {
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
  const grouped = await groupByArticle(reader, fused, req, candidates.terms, byArticle);
  return { ...grouped, timings: { fuse: fuseMs, group: performance.now() - t } };
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

interface ArticleGroup {
  articleKey: number;
  score: number;
  /** Its best chunks, best first, at most `evidence` of them. */
  chunks: FusedChunk[];
}

/**
 * Two passes over the store: every candidate's article (ids only) to group and rank, then text and article
 * fields for the returned results only — a few dozen rows instead of every candidate's text.
 */
async function groupByArticle(
  reader: StoreReader,
  fused: FusedChunk[],
  req: SearchRequest,
  terms: string[],
  byArticle: ArticleFusion | null,
): Promise<Omit<RankedArticles, 'timings'>> {
  // Hybrid fusion lists every candidate of both retrievers, so this also covers articleScores' lookups.
  const articleOf = await reader.articlesOfChunks(fused.map((f) => f.chunkId));
  const groups = new Map<number, ArticleGroup>();
  // `fused` is best-first, so the first chunk seen for an article is its best one and sets its score.
  for (const f of fused) {
    const articleKey = articleOf.get(f.chunkId);
    if (articleKey === undefined) continue; // deleted between retrieval and now
    let group = groups.get(articleKey);
    if (!group) groups.set(articleKey, (group = { articleKey, score: f.score, chunks: [] }));
    if (group.chunks.length < req.evidence) group.chunks.push(f);
  }
  const all = [...groups.values()];
  if (byArticle) {
    const scores = articleScores(articleOf, byArticle);
    for (const g of all) g.score = scores.get(g.articleKey) ?? 0;
    all.sort((a, b) => b.score - a.score); // stable: equal scores keep the paragraph-level order
  }
  const kept = req.minScore === undefined ? all : all.filter((g) => g.score >= req.minScore!);
  const top = kept.slice(0, req.k);

  const evidenceIds = top.flatMap((g) => g.chunks.map((c) => c.chunkId));
  const [texts, metas, matched] = await Promise.all([
    reader.chunkTexts(evidenceIds),
    reader.articleMetas(top.map((g) => g.articleKey)),
    req.explain ? reader.matchedTerms(terms, evidenceIds) : null,
  ]);
  const results: SearchResult[] = [];
  for (const g of top) {
    const article = metas.get(g.articleKey);
    if (!article) continue; // deleted meanwhile
    const evidence: Evidence[] = [];
    for (const c of g.chunks) {
      const text = texts.get(c.chunkId);
      if (!text) continue;
      evidence.push({
        paragraph: text.paragraph,
        score: c.score,
        start: text.start,
        end: text.end,
        text: text.text,
        ...(matched ? { explain: explainOf(c, matched) } : {}),
      });
    }
    results.push({ article, score: g.score, evidence });
  }
  return { results, total: kept.length, cutByMinScore: all.length - kept.length };
}

function explainOf(c: FusedChunk, terms: Map<number, string[]>): NonNullable<Evidence['explain']> {
  return {
    dense: c.dense ? { cosine: c.dense.score, rank: c.dense.rank, term: c.denseTerm } : null,
    lexical: c.lexical ? { bm25: c.lexical.score, rank: c.lexical.rank, term: c.lexicalTerm } : null,
    fused: c.raw,
    matchedTerms: terms.get(c.chunkId) ?? [],
  };
}
