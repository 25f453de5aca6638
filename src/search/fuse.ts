import type { RankedChunk } from '../store/store.ts';

export interface FusionParams {
  /** RRF's k: larger flattens the difference between top and lower ranks. */
  k: number;
  denseWeight: number;
  lexicalWeight: number;
}

export type FusionMethod = 'rrf' | 'relative';

export interface FusedChunk {
  chunkId: number;
  /** Normalised to [0, 1]: 1 means best in every retriever that has weight. */
  score: number;
  raw: number;
  dense?: RankedChunk;
  lexical?: RankedChunk;
  denseTerm: number;
  lexicalTerm: number;
}

/**
 * Reciprocal rank fusion (Cormack et al. 2009): score = Σ w_r / (k + rank_r). Reported divided by its
 * maximum Σ w_r / (k + 1), so scores read like similarities and minScore means the same at any k.
 */
export function reciprocalRankFusion(dense: RankedChunk[], lexical: RankedChunk[], p: FusionParams): FusedChunk[] {
  return combine(dense, lexical, {
    dense: (c) => p.denseWeight / (p.k + c.rank),
    lexical: (c) => p.lexicalWeight / (p.k + c.rank),
    max: (p.denseWeight + p.lexicalWeight) / (p.k + 1),
  });
}

/**
 * Relative score fusion (Weaviate's relativeScoreFusion): each retriever's scores are min-max normalised over
 * its own candidates (best 1, worst 0; a lone or all-equal list scores 1), then summed with the weights and
 * divided by the weight total. Unlike RRF it keeps the margins: a paragraph that BM25 scores far above the
 * rest stays far above, where RRF would only see "rank 1". A chunk a retriever did not return gets 0 from it.
 */
export function relativeScoreFusion(dense: RankedChunk[], lexical: RankedChunk[], p: Omit<FusionParams, 'k'>): FusedChunk[] {
  const nd = minMax(dense);
  const nl = minMax(lexical);
  return combine(dense, lexical, {
    dense: (c) => p.denseWeight * nd(c.score),
    lexical: (c) => p.lexicalWeight * nl(c.score),
    max: p.denseWeight + p.lexicalWeight,
  });
}

function minMax(list: RankedChunk[]): (score: number) => number {
  let min = Infinity;
  let max = -Infinity;
  for (const c of list) {
    min = Math.min(min, c.score);
    max = Math.max(max, c.score);
  }
  return (s) => (max > min ? (s - min) / (max - min) : 1);
}

/** Sums each chunk's per-retriever terms; `max` is the best possible sum, used to report scores in [0, 1]. */
function combine(
  dense: RankedChunk[],
  lexical: RankedChunk[],
  terms: { dense: (c: RankedChunk) => number; lexical: (c: RankedChunk) => number; max: number },
): FusedChunk[] {
  const byRowid = new Map<number, FusedChunk>();
  const entry = (chunkId: number): FusedChunk => {
    let e = byRowid.get(chunkId);
    if (!e) byRowid.set(chunkId, (e = { chunkId, score: 0, raw: 0, denseTerm: 0, lexicalTerm: 0 }));
    return e;
  };
  for (const d of dense) {
    const e = entry(d.chunkId);
    e.dense = d;
    e.denseTerm = terms.dense(d);
  }
  for (const l of lexical) {
    const e = entry(l.chunkId);
    e.lexical = l;
    e.lexicalTerm = terms.lexical(l);
  }
  const fused = [...byRowid.values()];
  for (const e of fused) {
    e.raw = e.denseTerm + e.lexicalTerm;
    e.score = terms.max > 0 ? e.raw / terms.max : 0;
  }
  // Ties (same fused score) go to the better dense rank, then the lower chunkId, so results are stable.
  return fused.sort((a, b) => b.raw - a.raw || (a.dense?.rank ?? Infinity) - (b.dense?.rank ?? Infinity) || a.chunkId - b.chunkId);
}
