/**
 * The load generator, run as a separate process so it does not share the server's event loop:
 * `tsx bench/lib/load-client.ts <url> <connections> <seconds> <queries.json> [extra query string]` prints autocannon's result
 * as JSON on stdout. Each request takes the next query of the list (round robin across connections).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: Record<string, number>;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const [url, connections, seconds, queriesFile, extra] = process.argv.slice(2);
const queries = JSON.parse(readFileSync(queriesFile!, 'utf8')) as string[];
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
let next = 0;
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'GET',
      setupRequest: (req: { path: string }) => ({
        ...req,
        path: `/search?q=${encodeURIComponent(queries[next++ % queries.length]!)}${extra ? `&${extra}` : ''}`,
      }),
    },
  ],
});
process.stdout.write(
  JSON.stringify({
    connections: Number(connections),
    seconds: result.duration,
    requests: result.requests.total,
    rps: result.requests.average,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, mean: result.latency.average },
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    ok: result['2xx'],
  }),
);
