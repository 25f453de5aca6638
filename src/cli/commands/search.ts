import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

interface SearchFlags extends CommonFlags {
  k: string;
  mode: string;
  minScore?: string;
  explain?: boolean;
  json?: boolean;
  from?: string;
  to?: string;
  source?: string[];
  tag?: string[];
  sort?: string;
  offset?: string;
  facets?: string;
  collapse: boolean;
  recency?: string;
  recencyDate?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerSearch(program: Command): void {
  program
    .command('search')
    .description('search the index from the command line (no server needed)')
    .argument('<query...>', 'what to look for, in your own words')
    .option('-k, --k <n>', 'number of articles', '10')
    .option('--mode <mode>', 'hybrid | semantic | lexical', 'hybrid')
    .option('--min-score <x>', 'drop articles scoring below this')
    .option('--from <date>', 'only articles dated on or after this day (YYYY-MM-DD)')
    .option('--to <date>', 'only articles dated on or before this day (YYYY-MM-DD)')
    .option('--source <name>', 'only articles from this source (repeat for several)', collect)
    .option('--tag <tag>', 'only articles with this tag (repeat for several; any of them matches)', collect)
    .option('--sort <order>', 'relevance | date (newest first)', 'relevance')
    .option('--offset <n>', 'skip this many results (paging)', '0')
    .option('--facets <names>', 'count the matching stories by source, tag, year (comma-separated)')
    .option('--no-collapse', 'show every copy of a story, not one per duplicate group')
    .option('--recency <half-life>', 'favour recent articles: halve the score every 30d, 12h, …')
    .option('--recency-date <date>', 'with --recency: count ages from this day instead of the newest article')
    .option('--explain', 'show why each paragraph matched')
    .option('--json', 'print the JSON response instead of text')
    .action(async (words: string[], flags: SearchFlags, cmd: Command) => {
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
        {
          q: words.join(' '),
          k: flags.k,
          mode: flags.mode,
          minScore: flags.minScore,
          explain: flags.explain ?? false,
          from: flags.from,
          to: flags.to,
          source: flags.source,
          tag: flags.tag,
          sort: flags.sort,
          offset: flags.offset,
          facets: flags.facets,
          collapse: flags.collapse,
          recency: flags.recency,
          recencyDate: flags.recencyDate,
        },
        {
          q: 'query',
          k: '--k',
          mode: '--mode',
          minScore: '--min-score',
          from: '--from',
          to: '--to',
          source: '--source',
          tag: '--tag',
          sort: '--sort',
          offset: '--offset',
          facets: '--facets',
          recency: '--recency',
          recencyDate: '--recency-date',
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
