import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search the index from the command line (no server needed)')
    .argument('<query...>', 'what to look for, in your own words')
    .option('-k, --k <n>', 'number of articles', '10')
    .option('--mode <mode>', 'hybrid | semantic | lexical', 'hybrid')
    .option('--min-score <x>', 'drop articles scoring below this')
    .option('--explain', 'show why each paragraph matched')
    .option('--json', 'print the JSON response instead of text')
    .action(async (words: string[], flags: CommonFlags & { k: string; mode: string; minScore?: string; explain?: boolean; json?: boolean }, cmd: Command) => {
      const [{ configFrom, withEmbedder }, { openQuarry }, { SearchRequestSchema }, { parseFlags }, { formatSearchResults }] = await Promise.all([
        import('../context.ts'),
        import('../../core/open-or-build.ts'),
        import('../../search/schema.ts'),
        import('../parse-flags.ts'),
        import('../format.ts'),
      ]);
      const config = configFrom(cmd.optsWithGlobals());
      const req = parseFlags(
        SearchRequestSchema,
        { q: words.join(' '), k: flags.k, mode: flags.mode, minScore: flags.minScore, explain: flags.explain ?? false },
        {
          q: 'query',
          k: '--k',
          mode: '--mode',
          minScore: '--min-score',
        },
      );
      await withEmbedder(config, async (embedder) => {
        const quarry = await openQuarry({ config, embedder, access: 'read' });
        try {
          const res = await quarry.search(req);
          process.stdout.write(flags.json ? `${JSON.stringify(res, null, 2)}\n` : `${formatSearchResults(res, { width: process.stdout.columns })}\n`);
        } finally {
          await quarry.close();
        }
      });
    });
}
