import { describe, expect, it } from 'vitest';
import { paddingBoundedBatches } from '../../src/embed/embedder.ts';

const padding = (batches: number[][], lengths: number[]): number[] =>
  batches.map((b) => {
    const max = Math.max(...b.map((i) => lengths[i]!));
    return 1 - b.reduce((s, i) => s + lengths[i]!, 0) / (max * b.length);
  });

describe('paddingBoundedBatches', () => {
  it('covers every index once, in token order, within the size and padding bounds', () => {
    // Mixed lengths like a write's paragraphs: short ones, a long tail.
    const lengths = Array.from({ length: 150 }, (_, i) => 12 + ((i * 37) % 97) + (i % 11 === 0 ? 140 : 0));
    const batches = paddingBoundedBatches(lengths, 32, 0.05);
    const flat = batches.flat();
    expect([...flat].sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    for (let k = 1; k < flat.length; k++) expect(lengths[flat[k]!]!).toBeGreaterThanOrEqual(lengths[flat[k - 1]!]!);
    for (const b of batches) expect(b.length).toBeLessThanOrEqual(32);
    for (const p of padding(batches, lengths)) expect(p).toBeLessThanOrEqual(0.05 + 1e-12);
  });

  it('keeps full batches when neighbouring lengths are close, and cuts where a jump would pad', () => {
    const even = Array.from({ length: 96 }, (_, i) => 100 + Math.floor(i / 8));
    expect(paddingBoundedBatches(even, 32, 0.05).map((b) => b.length)).toEqual([32, 32, 32]);
    // Four short texts then one four times as long: the long one gets its own batch.
    expect(paddingBoundedBatches([10, 10, 40, 10, 10], 32, 0.05)).toEqual([[0, 1, 3, 4], [2]]);
  });
});
