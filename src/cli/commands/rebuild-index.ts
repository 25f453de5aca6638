import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

export function registerRebuildIndex(program: Command): void {
  program
    .command('rebuild-index')
    .description('rebuild the index from a folder of articles (.txt seed format, .json, .jsonl) and swap it in')
    .option('--seeds <dir>', 'folder of articles to index (default: seeds/, or QUARRY_SEEDS_DIR)')
    .option('--from-store', 're-embed the articles already stored in the index instead of reading a folder')
    .action(async (flags: CommonFlags & { fromStore?: boolean }, cmd: Command) => {
      const [{ configFrom, withEmbedder }, { rebuildIndex }, { buildProgressBar }] = await Promise.all([
        import('../context.ts'),
        import('../../core/open-or-build.ts'),
        import('../progress.ts'),
      ]);
      const config = configFrom({ ...cmd.optsWithGlobals(), ...flags });
      await withEmbedder(
        config,
        async (embedder) => {
          const started = performance.now();
          const bar = buildProgressBar();
          const { report, errors } = await rebuildIndex({
            config,
            embedder,
            from: flags.fromStore ? { store: true } : { folder: config.seedsDir },
            onProgress: bar.update,
          }).finally(bar.stop);
          for (const e of errors) process.stderr.write(`skipped ${e.message}\n`);
          const seconds = (performance.now() - started) / 1000;
          process.stdout.write(
            `indexed ${report.articles} articles, ${report.chunks} chunks in ${seconds.toFixed(1)} s (${report.chunksPerSecond.toFixed(1)} chunks/s embedding+storing; ${errors.length} file${errors.length === 1 ? '' : 's'} skipped) -> ${config.indexDir}\n`,
          );
          if (errors.length > 0) process.exitCode = 1;
        },
        { build: true },
      );
    });
}
