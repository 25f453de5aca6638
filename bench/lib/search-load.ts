import { getPriority, setPriority } from 'node:os';
import { loadConfig } from '../../src/config/config.ts';
import { bbcTitles, scifactQueries, seededShuffle } from './corpus.ts';
import type { LoadRequest } from './http-load.ts';

/** Held-out search requests, each a different query: SciFact test queries and bbc-news titles, alternating. */
export function searchRequests(): () => LoadRequest {
  const sq = scifactQueries();
  const bt = seededShuffle(bbcTitles()).slice(0, sq.length);
  const queries = sq.flatMap((q, i) => [q, bt[i]!]);
  let i = 0;
  return () => ({ method: 'GET', path: `/search?q=${encodeURIComponent(queries[i++ % queries.length]!)}`, kind: 'search' });
}

/** The search concurrency a server started with `env` runs: its QUARRY_SEARCH_CONCURRENCY, or the default. */
export const searchConcurrencyOf = (env: Record<string, string>): number => Number(env.QUARRY_SEARCH_CONCURRENCY ?? loadConfig({ env: {} }).searchConcurrency);

/** Search admission with nothing refused (the capacity measurements, and "protection off"): `concurrency` slots. */
export const unboundedSearch = (concurrency: number): Record<string, string> => ({
  QUARRY_SEARCH_CONCURRENCY: String(concurrency),
  QUARRY_SEARCH_QUEUE_LIMIT: '100000',
  QUARRY_SEARCH_QUEUE_TIMEOUT_MS: '0',
  QUARRY_SEARCH_QUEUE_TARGET_MS: '0',
  QUARRY_SEARCH_LOOP_LAG_TARGET_MS: '0',
  QUARRY_SEARCH_TIMEOUT_MS: '600000',
});

/**
 * Runs load generation with this thread at the generator's priority, then restores it (lowering needs no
 * privilege; restoring does: root here), standing in for a client on another machine.
 */
export function atGeneratorPriority(nice: number, log: (s: string) => void): <T>(fn: () => Promise<T>) => Promise<T> {
  return async (fn) => {
    const before = getPriority(0);
    setPriority(0, nice);
    try {
      return await fn();
    } finally {
      try {
        setPriority(0, before);
      } catch {
        log(`could not restore this process's priority to ${before}: later servers inherit nice ${nice}`);
      }
    }
  };
}
