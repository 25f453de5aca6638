import { describe, expect, it } from 'vitest';
import { refusedForLag } from '../../src/server/overload.ts';
import { LAG_INTERVAL_MS, LoopLagShedder } from '../../src/util/loop-lag-shedder.ts';

/** Lag samples are fed by the test with its own clock: no timing. */
describe('LoopLagShedder (CoDel on the event loop lag)', () => {
  it('ignores a spike shorter than the interval, sheds a standing lag, stops at the first sample under target, and re-enters at once', () => {
    const s = new LoopLagShedder(10);
    // A GC or a commit: 60 ms of lag over the target, then back.
    for (let t = 0; t <= 60; t += 5) s.observe(30, t);
    expect(s.shed).toBe(false);
    s.observe(1, 65);
    expect(s.shed).toBe(false);
    // A standing backlog: over the target for a whole interval.
    let t = 100;
    for (; t < 100 + LAG_INTERVAL_MS; t += 5) {
      s.observe(25, t);
      expect(s.shed).toBe(false);
    }
    s.observe(25, t);
    expect(s.shed).toBe(true);
    // The loop caught up (refusals are cheap): admit again.
    s.observe(3, t + 5);
    expect(s.shed).toBe(false);
    // The backlog is back within an interval: shed at once, not after another interval.
    s.observe(25, t + 10);
    expect(s.shed).toBe(true);
    s.observe(2, t + 15);
    // Long calm: a new lag must stand for an interval again.
    s.observe(25, t + 15 + 2 * LAG_INTERVAL_MS);
    expect(s.shed).toBe(false);
  });
});

describe('after shedding (strained) the search queue stays short', () => {
  it('is strained while shedding and for one interval after, then calm', () => {
    const s = new LoopLagShedder(10, 100);
    expect(s.strained).toBe(false);
    for (let t = 0; t <= 100; t += 5) s.observe(30, t);
    expect(s.shed).toBe(true);
    expect(s.strained).toBe(true);
    s.observe(2, 105);
    expect(s.shed).toBe(false);
    expect(s.strained).toBe(true);
    s.observe(2, 200);
    expect(s.strained).toBe(true);
    s.observe(2, 205);
    expect(s.strained).toBe(false);
  });

  it('refuses while shedding; while strained only a search that would wait behind the short limit', () => {
    const calm = { shed: false, strained: false };
    const strained = { shed: false, strained: true };
    const shedding = { shed: true, strained: true };
    expect(refusedForLag(calm, 7, 2)).toBe(false);
    expect(refusedForLag(strained, 1, 2)).toBe(false);
    expect(refusedForLag(strained, 2, 2)).toBe(true);
    expect(refusedForLag(shedding, 0, 2)).toBe(true);
  });
});
