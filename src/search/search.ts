import type { ArticleDatabase } from '../store/database.ts';
import type { VectorIndex } from '../store/vector-index.ts';
import { reciprocalRankFusion, type FusedChunk } from './fuse.ts';
import { lexicalSearch, matchedTerms, type RankedChunk } from './lexical.ts';
import type { Evidence, SearchMode, SearchRequest, SearchResult, SearchTimings } from './schema.ts';

export interface SearchDefaults {
  candidates: number;
  rrfK: number;
  denseWeight: number;
  lexicalWeight: number;
  bm25TitleWeight: number;
  bm25TextWeight: number;
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
      ? lexicalSearch(target.db.db, req.q, { limit: candidates, titleWeight: defaults.bm25TitleWeight, textWeight: defaults.bm25TextWeight })
      : [];
  const lexicalMs = mark() - t;
  t = mark();

  const fused = fuse(req.mode, dense, lexical, {
    k: req.rrfK ?? defaults.rrfK,
    denseWeight: req.denseWeight ?? defaults.denseWeight,
    lexicalWeight: req.lexicalWeight ?? defaults.lexicalWeight,
  });
  const fuseMs = mark() - t;
  t = mark();

  const grouped = groupByArticle(target.db, fused, req);
  return { ...grouped, timings: { knn, lexical: lexicalMs, fuse: fuseMs, group: mark() - t } };
}

function fuse(mode: SearchMode, dense: RankedChunk[], lexical: RankedChunk[], p: { k: number; denseWeight: number; lexicalWeight: number }): FusedChunk[] {
  if (mode === 'hybrid') return reciprocalRankFusion(dense, lexical, p);
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

function groupByArticle(db: ArticleDatabase, fused: FusedChunk[], req: SearchRequest): Omit<RankedArticles, 'timings'> {
  const rows = db.chunksByRowid(fused.map((f) => f.rowid));
  const byArticle = new Map<string, SearchResult & { chunks: FusedChunk[] }>();
  // `fused` is best-first, so the first chunk seen for an article is its best one and sets its score.
  for (const f of fused) {
    const row = rows.get(f.rowid);
    if (!row) continue; // deleted between retrieval and now
    let entry = byArticle.get(row.articleId);
    if (!entry) {
      entry = { article: row.article, score: f.score, evidence: [], chunks: [] };
      byArticle.set(row.articleId, entry);
    }
    if (entry.evidence.length < req.evidence) {
      entry.evidence.push({ paragraph: row.paragraph, score: f.score, start: row.start, end: row.end, text: row.text });
      entry.chunks.push(f);
    }
  }
  const all = [...byArticle.values()];
  const kept = req.minScore === undefined ? all : all.filter((a) => a.score >= req.minScore!);
  const top = kept.slice(0, req.k);
  if (req.explain) addExplain(db, req.q, top);
  return {
    results: top.map(({ article, score, evidence }) => ({ article, score, evidence })),
    total: kept.length,
    cutByMinScore: all.length - kept.length,
  };
}

function addExplain(db: ArticleDatabase, q: string, results: Array<SearchResult & { chunks: FusedChunk[] }>): void {
  const terms = matchedTerms(db.db, q, results.flatMap((r) => r.chunks.map((c) => c.rowid)));
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
