// Worker entry from the TypeScript sources (tests, benches run with tsx): registers tsx's loader in this thread (a
// worker does not inherit the main thread's loader hooks under every runner), then imports the TypeScript worker
// whose URL workerEntry (worker-entry.ts) appended to this thread's argv.
import { register } from 'tsx/esm/api';

register();
await import(process.argv.at(-1));
