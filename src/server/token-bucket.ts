import type { IncrementResponse, Store } from 'express-rate-limit';

/** Above this many clients tracked at once, the least recently seen are forgotten (their buckets refill). */
const MAX_CLIENTS = 100_000;

/**
 * A token bucket per client as an express-rate-limit Store (its own MemoryStore counts fixed windows, which
 * let a client spend two windows' worth at a window boundary). Kept as GCRA: per client one number, the time
 * at which its bucket would be full again; a request costs `1 / rate` seconds of it and is refused when that
 * would push the time more than `burst / rate` seconds ahead. Memory: one Map entry per client seen within
 * the last `burst / rate` seconds, at most MAX_CLIENTS.
 *
 * In express-rate-limit's terms: `totalHits` is the tokens in use (burst - remaining) and `resetTime` is when
 * the bucket is full again, or, for a refused request, when the next token arrives (its Retry-After).
 */
export class TokenBucketStore implements Store {
  readonly localKeys = true;
  /** Client key -> when its bucket is full again (ms since the epoch); Map order = least recently seen first. */
  private readonly fullAt = new Map<string, number>();
  private readonly intervalMs: number;

  constructor(
    rate: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.intervalMs = 1000 / rate;
  }

  /** The time a whole bucket takes to refill: the window of the RateLimit-Policy header. */
  get windowMs(): number {
    return this.burst * this.intervalMs;
  }

  increment(key: string): IncrementResponse {
    const now = this.now();
    this.sweep(now);
    const fullAt = Math.max(this.fullAt.get(key) ?? now, now);
    const next = fullAt + this.intervalMs;
    const allowedFrom = next - this.windowMs;
    if (now < allowedFrom) return { totalHits: this.burst + 1, resetTime: new Date(allowedFrom) };
    this.fullAt.delete(key);
    this.fullAt.set(key, next);
    if (this.fullAt.size > MAX_CLIENTS) this.fullAt.delete(this.fullAt.keys().next().value!);
    return { totalHits: Math.min(this.burst, Math.ceil((next - now) / this.intervalMs - 1e-9)), resetTime: new Date(next) };
  }

  /** Gives a token back (express-rate-limit calls it for skipped outcomes; unused here, kept for the Store contract). */
  decrement(key: string): void {
    const at = this.fullAt.get(key);
    if (at !== undefined) this.fullAt.set(key, at - this.intervalMs);
  }

  resetKey(key: string): void {
    this.fullAt.delete(key);
  }

  resetAll(): void {
    this.fullAt.clear();
  }

  /** Clients tracked now (tests, metrics). */
  get clients(): number {
    return this.fullAt.size;
  }

  /** Forgets clients whose bucket is full again, oldest first; stops at the first that is not (amortised O(1)). */
  private sweep(now: number): void {
    for (const [key, at] of this.fullAt) {
      if (at > now) return;
      this.fullAt.delete(key);
    }
  }
}
