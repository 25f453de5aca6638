import type { Command } from 'commander';

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the effective configuration (environment + flags), secrets masked; with a database, its server and pgvector versions')
    .action(async (_flags, cmd: Command) => {
      const [{ maskedConfig }, { configFrom }] = await Promise.all([import('../../config/config.ts'), import('../context.ts')]);
      const config = configFrom(cmd.optsWithGlobals());
      const out: Record<string, unknown> = maskedConfig(config);
      if (config.databaseUrl) {
        const { databaseInfo } = await import('../../store/postgres/pg-info.ts');
        out.database = await databaseInfo(config.databaseUrl);
      }
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
