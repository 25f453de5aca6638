import { describe, expect, it } from 'vitest';
import { LivePressure } from '../../src/util/live-pressure.ts';
import { pollUntil } from '../helpers/poll.ts';

describe('LivePressure (background work gives way to live requests)', () => {
  it('is pressed while any source says so, and calm() resolves at once when none does', async () => {
    const pressure = new LivePressure();
    expect(pressure.pressed).toBe(false);
    const a = false;
    let b = false;
    pressure.watch(() => a);
    pressure.watch(() => b);
    expect(pressure.pressed).toBe(false);
    b = true;
    expect(pressure.pressed).toBe(true);
    b = false;
    let checks = 0;
    pressure.watch(() => {
      checks++;
      return false;
    });
    await pressure.calm({ pollMs: 60_000 });
    // One look and no wait: a poll interval of a minute would have hung the test.
    expect(checks).toBe(1);
    expect(a).toBe(false);
  });

  it('calm() waits while pressed and resolves once the pressure is gone', async () => {
    const pressure = new LivePressure();
    let held = true;
    let looks = 0;
    pressure.watch(() => {
      looks++;
      return held;
    });
    let calmed = false;
    const calm = pressure.calm({ pollMs: 1, maxWaitMs: 10 * 60_000 }).then(() => (calmed = true));
    await pollUntil(() => looks >= 5, { what: 'calm() to keep checking' });
    expect(calmed).toBe(false);
    held = false;
    await calm;
    expect(calmed).toBe(true);
  });

  it('calm() gives up waiting after maxWaitMs: background work is slowed, never stopped', async () => {
    const pressure = new LivePressure();
    pressure.watch(() => true);
    await pressure.calm({ pollMs: 1, maxWaitMs: 20 });
    expect(pressure.pressed).toBe(true);
  });
});
