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

/**
 * Retrieval after the query is embedded: k-NN and/or BM25 candidates -> fusion -> group by article ->
 * evidence. Scores are higher-is-better in every mode: cosine (semantic), BM25 (lexical), normalised
 * RRF (hybrid). An article scores as its best paragraph.
 */
export function rankArticles(target: SearchTarget, req: SearchRequest, queryVector: Float32Array | null, defaults: SearchDefaults): RankedArticles {
  const candidates = Math.max(req.candidates ?? defaults.candidates, req.k * 4);
  const mark = () => performance.now();
  let t = mark();

  const dense: RankedChunk[] =
    req.mode !== 'lexical' && queryVector
      ? target.vectors.search(queryVector, candidates, target.liveChunks, req.efSearch).map((n, i) => ({ rowid: n.label, rank: i + 1, score: n.similarity }))
      : [];
  const knn = mark() - t;
  t = mark();

  const lexical: RankedChunk[] =
    req.mode !== 'semantic'
      ? lexicalSearch(target.db.db, req.q, { limit: candidates, titleWeight: defaults.bm25TitleWeight, textWeight: defaults.bm25TextWeight, stopwords: defaults.lexicalStopwords })
      : [];
  const lexicalMs = mark() - t;
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
  return { ...grouped, timings: { knn, lexical: lexicalMs, fuse: fuseMs, group: mark() - t } };
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
function articleScores(rows: Map<number, { articleId: string }>, f: ArticleFusion): Map<string, number> {
  const index = new Map<string, number>();
  const ids: string[] = [];
  const perArticle = (list: RankedChunk[]): RankedChunk[] => {
    const seen = new Set<number>();
    const out: RankedChunk[] = [];
    for (const c of list) {
      const id = rows.get(c.rowid)?.articleId;
      if (id === undefined) continue;
      let n = index.get(id);
      if (n === undefined) {
        index.set(id, (n = ids.length));
        ids.push(id);
      }
      if (seen.has(n)) continue;
      seen.add(n);
      out.push({ rowid: n, rank: out.length + 1, score: c.score });
    }
    return out;
  };
  const fused = fuseLists(f.method, perArticle(f.dense), perArticle(f.lexical), f.params);
  return new Map(fused.map((a) => [ids[a.rowid]!, a.score]));
}

function groupByArticle(db: ArticleDatabase, fused: FusedChunk[], req: SearchRequest, stopwords: boolean, byArticle: ArticleFusion | null): Omit<RankedArticles, 'timings'> {
  const rows = db.chunksByRowid(fused.map((f) => f.rowid));
  const articles = new Map<string, SearchResult & { chunks: FusedChunk[] }>();
  // `fused` is best-first, so the first chunk seen for an article is its best one and sets its score.
  for (const f of fused) {
    const row = rows.get(f.rowid);
    if (!row) continue; // deleted between retrieval and now
    let entry = articles.get(row.articleId);
    if (!entry) {
      entry = { article: row.article, score: f.score, evidence: [], chunks: [] };
      articles.set(row.articleId, entry);
    }
    if (entry.evidence.length < req.evidence) {
      entry.evidence.push({ paragraph: row.paragraph, score: f.score, start: row.start, end: row.end, text: row.text });
      entry.chunks.push(f);
    }
  }
  const all = [...articles.values()];
  if (byArticle) {
    const scores = articleScores(rows, byArticle);
    for (const a of all) a.score = scores.get(a.article.id) ?? 0;
    all.sort((a, b) => b.score - a.score); // stable: equal scores keep the paragraph-level order
  }
  const kept = req.minScore === undefined ? all : all.filter((a) => a.score >= req.minScore!);
  const top = kept.slice(0, req.k);
  if (req.explain) addExplain(db, req.q, top, stopwords);
  return {
    results: top.map(({ article, score, evidence }) => ({ article, score, evidence })),
    total: kept.length,
    cutByMinScore: all.length - kept.length,
  };
}

function addExplain(db: ArticleDatabase, q: string, results: Array<SearchResult & { chunks: FusedChunk[] }>, stopwords: boolean): void {
  const terms = matchedTerms(db.db, q, results.flatMap((r) => r.chunks.map((c) => c.rowid)), stopwords);
  for (const r of results) {
    r.evidence.forEach((e: Evidence, i) => {
      const c = r.chunks[i]!;
      e.explain = {
        dense: c.dense ? { cosine: c.dense.score, rank: c.dense.rank, term: c.denseTerm } : null,
        lexical: c.lexical ? { bm25: c.lexical.score, rank: c.lexical.rank, term: c.lexicalTerm } : null,
        fused: c.raw,
        matchedTerms: terms.get(c.rowid) ?? [],
      };
    });
  }
}
