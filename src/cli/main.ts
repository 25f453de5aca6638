import { Command, CommanderError } from 'commander';
import { isQuarryError } from '../errors.ts';
import { registerBackupCommands } from './commands/backup.ts';
import { registerCheck } from './commands/check.ts';
import { registerConfig } from './commands/config.ts';
import { registerEval } from './commands/eval.ts';
import { registerRebuildIndex } from './commands/rebuild-index.ts';
import { registerSearch } from './commands/search.ts';
import { registerServe } from './commands/serve.ts';
import { registerWriteCommands } from './commands/write.ts';

const program = new Command('quarry')
  .description('Quarry: semantic search over articles')
  .option('--index <dir>', 'index folder (default index/, or QUARRY_INDEX_DIR)')
  .option('--models <dir>', 'models folder (default models/, or QUARRY_MODELS_DIR)')
  .option('--model <id>', 'embedding model id (default onnx-community/all-MiniLM-L6-v2-ONNX)')
  .option('--dtype <dtype>', 'model weights dtype (default q8)')
  .option('--ef-search <n>', 'HNSW efSearch (default 160)')
  .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent')
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

registerServe(program);
registerRebuildIndex(program);
registerSearch(program);
registerWriteCommands(program);
registerConfig(program);
registerCheck(program);
registerBackupCommands(program);
registerEval(program);

/** The one place CLI errors become output: a message naming the file or flag, and an exit code. */
program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
    return;
  }
  if (isQuarryError(e)) {
    process.stderr.write(`quarry: ${e.message}\n`);
    process.exitCode = e.code === 'invalid_request' || e.code === 'parse_error' ? 2 : 1;
    return;
  }
  process.stderr.write(`quarry: unexpected error: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
