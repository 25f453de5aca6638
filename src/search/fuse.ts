import type { RankedChunk } from './lexical.ts';

export interface FusionParams {
  /** RRF's k: larger flattens the difference between top and lower ranks. */
  k: number;
  denseWeight: number;
  lexicalWeight: number;
}

export interface FusedChunk {
  rowid: number;
  /** Normalised to (0, 1]: 1 means first in every retriever that has weight. */
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
  const byRowid = new Map<number, FusedChunk>();
  const entry = (rowid: number): FusedChunk => {
    let e = byRowid.get(rowid);
    if (!e) byRowid.set(rowid, (e = { rowid, score: 0, raw: 0, denseTerm: 0, lexicalTerm: 0 }));
    return e;
  };
  for (const d of dense) {
    const e = entry(d.rowid);
    e.dense = d;
    e.denseTerm = p.denseWeight / (p.k + d.rank);
  }
  for (const l of lexical) {
    const e = entry(l.rowid);
    e.lexical = l;
    e.lexicalTerm = p.lexicalWeight / (p.k + l.rank);
  }
  const max = (p.denseWeight + p.lexicalWeight) / (p.k + 1);
  const fused = [...byRowid.values()];
  for (const e of fused) {
    e.raw = e.denseTerm + e.lexicalTerm;
    e.score = max > 0 ? e.raw / max : 0;
  }
  // Ties (same fused score) go to the better dense rank, then the lower rowid, so results are stable.
  return fused.sort((a, b) => b.raw - a.raw || (a.dense?.rank ?? Infinity) - (b.dense?.rank ?? Infinity) || a.rowid - b.rowid);
}
