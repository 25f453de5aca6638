/**
 * `npm run bench -- <name> [options]`. Each benchmark is a module under bench/ exporting
 * `run(args)`; it writes bench/results/<name>-<timestamp>.json and updates its table in
 * docs/benchmarks.md. Benchmarks are scripts, never timed tests.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const BENCHES: Record<string, string> = {
  vectors: './vectors.ts',
  embed: './embed.ts',
  ann: './ann.ts',
  search: './search.ts',
  peers: './peers.ts',
  padding: './padding.ts',
  ingest: './ingest.ts',
  sequential: './sequential.ts',
  'passage-worker': './passage-worker.ts',
  'graph-opt': './graph-opt.ts',
  startup: './startup.ts',
  duplicates: './duplicates.ts',
  filters: './filters.ts',
  postgres: './postgres.ts',
  'postgres-scifact': './postgres-scifact.ts',
  'postgres-replica': './postgres-replica.ts',
  overload: './overload.ts',
  'overload-compare': './overload-compare.ts',
  'queue-sim': './queue-sim.ts',
  snapshot: './snapshot.ts',
  soak: './soak.ts',
  rebuild: './rebuild.ts',
  'serve-memory': './serve-memory.ts',
  'rebuild-memory': './rebuild-memory.ts',
};

const [name, ...args] = process.argv.slice(2);
const available = Object.keys(BENCHES).filter((n) => existsSync(join(import.meta.dirname, BENCHES[n]!)));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <${available.join('|')}> [options]`);
  process.exit(2);
}
const mod = (await import(BENCHES[name]!)) as { run(args: string[]): Promise<void> };
await mod.run(args);
