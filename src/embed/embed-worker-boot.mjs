// Worker entry: registers tsx's TypeScript loader in this thread (a worker does not inherit the main
// thread's loader hooks under every runner), then runs the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./embed-worker.ts');
