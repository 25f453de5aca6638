import { describe, expect, it } from 'vitest';
import { reciprocalRankFusion, relativeScoreFusion } from '../../src/search/fuse.ts';
import type { RankedChunk } from '../../src/store/store.ts';

const ranked = (...pairs: Array<[chunkId: number, score: number]>): RankedChunk[] => pairs.map(([chunkId, score], i) => ({ chunkId, rank: i + 1, score }));

describe('reciprocalRankFusion', () => {
  it('sums w / (k + rank) per retriever and reports it divided by its maximum', () => {
    const dense = ranked([1, 0.9], [2, 0.8]);
    const lexical = ranked([2, 7], [3, 5]);
    const out = reciprocalRankFusion(dense, lexical, { k: 60, denseWeight: 1, lexicalWeight: 1 });
    expect(out.map((c) => c.chunkId)).toEqual([2, 1, 3]);
    expect(out[0]!.raw).toBeCloseTo(1 / 62 + 1 / 61, 12);
    expect(out[0]!.score).toBeCloseTo((1 / 62 + 1 / 61) / (2 / 61), 12);
    expect(out[1]).toMatchObject({ denseTerm: 1 / 61, lexicalTerm: 0 });
    expect(out[2]!.raw).toBeCloseTo(1 / 62, 12);
  });

  it('breaks a tie by the better dense rank', () => {
    // rowid 1: dense 1st only; rowid 2: lexical 1st only: equal fused scores.
    const out = reciprocalRankFusion(ranked([1, 0.5]), ranked([2, 3]), { k: 60, denseWeight: 1, lexicalWeight: 1 });
    expect(out.map((c) => c.chunkId)).toEqual([1, 2]);
  });

  it('sees only ranks: a wide BM25 margin counts no more than a narrow one', () => {
    const wide = reciprocalRankFusion(ranked([1, 0.9], [2, 0.89]), ranked([2, 50], [1, 1]), { k: 60, denseWeight: 1, lexicalWeight: 1 });
    const narrow = reciprocalRankFusion(ranked([1, 0.9], [2, 0.89]), ranked([2, 1.01], [1, 1]), { k: 60, denseWeight: 1, lexicalWeight: 1 });
    expect(wide.map((c) => c.raw)).toEqual(narrow.map((c) => c.raw));
  });
});

describe('relativeScoreFusion', () => {
  it('min-max normalises each list and sums with the weights, divided by their total', () => {
    const dense = ranked([1, 0.8], [2, 0.6], [3, 0.4]);
    const lexical = ranked([2, 10], [4, 2]);
    const out = relativeScoreFusion(dense, lexical, { denseWeight: 0.6, lexicalWeight: 0.4 });
    // dense normalised: 1 -> 1, 2 -> 0.5, 3 -> 0; lexical: 2 -> 1, 4 -> 0.
    expect(out.map((c) => c.chunkId)).toEqual([2, 1, 3, 4]);
    expect(out[0]).toMatchObject({ chunkId: 2 });
    expect(out[0]!.raw).toBeCloseTo(0.6 * 0.5 + 0.4 * 1, 12);
    expect(out[0]!.score).toBeCloseTo(0.7, 12);
    expect(out[1]!.score).toBeCloseTo(0.6, 12);
    expect(out[2]!.score).toBe(0);
    expect(out[3]!.score).toBe(0);
  });

  it('keeps score margins that rank fusion loses', () => {
    // Dense slightly prefers 1; BM25 prefers 2 by a wide margin: relative fusion follows BM25's margin.
    const out = relativeScoreFusion(ranked([1, 0.69], [2, 0.62], [3, 0.1]), ranked([2, 5.45], [1, 2.5], [3, 0.5]), { denseWeight: 0.5, lexicalWeight: 0.5 });
    expect(out[0]!.chunkId).toBe(2);
    const rrf = reciprocalRankFusion(ranked([1, 0.69], [2, 0.62], [3, 0.1]), ranked([2, 5.45], [1, 2.5], [3, 0.5]), {
      k: 60,
      denseWeight: 1,
      lexicalWeight: 1,
    });
    expect(rrf[0]!.chunkId).toBe(1); // a tie on ranks, broken by dense
  });

  it('scores a lone candidate (or all-equal scores) as the best of its list', () => {
    const out = relativeScoreFusion(ranked([7, 0.3]), [], { denseWeight: 1, lexicalWeight: 1 });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ chunkId: 7, denseTerm: 1, lexicalTerm: 0, score: 0.5 });
  });

  it('gives 0 for all-zero weights instead of dividing by zero', () => {
    const out = relativeScoreFusion(ranked([1, 0.5], [2, 0.4]), [], { denseWeight: 0, lexicalWeight: 0 });
    expect(out.map((c) => c.score)).toEqual([0, 0]);
  });
});

describe('fusion edge cases', () => {
  const p = { k: 60, denseWeight: 1, lexicalWeight: 1 };

  it('fuses two empty lists into nothing', () => {
    expect(reciprocalRankFusion([], [], p)).toEqual([]);
    expect(relativeScoreFusion([], [], p)).toEqual([]);
  });

  it('with one list empty, keeps the other list order, each chunk credited by that retriever alone', () => {
    const rrf = reciprocalRankFusion([], ranked([4, 9], [2, 3], [7, 1]), p);
    expect(rrf.map((c) => c.chunkId)).toEqual([4, 2, 7]);
    expect(rrf.map((c) => c.raw)).toEqual([1 / 61, 1 / 62, 1 / 63]);
    expect(rrf.every((c) => c.dense === undefined && c.denseTerm === 0)).toBe(true);
    const rel = relativeScoreFusion(ranked([4, 0.9], [2, 0.5], [7, 0.1]), [], p);
    expect(rel.map((c) => [c.chunkId, c.score])).toEqual([
      [4, 0.5],
      [2, 0.25],
      [7, 0],
    ]);
    expect(rel.every((c) => c.lexical === undefined && c.lexicalTerm === 0)).toBe(true);
  });

  it('merges a chunk both retrievers found into one entry carrying both', () => {
    const out = reciprocalRankFusion(ranked([5, 0.7], [6, 0.6]), ranked([6, 2], [5, 1]), p);
    expect(out).toHaveLength(2);
    const five = out.find((c) => c.chunkId === 5)!;
    expect(five).toMatchObject({ dense: { rank: 1, score: 0.7 }, lexical: { rank: 2, score: 1 }, denseTerm: 1 / 61, lexicalTerm: 1 / 62 });
    expect(five.raw).toBe(1 / 61 + 1 / 62);
  });

  it('orders ties without a dense rank by the lower chunk id, whatever order they came in', () => {
    const out = relativeScoreFusion([], ranked([9, 3], [2, 3], [5, 3]), p);
    expect(out.map((c) => c.chunkId)).toEqual([2, 5, 9]);
    expect(out.map((c) => c.score)).toEqual([0.5, 0.5, 0.5]);
    const rrf = reciprocalRankFusion(
      [],
      [
        { chunkId: 8, rank: 1, score: 1 },
        { chunkId: 3, rank: 1, score: 1 },
      ],
      p,
    );
    expect(rrf.map((c) => c.chunkId)).toEqual([3, 8]);
  });

  it('keeps chunks of a zero-weight retriever, scored 0, after the others', () => {
    const out = reciprocalRankFusion(ranked([1, 0.9]), ranked([2, 5]), { k: 60, denseWeight: 1, lexicalWeight: 0 });
    expect(out.map((c) => [c.chunkId, c.score])).toEqual([
      [1, 1],
      [2, 0],
    ]);
    const rel = relativeScoreFusion(ranked([1, 0.9], [3, 0.2]), ranked([2, 5]), { denseWeight: 0, lexicalWeight: 2 });
    expect(rel.map((c) => [c.chunkId, c.score])).toEqual([
      [2, 1],
      [1, 0],
      [3, 0],
    ]);
  });

  it('reports scores in [0, 1], best first, 1 only for a chunk first in every weighted retriever', () => {
    const dense = ranked([1, 0.9], [2, 0.8], [3, 0.7], [4, 0.1]);
    const lexical = ranked([1, 12], [3, 4], [5, 2], [2, 0.5]);
    for (const out of [reciprocalRankFusion(dense, lexical, p), reciprocalRankFusion(dense, lexical, { ...p, k: 0 }), relativeScoreFusion(dense, lexical, p)]) {
      const scores = out.map((c) => c.score);
      expect([...scores].sort((a, b) => b - a)).toEqual(scores);
      expect(Math.min(...scores)).toBeGreaterThanOrEqual(0);
      expect(out[0]).toMatchObject({ chunkId: 1, score: 1 });
      expect(scores.slice(1).every((s) => s < 1)).toBe(true);
    }
  });
});
