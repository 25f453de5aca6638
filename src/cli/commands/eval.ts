import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { QuarryError } from '../../errors.ts';
import type { SearchMode } from '../../search/schema.ts';
import type { CommonFlags } from '../context.ts';

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
      const [{ configFrom, withEmbedder }, { runEval }, { parseFlags }, { EvalFlagsSchema, formatEvalReport }] = await Promise.all([
        import('../context.ts'),
        import('../../eval/run-eval.ts'),
        import('../parse-flags.ts'),
        import('../eval-report.ts'),
      ]);
      const config = configFrom(cmd.optsWithGlobals());
      const parsed = parseFlags(
        EvalFlagsSchema,
        { ...flags },
        {
          mode: '--mode',
          limit: '--limit',
          fusion: '--fusion',
          rrfK: '--rrf-k',
          denseWeight: '--dense-weight',
          lexicalWeight: '--lexical-weight',
          candidates: '--candidates',
        },
      );
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
