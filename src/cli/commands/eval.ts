import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { QuarryError } from '../../errors.ts';
import { runEval, type EvalReport } from '../../eval/run-eval.ts';
import { SearchModeSchema, SearchRequestSchema, type SearchMode } from '../../search/schema.ts';
import { configFrom, withEmbedder, type CommonFlags } from '../context.ts';
import { parseFlags } from '../parse-flags.ts';

interface EvalFlags extends CommonFlags {
  dataset: string;
  mode: string;
  limit?: string;
  json?: string;
  queries?: string;
  qrels?: string;
  keepIndex?: string;
  fusion?: string;
  rrfK?: string;
  denseWeight?: string;
  lexicalWeight?: string;
  candidates?: string;
}

const EvalFlagsSchema = z
  .object({
    mode: z.enum([...SearchModeSchema.options, 'all'], { error: 'must be semantic, lexical, hybrid or all' }),
    limit: z.coerce.number().int().min(1).optional(),
  })
  .extend(SearchRequestSchema.pick({ fusion: true, rrfK: true, denseWeight: true, lexicalWeight: true, candidates: true }).shape);

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('measure retrieval quality on a BEIR-layout collection (corpus*.jsonl, queries.jsonl, qrels/test.tsv)')
    .requiredOption('--dataset <dir>', 'collection folder')
    .option('--mode <mode>', 'semantic | lexical | hybrid | all', 'all')
    .option('--limit <n>', 'evaluate only the first N judged queries')
    .option('--json <file>', 'also write the results as JSON to this file')
    .option('--queries <file>', 'queries file, relative to the dataset (default queries.jsonl)')
    .option('--qrels <file>', 'judgements file, relative to the dataset (default qrels/test.tsv)')
    .option('--keep-index <dir>', 'keep the index here and reuse it when it holds the same corpus (no re-embedding)')
    .option('--fusion <name>', 'rrf | relative (hybrid mode)')
    .option('--rrf-k <k>', 'RRF k')
    .option('--dense-weight <w>', 'weight of the dense retriever in fusion')
    .option('--lexical-weight <w>', 'weight of the BM25 retriever in fusion')
    .option('--candidates <n>', 'chunks taken from each retriever before fusion')
    .action(async (flags: EvalFlags, cmd: Command) => {
      const config = configFrom(cmd.optsWithGlobals());
      const parsed = parseFlags(EvalFlagsSchema, { ...flags }, { mode: '--mode', limit: '--limit', fusion: '--fusion', rrfK: '--rrf-k', denseWeight: '--dense-weight', lexicalWeight: '--lexical-weight', candidates: '--candidates' });
      const { mode, limit, ...search } = parsed;
      const modes: SearchMode[] = mode === 'all' ? ['semantic', 'lexical', 'hybrid'] : [mode];
      const report = await withEmbedder(config, (embedder) =>
        runEval({
          dataset: flags.dataset,
          modes,
          limit,
          queriesFile: flags.queries,
          qrelsFile: flags.qrels,
          keepIndex: flags.keepIndex,
          search: Object.fromEntries(Object.entries(search).filter(([, v]) => v !== undefined)),
          config,
          embedder,
          onProgress: (p) => {
            if (!process.stderr.isTTY) return;
            const line = p.stage === 'index' ? `indexing ${p.articlesDone}/${p.articlesTotal} documents` : `${p.mode}: ${p.done}/${p.total} queries`;
            process.stderr.write(`\r${line}\x1b[K`);
          },
        }),
      );
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      process.stdout.write(`${formatEvalReport(report)}\n`);
      if (flags.json) {
        try {
          writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
        } catch (e) {
          throw new QuarryError('invalid_request', `--json ${flags.json}: ${(e as Error).message}`, { field: '--json' });
        }
      }
    });
}

export function formatEvalReport(r: EvalReport): string {
  const f = (x: number) => x.toFixed(4);
  const header = ['mode', 'nDCG@10', 'Recall@10', 'Recall@100', 'MRR@10', 'p50 ms'];
  const rows = r.modes.map((m) => [m.mode, f(m.ndcg10), f(m.recall10), f(m.recall100), f(m.mrr10), m.latencyP50Ms.toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const settings = Object.entries(r.search).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  return [
    `${r.dataset}: ${r.documents} documents (${r.chunks} chunks), ${r.queries} queries (${r.queriesFile}, ${r.qrelsFile}), top ${r.k} articles per query${settings ? `; ${settings}` : ''}`,
    `indexing: ${r.indexSeconds.toFixed(1)} s${r.indexReused ? ' (reused index; time of its build)' : ''}`,
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
