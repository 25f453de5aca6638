import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Nearest-rank percentile of unsorted samples (p in 0..100). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = samples.slice().sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

export function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

// A full GC before reading RSS, without asking every caller to pass --expose-gc to node.
v8.setFlagsFromString('--expose-gc');
const fullGc = runInNewContext('gc') as () => void;

export function gc(): void {
  fullGc();
  fullGc();
}
