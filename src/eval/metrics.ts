/**
 * Retrieval-evaluation metrics: pure functions over a run (what the engine returned) and qrels (what a
 * human judged relevant). The definitions follow trec_eval as used by BEIR through pytrec_eval, so numbers
 * are comparable with published BEIR tables; where we deviate it is said next to the code.
 */

/** queryId → docId → graded relevance. A grade > 0 means relevant; 0 (or less) means judged not relevant. */
export type Qrels = Map<string, Map<string, number>>;

export interface ScoredDoc {
  docId: string;
  score: number;
}

/** queryId → the documents returned for it, with scores. Need not be sorted: {@link rankDocIds} orders it. */
export type Run = Map<string, ScoredDoc[]>;

export type MetricFamily = 'ndcg' | 'recall' | 'mrr' | 'precision';
export const METRIC_FAMILIES: readonly MetricFamily[] = ['ndcg', 'recall', 'mrr', 'precision'];

/** Metric names are `family@k`, e.g. `ndcg@10`, `recall@100`. */
export const metricName = (family: MetricFamily, k: number): string => `${family}@${k}`;

export interface EvaluateOptions {
  /** Cut-offs; every metric family is computed at each. Default [10, 100]. */
  ks?: readonly number[];
}

export interface EvalResult {
  /** Mean of each metric (`ndcg@10`, …) over the evaluated queries; 0 when no query was evaluated. */
  means: Record<string, number>;
  /** Per evaluated query, the same metrics. Insertion order is the qrels order. */
  perQuery: Map<string, Record<string, number>>;
  /** Number of queries evaluated: those in qrels with at least one relevant document. */
  queries: number;
}

const assertCutoff = (k: number): void => {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`cut-off k must be a positive integer, got ${k}`);
};

/**
 * The run's documents in rank order: score descending, ties broken by docId ascending (plain UTF-16 code-unit
 * comparison, not locale-dependent), so the same run always yields the same ranking and the same metrics.
 *
 * trec_eval also ignores the run's own rank column and breaks score ties by docno — but *descending*. We pick
 * ascending because it reads naturally; on tie-free runs (the usual case with float scores) the two agree.
 *
 * A docId listed more than once counts once, at its best position (otherwise recall could exceed 1).
 * A NaN score has no place in an order and is rejected rather than silently ranked somewhere.
 */
export function rankDocIds(ranking: readonly ScoredDoc[]): string[] {
  for (const d of ranking) {
    if (Number.isNaN(d.score)) throw new RangeError(`score of document "${d.docId}" is NaN`);
  }
  const sorted = [...ranking].sort((a, b) => (a.score !== b.score ? b.score - a.score : a.docId < b.docId ? -1 : a.docId > b.docId ? 1 : 0));
  // b.score - a.score is NaN for two equal infinities; they are caught by the !== test above, so it never runs.
  const seen = new Set<string>();
  const ids: string[] = [];
  for (const d of sorted) {
    if (seen.has(d.docId)) continue;
    seen.add(d.docId);
    ids.push(d.docId);
  }
  return ids;
}

/** Grade of a document; unjudged and non-positive grades count as 0 gain (as trec_eval does). */
const gainOf = (rels: ReadonlyMap<string, number> | undefined, docId: string): number => {
  const g = rels?.get(docId) ?? 0;
  return Math.max(g, 0);
};

const relevantCount = (rels: ReadonlyMap<string, number> | undefined): number => {
  let n = 0;
  for (const g of rels?.values() ?? []) if (g > 0) n++;
  return n;
};

// The *Ranked functions take an already ranked, de-duplicated id list so evaluate() sorts each query once.

function ndcgRanked(ids: readonly string[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  // Linear gain (gain = grade), discount 1/log2(rank + 1) with rank 1-based — trec_eval's ndcg_cut, which is
  // what BEIR reports. (The "2^rel − 1" exponential gain of some libraries gives different numbers.)
  let dcg = 0;
  const n = Math.min(k, ids.length);
  for (let i = 0; i < n; i++) dcg += gainOf(rels, ids[i]!) / Math.log2(i + 2);

  // Ideal DCG: all judged relevant grades, best first, cut at the same k.
  const ideal = [...(rels?.values() ?? [])].filter((g) => g > 0).sort((a, b) => b - a);
  let idcg = 0;
  for (let i = 0; i < Math.min(k, ideal.length); i++) idcg += ideal[i]! / Math.log2(i + 2);
  return idcg === 0 ? 0 : dcg / idcg;
}

function recallRanked(ids: readonly string[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  const total = relevantCount(rels);
  if (total === 0) return 0;
  let hit = 0;
  for (const id of ids.slice(0, k)) if (gainOf(rels, id) > 0) hit++;
  return hit / total;
}

function mrrRanked(ids: readonly string[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  const n = Math.min(k, ids.length);
  for (let i = 0; i < n; i++) if (gainOf(rels, ids[i]!) > 0) return 1 / (i + 1);
  return 0;
}

function precisionRanked(ids: readonly string[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  let hit = 0;
  for (const id of ids.slice(0, k)) if (gainOf(rels, id) > 0) hit++;
  // Divided by k even when fewer than k documents were returned, as trec_eval's P_k does.
  return hit / k;
}

const RANKED: Record<MetricFamily, typeof ndcgRanked> = {
  ndcg: ndcgRanked,
  recall: recallRanked,
  mrr: mrrRanked,
  precision: precisionRanked,
};

/** nDCG@k with linear gain; 0 when the query has no relevant document. */
export function ndcgAtK(ranking: readonly ScoredDoc[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  assertCutoff(k);
  return ndcgRanked(rankDocIds(ranking), rels, k);
}

/** Relevant documents in the top k / all relevant documents (grade > 0); 0 when there are none. */
export function recallAtK(ranking: readonly ScoredDoc[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  assertCutoff(k);
  return recallRanked(rankDocIds(ranking), rels, k);
}

/** 1 / rank of the first relevant document within the top k, else 0. */
export function mrrAtK(ranking: readonly ScoredDoc[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  assertCutoff(k);
  return mrrRanked(rankDocIds(ranking), rels, k);
}

/** Relevant documents in the top k / k. */
export function precisionAtK(ranking: readonly ScoredDoc[], rels: ReadonlyMap<string, number> | undefined, k: number): number {
  assertCutoff(k);
  return precisionRanked(rankDocIds(ranking), rels, k);
}

/**
 * Every metric family at every cut-off, per query and averaged.
 *
 * The queries averaged over are those in qrels with at least one relevant document — the run does not decide
 * the denominator: a query missing from the run scores 0 on everything (BEIR / pytrec_eval behaviour), and
 * run queries absent from qrels are ignored. Queries whose judgements are all non-relevant are skipped, since
 * nDCG and recall are undefined for them.
 */
export function evaluate(run: Run, qrels: Qrels, options: EvaluateOptions = {}): EvalResult {
  const ks = options.ks ?? [10, 100];
  if (ks.length === 0) throw new RangeError('evaluate needs at least one cut-off k');
  ks.forEach(assertCutoff);
  const names = METRIC_FAMILIES.flatMap((f) => ks.map((k) => ({ name: metricName(f, k), fn: RANKED[f], k })));

  const perQuery = new Map<string, Record<string, number>>();
  const sums: Record<string, number> = Object.fromEntries(names.map((m) => [m.name, 0]));
  for (const [queryId, rels] of qrels) {
    if (relevantCount(rels) === 0) continue;
    const ids = rankDocIds(run.get(queryId) ?? []);
    const values: Record<string, number> = {};
    for (const { name, fn, k } of names) {
      const v = fn(ids, rels, k);
      values[name] = v;
      sums[name] = (sums[name] ?? 0) + v;
    }
    perQuery.set(queryId, values);
  }

  const n = perQuery.size;
  const means: Record<string, number> = Object.fromEntries(names.map((m) => [m.name, n === 0 ? 0 : (sums[m.name] ?? 0) / n]));
  return { means, perQuery, queries: n };
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) by the nearest-rank method: the smallest sample such that at least p% of
 * the samples are ≤ it, i.e. the ⌈p/100 · n⌉-th smallest (the smallest for p = 0). Chosen for latency reports
 * because the answer is always a latency that was actually observed, never an interpolated one; p99 of 100
 * samples is the 99th-smallest. Does not modify `values`.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty list');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile p must be within [0, 100], got ${p}`);
  if (values.some((v) => Number.isNaN(v))) throw new RangeError('percentile of a list containing NaN');
  const sorted = [...values].sort((a, b) => a - b); // numeric: the default sort compares as strings
  // p·n/100 rather than p/100·n: exact for integer p (0.07 * 100 is 7.000000000000001, whose ceiling is 8).
  // For fractional p (99.9) a rounding error can still land just above an integer; snap to it.
  const exact = (p * sorted.length) / 100;
  const nearest = Math.round(exact);
  const rank = Math.max(1, Math.abs(exact - nearest) < 1e-9 ? nearest : Math.ceil(exact));
  return sorted[rank - 1]!;
}
