/**
 * How to start the worker thread whose module is `name` (no extension) beside `moduleUrl`: compiled (dist/), its .js
 * file; from the TypeScript sources, tsx-worker-boot.mjs with the .ts file's URL as the thread's last argv entry.
 * Spread the result into the Worker: `new Worker(entry.file, { argv: entry.argv, ... })`.
 */
export function workerEntry(moduleUrl: string, name: string): { file: URL; argv: string[] } {
  if (!moduleUrl.endsWith('.ts')) return { file: new URL(`./${name}.js`, moduleUrl), argv: [] };
  return { file: new URL('./tsx-worker-boot.mjs', import.meta.url), argv: [new URL(`./${name}.ts`, moduleUrl).href] };
}
