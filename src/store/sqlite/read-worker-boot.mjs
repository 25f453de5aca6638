// Worker entry from the TypeScript sources: registers tsx's loader in this thread (a worker does not inherit the
// main thread's loader hooks under every runner), then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./read-worker-thread.ts');
