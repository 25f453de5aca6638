import type { ArticleDatabase } from '../store/database.ts';
import type { VectorIndex } from '../store/vector-index.ts';
import { reciprocalRankFusion, relativeScoreFusion, type FusedChunk, type FusionMethod, type FusionParams } from './fuse.ts';
import { lexicalSearch, matchedTerms, type RankedChunk } from './lexical.ts';
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

export interface SearchTarget {
  db: ArticleDatabase;
  vectors: VectorIndex;
  liveChunks: number;
}

export interface RankedArticles {
  results: SearchResult[];
  total: number;
  cutByMinScore: number;
  timings: Omit<SearchTimings, 'embed'>;
}

/** Chunk candidates taken from each retriever: `candidates`, or 4 per requested article if that is more. */
export const candidateCount = (req: SearchRequest, defaults: SearchDefaults): number => Math.max(req.candidates ?? defaults.candidates, req.k * 4);

/**
 * BM25 candidates. Needs no query vector, so a search runs it while the model embeds the query (in the
 * query worker); empty in semantic mode.
 */
export function lexicalCandidates(target: SearchTarget, req: SearchRequest, defaults: SearchDefaults): { chunks: RankedChunk[]; ms: number } {
  if (req.mode === 'semantic') return { chunks: [], ms: 0 };
  const t = performance.now();
  const chunks = lexicalSearch(target.db.db, req.q, {
    limit: candidateCount(req, defaults),
    titleWeight: defaults.bm25TitleWeight,
    textWeight: defaults.bm25TextWeight,
    stopwords: defaults.lexicalStopwords,
  });
  return { chunks, ms: performance.now() - t };
}

/**
 * Retrieval once the query is embedded and the BM25 candidates are in (both from the same `target`):
 * k-NN candidates -> fusion -> group by article -> evidence. Scores are higher-is-better in every mode:
 * cosine (semantic), BM25 (lexical), fused (hybrid). An article scores as its best paragraph, or, with
 * fuseBy 'article', as the fusion of its best paragraph in each retriever.
 */
export function rankArticles(
  target: SearchTarget,
  req: SearchRequest,
  queryVector: Float32Array | null,
  lexicalResult: { chunks: RankedChunk[]; ms: number },
  defaults: SearchDefaults,
): RankedArticles {
  const candidates = candidateCount(req, defaults);
  const mark = () => performance.now();
  let t = mark();

  const dense: RankedChunk[] =
    req.mode !== 'lexical' && queryVector
      ? target.vectors.search(queryVector, candidates, target.liveChunks, req.efSearch).map((n, i) => ({ rowid: n.label, rank: i + 1, score: n.similarity }))
      : [];
  const knn = mark() - t;
  const lexical = lexicalResult.chunks;
  t = mark();

  const method = req.fusion ?? defaults.fusion;
  const params: FusionParams = {
    k: req.rrfK ?? defaults.rrfK,
    denseWeight: req.denseWeight ?? defaults.denseWeight,
    lexicalWeight: req.lexicalWeight ?? defaults.lexicalWeight,
  };
  const fused = fuse(req.mode, method, dense, lexical, params);
  const fuseMs = mark() - t;
  t = mark();

  const byArticle = req.mode === 'hybrid' && defaults.fuseBy === 'article' ? { dense, lexical, method, params } : null;
  const grouped = groupByArticle(target.db, fused, req, defaults.lexicalStopwords, byArticle);
  return { ...grouped, timings: { knn, lexical: lexicalResult.ms, fuse: fuseMs, group: mark() - t } };
}

function fuse(mode: SearchMode, method: FusionMethod, dense: RankedChunk[], lexical: RankedChunk[], p: FusionParams): FusedChunk[] {
  if (mode === 'hybrid') return fuseLists(method, dense, lexical, p);
  const single = mode === 'semantic' ? dense : lexical;
  return single.map((c) => ({
    rowid: c.rowid,
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
      const article = articleOf.get(c.rowid);
      if (article === undefined || seen.has(article)) continue;
      seen.add(article);
      out.push({ rowid: article, rank: out.length + 1, score: c.score });
    }
    return out;
  };
  const fused = fuseLists(f.method, perArticle(f.dense), perArticle(f.lexical), f.params);
  return new Map(fused.map((a) => [a.rowid, a.score]));
}

interface ArticleGroup {
  articleRowid: number;
  score: number;
  /** Its best chunks, best first, at most `evidence` of them. */
  chunks: FusedChunk[];
}

/**
 * Two passes over the store: every candidate's article (ids only) to group and rank, then text and article
 * fields for the returned results only — a few dozen rows instead of every candidate's text.
 */
function groupByArticle(db: ArticleDatabase, fused: FusedChunk[], req: SearchRequest, stopwords: boolean, byArticle: ArticleFusion | null): Omit<RankedArticles, 'timings'> {
  // Hybrid fusion lists every candidate of both retrievers, so this also covers articleScores' lookups.
  const articleOf = db.articleOfChunks(fused.map((f) => f.rowid));
  const groups = new Map<number, ArticleGroup>();
  // `fused` is best-first, so the first chunk seen for an article is its best one and sets its score.
  for (const f of fused) {
    const articleRowid = articleOf.get(f.rowid);
    if (articleRowid === undefined) continue; // deleted between retrieval and now
    let group = groups.get(articleRowid);
    if (!group) groups.set(articleRowid, (group = { articleRowid, score: f.score, chunks: [] }));
    if (group.chunks.length < req.evidence) group.chunks.push(f);
  }
  const all = [...groups.values()];
  if (byArticle) {
    const scores = articleScores(articleOf, byArticle);
    for (const g of all) g.score = scores.get(g.articleRowid) ?? 0;
    all.sort((a, b) => b.score - a.score); // stable: equal scores keep the paragraph-level order
  }
  const kept = req.minScore === undefined ? all : all.filter((g) => g.score >= req.minScore!);
  const top = kept.slice(0, req.k);

  const texts = db.chunkTexts(top.flatMap((g) => g.chunks.map((c) => c.rowid)));
  const metas = db.articleMetas(top.map((g) => g.articleRowid));
  const terms = req.explain ? matchedTerms(db.db, req.q, [...texts.keys()], stopwords) : null;
  const results: SearchResult[] = [];
  for (const g of top) {
    const article = metas.get(g.articleRowid);
    if (!article) continue; // cannot happen inside one synchronous pass; kept as a guard
    const evidence: Evidence[] = [];
    for (const c of g.chunks) {
      const text = texts.get(c.rowid);
      if (!text) continue;
      evidence.push({ paragraph: text.paragraph, score: c.score, start: text.start, end: text.end, text: text.text, ...(terms ? { explain: explainOf(c, terms) } : {}) });
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
    matchedTerms: terms.get(c.rowid) ?? [],
  };
}
