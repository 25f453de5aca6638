import type { Command } from 'commander';

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the effective configuration (environment + flags), secrets masked')
    .action(async (_flags, cmd: Command) => {
      const [{ maskedConfig }, { configFrom }] = await Promise.all([import('../../config/config.ts'), import('../context.ts')]);
      process.stdout.write(`${JSON.stringify(maskedConfig(configFrom(cmd.optsWithGlobals())), null, 2)}\n`);
    });
}
