/*
 * Waiting for something another process or a background task does. A test must not sleep a fixed time and
 * hope: it checks, and checks again, a bounded number of times. The bound is a hang guard, not a deadline:
 * it is generous (minutes at the longest interval), so a slow machine only makes the wait longer.
 */

/**
 * How long a child process (the CLI, a server starting) may take before it is taken for hung. A hang guard, far
 * above what any of them needs on a loaded machine, so only a real hang trips it.
 */
export const CHILD_HANG_GUARD_MS = 5 * 60_000;

export interface PollOptions {
  /** What is awaited, for the failure message ("the rebuild to finish"). */
  what: string;
  /** Checks before giving up (default 3000: about 10 minutes once the interval reaches its cap). */
  attempts?: number;
  /** First interval between checks; it doubles up to `maxIntervalMs` (defaults 5 and 200 ms). */
  intervalMs?: number;
  maxIntervalMs?: number;
}

/** Resolves with the first truthy value `check` returns; throws naming `what` after `attempts` checks. */
export async function pollUntil<T>(check: () => T | Promise<T>, opts: PollOptions): Promise<NonNullable<T>> {
  const attempts = opts.attempts ?? 3000;
  let interval = opts.intervalMs ?? 5;
  const cap = opts.maxIntervalMs ?? 200;
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(cap, interval * 2);
  }
  throw new Error(`gave up waiting for ${opts.what} after ${attempts} checks`);
}
