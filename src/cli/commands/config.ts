import type { Command } from 'commander';
import { maskedConfig } from '../../config/config.ts';
import { configFrom } from '../context.ts';

export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('print the effective configuration (environment + flags), secrets masked')
    .action((_flags, cmd: Command) => {
      process.stdout.write(`${JSON.stringify(maskedConfig(configFrom(cmd.optsWithGlobals())), null, 2)}\n`);
    });
}
