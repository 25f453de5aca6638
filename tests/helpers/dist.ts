import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './service.ts';

/** The newest modification time under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/**
 * The compiled code (dist/), built first if src/ changed since — the check bin/quarry.js makes — so a child
 * process can run it with plain node instead of transpiling the sources through tsx at every start.
 */
export async function freshDist(): Promise<string> {
  const stamp = join(ROOT, 'dist', '.build-stamp');
  const fresh = () => existsSync(stamp) && newest(join(ROOT, 'src')) <= statSync(stamp).mtimeMs;
  if (!fresh()) {
    const script = pathToFileURL(join(ROOT, 'scripts', 'build.mjs')).href;
    const { build } = (await import(script)) as { build: (opts: { quiet: boolean; unlessFresh: () => boolean }) => void };
    build({ quiet: true, unlessFresh: fresh });
  }
  return join(ROOT, 'dist');
}
