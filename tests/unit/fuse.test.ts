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
