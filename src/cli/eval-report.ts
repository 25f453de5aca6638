import { z } from 'zod';
import type { EvalReport } from '../eval/run-eval.ts';
import { SearchModeSchema, SearchRequestFields } from '../search/schema.ts';

/** `quarry eval`'s flags, checked with the same schema as a search request where they overlap. */
export const EvalFlagsSchema = z
  .object({
    mode: z.enum([...SearchModeSchema.options, 'all'], { error: 'must be semantic, lexical, hybrid or all' }),
    limit: z.coerce.number().int().min(1).optional(),
  })
  .extend(SearchRequestFields.pick({ fusion: true, rrfK: true, denseWeight: true, lexicalWeight: true, candidates: true }).shape);

export function formatEvalReport(r: EvalReport): string {
  const f = (x: number) => x.toFixed(4);
  const header = ['mode', 'nDCG@10', 'Recall@10', 'Recall@100', 'MRR@10', 'p50 ms'];
  const rows = r.modes.map((m) => [m.mode, f(m.ndcg10), f(m.recall10), f(m.recall100), f(m.mrr10), m.latencyP50Ms.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const settings = Object.entries(r.search)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
  return [
    `${r.dataset}: ${r.documents} documents (${r.chunks} chunks), ${r.queries} queries (${r.queriesFile}, ${r.qrelsFile}), top ${r.k} articles per query${settings ? `; ${settings}` : ''}`,
    `indexing: ${r.indexSeconds.toFixed(1)} s${r.indexReused ? ' (reused index; time of its build)' : ''}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
