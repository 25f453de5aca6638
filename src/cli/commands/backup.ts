import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export function registerBackupCommands(program: Command): void {
  program
    .command('snapshot')
    .description('write a consistent copy of the index into a new folder, while a server keeps serving and writing it (no model loaded)')
    .argument('<dir>', 'the snapshot folder to create (must not exist, or be empty)')
    .option('--json', 'print the report as JSON')
    .action(async (dir: string, flags: CommonFlags & { json?: boolean }, cmd: Command) => {
      const [{ configFrom }, { snapshotIndex }] = await Promise.all([import('../context.ts'), import('../../core/backup.ts')]);
      const config = configFrom(cmd.optsWithGlobals());
      const r = await snapshotIndex({ config, dir });
      if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else
        process.stdout.write(
          `snapshot of ${config.indexDir} in ${r.dir}: ${r.articles} articles, ${r.chunks} chunks, ${mib(r.bytes)} (${r.files.length} files), ` +
            `consistent at change ${r.seq}; ${r.seconds} s, writes held ${r.writesHeldMs} ms\n`,
        );
    });

  program
    .command('restore')
    .description('install a snapshot as the index (refused while a server or rebuild uses the index); the index it replaces is removed')
    .argument('<dir>', 'a folder written by `quarry snapshot` or POST /admin/snapshot')
    .option('--rebuild', 'accept a snapshot made with another model or chunker, and re-embed its articles with the current ones')
    .action(async (dir: string, flags: CommonFlags & { rebuild?: boolean }, cmd: Command) => {
      const [{ configFrom }, { restoreIndex }, { createEmbedder }, { buildProgressBar }] = await Promise.all([
        import('../context.ts'),
        import('../../core/backup.ts'),
        import('../../runtime.ts'),
        import('../progress.ts'),
      ]);
      const config = configFrom(cmd.optsWithGlobals());
      const bar = buildProgressBar();
      const { restore, rebuilt } = await restoreIndex({
        config,
        from: dir,
        rebuild: flags.rebuild === true,
        // Only for a rebuild: one-shot, on this thread (no worker sessions to start).
        loadEmbedder: () => createEmbedder({ ...config, queryWorker: false, passageWorker: false }),
        onProgress: bar.update,
      }).finally(bar.stop);
      process.stdout.write(
        `restored ${restore.articles} articles, ${restore.chunks} chunks (snapshot of ${restore.createdAt}, change ${restore.seq}) into ${restore.indexDir} in ${restore.seconds} s\n`,
      );
      if (rebuilt)
        process.stdout.write(`re-embedded with the current model: ${rebuilt.articles} articles, ${rebuilt.chunks} chunks in ${rebuilt.seconds.toFixed(1)} s\n`);
    });
}
