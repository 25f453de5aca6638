import { resolve } from 'node:path';
import type { Command } from 'commander';
import { QuarryError } from '../../errors.ts';
import type { CommonFlags } from '../context.ts';

export function registerWriteCommands(program: Command): void {
  program
    .command('add')
    .description('add or replace articles from files (.txt seed format, .json, .jsonl) in the index')
    .argument('<files...>', 'article files')
    .action(async (files: string[], _flags: CommonFlags, cmd: Command) => {
      const [{ configFrom, withEmbedder }, { openQuarry }, { parseArticleFile }] = await Promise.all([
        import('../context.ts'),
        import('../../core/open-or-build.ts'),
        import('../../corpus/load-folder.ts'),
      ]);
      const config = configFrom(cmd.optsWithGlobals());
      const loaded = await Promise.all(
        files.map((f) =>
          parseArticleFile(resolve(f), f).catch((e: Error) => {
            throw e instanceof QuarryError
              ? e
              : new QuarryError('invalid_request', `${f}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : e.message}`, { field: f });
          }),
        ),
      );
      const errors = loaded.flatMap((l) => l.errors);
      if (errors.length > 0) throw errors[0]!;
      const articles = loaded.flatMap((l) => l.articles);
      await withEmbedder(config, async (embedder) => {
        const quarry = await openQuarry({ config, embedder, access: 'write' });
        try {
          const acks = await quarry.upsertArticles(articles, 'cli');
          for (const a of acks) process.stdout.write(`${a.replaced ? 'replaced' : 'added'} ${a.id} (${a.chunks} chunks)\n`);
        } finally {
          await quarry.close();
        }
      });
    });

  program
    .command('delete')
    .description('delete an article and all of its paragraphs from the index')
    .argument('<id>', 'article id')
    .action(async (id: string, _flags: CommonFlags, cmd: Command) => {
      const [{ configFrom }, { openQuarry }] = await Promise.all([import('../context.ts'), import('../../core/open-or-build.ts')]);
      const config = configFrom(cmd.optsWithGlobals());
      // A delete embeds nothing: the index is opened with the model's identity, read from its files.
      const quarry = await openQuarry({ config, embedder: null, access: 'write' });
      try {
        if (!(await quarry.deleteArticle(id))) throw new QuarryError('not_found', `no article with id ${id}`, { field: 'id' });
        process.stdout.write(`deleted ${id}\n`);
      } finally {
        await quarry.close();
      }
    });
}
