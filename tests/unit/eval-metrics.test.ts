import { describe, expect, it } from 'vitest';
import { evaluate, mrrAtK, ndcgAtK, percentile, precisionAtK, type Qrels, type Run, rankDocIds, recallAtK, type ScoredDoc } from '../../src/eval/metrics.ts';

// Every expected value below is worked out by hand in the comment next to it; none comes from the code under test.
// Discount at 1-based rank r is 1/log2(r + 1): rank 1 → 1, rank 2 → 1/log2(3) ≈ 0.6309, rank 3 → 1/log2(4) = 0.5,
// rank 4 → 1/log2(5) ≈ 0.4307.

const rels = (entries: Record<string, number>): Map<string, number> => new Map(Object.entries(entries));
const ranking = (entries: Array<[string, number]>): ScoredDoc[] => entries.map(([docId, score]) => ({ docId, score }));

describe('binary relevance', () => {
  // Ranked: d1, d2, d3, d4. Relevant: d2 (rank 2), d4 (rank 4), d9 (never retrieved) → 3 relevant in all.
  const run = ranking([
    ['d1', 0.9],
    ['d2', 0.8],
    ['d3', 0.7],
    ['d4', 0.6],
  ]);
  const judged = rels({ d2: 1, d4: 1, d9: 1 });

  it('nDCG@10: DCG over the ranking, IDCG over all three relevant documents', () => {
    // DCG  = 1/log2(3) + 1/log2(5)
    // IDCG = 1 + 1/log2(3) + 1/log2(4)   (the ideal ranking puts the three relevant documents first)
    const expected = (1 / Math.log2(3) + 1 / Math.log2(5)) / (1 + 1 / Math.log2(3) + 0.5);
    expect(ndcgAtK(run, judged, 10)).toBeCloseTo(expected, 10);
  });

  it('nDCG@2: both DCG and IDCG are cut at 2', () => {
    // DCG = 0 + 1/log2(3); IDCG = 1 + 1/log2(3)
    expect(ndcgAtK(run, judged, 2)).toBeCloseTo(1 / Math.log2(3) / (1 + 1 / Math.log2(3)), 10);
  });

  it('recall, MRR and precision', () => {
    expect(recallAtK(run, judged, 10)).toBeCloseTo(2 / 3, 10); // d2, d4 of {d2, d4, d9}
    expect(recallAtK(run, judged, 2)).toBeCloseTo(1 / 3, 10); // d2 only
    expect(mrrAtK(run, judged, 10)).toBeCloseTo(1 / 2, 10); // first relevant at rank 2
    expect(mrrAtK(run, judged, 1)).toBeCloseTo(0, 10); // rank 1 is d1, not relevant
    expect(precisionAtK(run, judged, 2)).toBeCloseTo(1 / 2, 10); // d1 ✗, d2 ✓
    expect(precisionAtK(run, judged, 10)).toBeCloseTo(2 / 10, 10); // divided by k, not by the 4 returned
  });

  it('a perfect ranking scores 1', () => {
    // d2, d4, d9 ranked 1-3: DCG = IDCG
    const perfect = ranking([
      ['d2', 3],
      ['d4', 2],
      ['d9', 1],
      ['d1', 0],
    ]);
    expect(ndcgAtK(perfect, judged, 10)).toBeCloseTo(1, 10);
    expect(recallAtK(perfect, judged, 3)).toBeCloseTo(1, 10);
  });
});

describe('graded relevance (linear gain, as trec_eval ndcg_cut)', () => {
  // Ranked: a (grade 1), b (grade 0), c (grade 2).
  const run = ranking([
    ['a', 3],
    ['b', 2],
    ['c', 1],
  ]);
  const judged = rels({ a: 1, b: 0, c: 2 });

  it('nDCG@3', () => {
    // DCG  = 1/log2(2) + 0/log2(3) + 2/log2(4) = 1 + 0 + 1 = 2
    // IDCG = 2/log2(2) + 1/log2(3)             = 2 + 1/log2(3)   (ideal order: c, a)
    expect(ndcgAtK(run, judged, 3)).toBeCloseTo(2 / (2 + 1 / Math.log2(3)), 10);
  });

  it('nDCG@1', () => {
    // DCG = 1 (a); IDCG = 2 (c would be first) → 1/2
    expect(ndcgAtK(run, judged, 1)).toBeCloseTo(0.5, 10);
  });

  it('grade 0 is judged but not relevant', () => {
    // relevant = {a, c}; both within the top 3
    expect(recallAtK(run, judged, 3)).toBeCloseTo(1, 10);
    // b (grade 0) at rank 2 does not count; a at rank 1 does
    expect(precisionAtK(run, judged, 2)).toBeCloseTo(1 / 2, 10);
  });
});

describe('no relevant document in the top k', () => {
  // Ranked: x, y, z, w. Only w (rank 4) is relevant.
  const run = ranking([
    ['x', 4],
    ['y', 3],
    ['z', 2],
    ['w', 1],
  ]);
  const judged = rels({ w: 1 });

  it('scores 0 within k = 3', () => {
    expect(ndcgAtK(run, judged, 3)).toBeCloseTo(0, 10);
    expect(mrrAtK(run, judged, 3)).toBeCloseTo(0, 10);
    expect(recallAtK(run, judged, 3)).toBeCloseTo(0, 10);
  });

  it('counts it at k = 4', () => {
    expect(mrrAtK(run, judged, 4)).toBeCloseTo(1 / 4, 10);
    // DCG = 1/log2(5); IDCG = 1
    expect(ndcgAtK(run, judged, 4)).toBeCloseTo(1 / Math.log2(5), 10);
  });

  it('a query with no relevant document at all scores 0, not NaN', () => {
    expect(ndcgAtK(run, rels({ x: 0 }), 10)).toBe(0);
    expect(recallAtK(run, undefined, 10)).toBe(0);
  });
});

describe('ties in score', () => {
  // c (0.9) first; a and b tie at 0.5 and docId ascending puts a before b → c, a, b.
  // (trec_eval breaks ties by docid descending and would rank b second.)
  const run = ranking([
    ['b', 0.5],
    ['a', 0.5],
    ['c', 0.9],
  ]);
  const judged = rels({ b: 1 });

  it('break by docId ascending', () => {
    expect(rankDocIds(run)).toEqual(['c', 'a', 'b']);
    expect(mrrAtK(run, judged, 10)).toBeCloseTo(1 / 3, 10); // b at rank 3
    // DCG = 1/log2(4) = 0.5; IDCG = 1
    expect(ndcgAtK(run, judged, 10)).toBeCloseTo(0.5, 10);
  });

  it('do not depend on the input order', () => {
    expect(mrrAtK([...run].reverse(), judged, 10)).toBeCloseTo(1 / 3, 10);
  });
});

describe('edge cases', () => {
  it('recall@k with k larger than the ranking', () => {
    // 2 documents returned, both relevant, out of 4 relevant → 2/4
    const run = ranking([
      ['r1', 2],
      ['r2', 1],
    ]);
    const judged = rels({ r1: 1, r2: 1, r3: 1, r4: 1 });
    expect(recallAtK(run, judged, 100)).toBeCloseTo(0.5, 10);
    expect(precisionAtK(run, judged, 100)).toBeCloseTo(2 / 100, 10);
  });

  it('a document listed twice counts once, at its best rank', () => {
    // Ranking after de-duplication: r1, x → recall 1/1, not 2/1
    const run = ranking([
      ['r1', 0.9],
      ['x', 0.5],
      ['r1', 0.1],
    ]);
    expect(rankDocIds(run)).toEqual(['r1', 'x']);
    expect(recallAtK(run, rels({ r1: 1 }), 10)).toBeCloseTo(1, 10);
  });

  it('rejects a bad cut-off and NaN scores', () => {
    expect(() => ndcgAtK([], rels({ a: 1 }), 0)).toThrow(RangeError);
    expect(() => recallAtK([], rels({ a: 1 }), 1.5)).toThrow(RangeError);
    expect(() => mrrAtK(ranking([['a', Number.NaN]]), rels({ a: 1 }), 10)).toThrow(/NaN/);
  });
});

describe('evaluate', () => {
  const qrels: Qrels = new Map([
    ['q1', rels({ d1: 1, d2: 1 })],
    ['q2', rels({ d5: 2 })], // missing from the run → scores 0
    ['q3', rels({ d7: 0 })], // no relevant document → not evaluated
  ]);
  const run: Run = new Map([
    [
      'q1',
      ranking([
        ['d1', 0.9],
        ['x', 0.8],
        ['d2', 0.7],
      ]),
    ], // relevant at ranks 1 and 3
    ['q4', ranking([['d1', 1]])], // not in qrels → ignored
  ]);

  it('averages over the qrels queries that have a relevant document, missing run queries counting 0', () => {
    const result = evaluate(run, qrels, { ks: [1, 10] });
    expect(result.queries).toBe(2);
    expect([...result.perQuery.keys()]).toEqual(['q1', 'q2']);

    // q1: DCG@10 = 1 + 1/log2(4) = 1.5; IDCG@10 = 1 + 1/log2(3)
    const q1Ndcg10 = 1.5 / (1 + 1 / Math.log2(3));
    const q1 = result.perQuery.get('q1')!;
    expect(q1['ndcg@10']).toBeCloseTo(q1Ndcg10, 10);
    expect(q1['ndcg@1']).toBeCloseTo(1, 10); // d1 first; IDCG@1 = 1
    expect(q1['recall@1']).toBeCloseTo(1 / 2, 10);
    expect(q1['recall@10']).toBeCloseTo(1, 10);
    expect(q1['mrr@10']).toBeCloseTo(1, 10);
    expect(q1['precision@10']).toBeCloseTo(2 / 10, 10);

    const q2 = result.perQuery.get('q2')!;
    for (const v of Object.values(q2)) expect(v).toBe(0);

    // means = (q1 + 0) / 2
    expect(result.means['ndcg@10']).toBeCloseTo(q1Ndcg10 / 2, 10);
    expect(result.means['ndcg@1']).toBeCloseTo(1 / 2, 10);
    expect(result.means['recall@1']).toBeCloseTo(1 / 4, 10);
    expect(result.means['recall@10']).toBeCloseTo(1 / 2, 10);
    expect(result.means['mrr@10']).toBeCloseTo(1 / 2, 10);
    expect(result.means['precision@10']).toBeCloseTo(1 / 10, 10);
    expect(Object.keys(result.means).sort()).toEqual(['mrr@1', 'mrr@10', 'ndcg@1', 'ndcg@10', 'precision@1', 'precision@10', 'recall@1', 'recall@10'].sort());
  });

  it('mean over three queries', () => {
    // First relevant at ranks 1, 2, 3 → MRR = (1 + 1/2 + 1/3) / 3 = 11/18
    const q: Qrels = new Map([
      ['a', rels({ r: 1 })],
      ['b', rels({ r: 1 })],
      ['c', rels({ r: 1 })],
    ]);
    const r: Run = new Map([
      [
        'a',
        ranking([
          ['r', 3],
          ['x', 2],
          ['y', 1],
        ]),
      ],
      [
        'b',
        ranking([
          ['x', 3],
          ['r', 2],
          ['y', 1],
        ]),
      ],
      [
        'c',
        ranking([
          ['x', 3],
          ['y', 2],
          ['r', 1],
        ]),
      ],
    ]);
    const result = evaluate(r, q, { ks: [10] });
    expect(result.means['mrr@10']).toBeCloseTo(11 / 18, 10);
    // nDCG = (1 + 1/log2(3) + 1/log2(4)) / 3, IDCG = 1 each
    expect(result.means['ndcg@10']).toBeCloseTo((1 + 1 / Math.log2(3) + 0.5) / 3, 10);
  });

  it('defaults to k = 10 and 100, and reports 0 queries rather than NaN when there is nothing to evaluate', () => {
    const result = evaluate(new Map(), new Map([['q', rels({ d: 0 })]]));
    expect(result.queries).toBe(0);
    expect(result.means['ndcg@10']).toBe(0);
    expect(result.means['recall@100']).toBe(0);
  });
});

describe('percentile (nearest rank)', () => {
  const oneTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

  it('picks the ⌈p/100·n⌉-th smallest sample', () => {
    const values = [5, 1, 4, 2, 3];
    expect(percentile(values, 50)).toBe(3); // ⌈2.5⌉ = 3rd smallest
    expect(percentile(values, 0)).toBe(1); // the smallest
    expect(percentile(values, 100)).toBe(5);
    expect(percentile(values, 20)).toBe(1); // ⌈1⌉ = 1st
    expect(percentile(values, 21)).toBe(2); // ⌈1.05⌉ = 2nd
    expect(values).toEqual([5, 1, 4, 2, 3]); // input left alone
  });

  it('is exact where floating point is not', () => {
    expect(percentile(oneTo(100), 99)).toBe(99);
    expect(percentile(oneTo(100), 7)).toBe(7); // 0.07 * 100 = 7.000000000000001 would give 8
    expect(percentile(oneTo(1000), 99.9)).toBe(999);
  });

  it('sorts numerically, not as strings', () => {
    expect(percentile([10, 9, 100], 50)).toBe(10); // string order would be 10, 100, 9
  });

  it('rejects an empty list and p outside [0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});
