import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check the index is whole (read-only): SQLite integrity, FTS5 rows, HNSW points against the chunk table; exit 1 if not')
    .option('--json', 'print the report as JSON')
    .action(async (flags: CommonFlags & { json?: boolean }, cmd: Command) => {
      const [{ configFrom }, { openQuarry }] = await Promise.all([import('../context.ts'), import('../../core/open-or-build.ts')]);
      const config = configFrom(cmd.optsWithGlobals());
      {
        // Read-only: the graph is brought up to date with SQLite in memory (checkpoint + replay), exactly as a
        // server start would, and nothing is written back. No model is loaded: the check compares stored data.
        const quarry = await openQuarry({ config, embedder: null, access: 'read' });
        try {
          const r = await quarry.integrity();
          if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
          else {
            process.stdout.write(
              `${r.ok ? 'ok' : 'DAMAGED'}: ${r.articles} articles, ${r.chunks} chunks, ${r.ftsRows} FTS rows, ` +
                `HNSW ${r.hnsw.live} live of ${r.hnsw.points} points; SQLite integrity_check: ${r.sqlite}\n`,
            );
            for (const p of r.problems) process.stdout.write(`  - ${p}\n`);
          }
          if (!r.ok) process.exitCode = 1;
        } finally {
          await quarry.close();
        }
      }
    });
}
