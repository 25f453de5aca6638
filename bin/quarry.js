#!/usr/bin/env node
// The `quarry` command (npx quarry, npm start, npm run search …): runs the compiled CLI in dist/. When src/ is
// newer than the build (a checkout being edited), it compiles first, so what runs is always the source.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');

/** The newest modification time under `dir` (about 100 files: a few milliseconds). */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const src = join(root, 'src');
const fresh = () => existsSync(stamp) && newest(src) <= statSync(stamp).mtimeMs;
if (existsSync(src) && !fresh()) {
  process.stderr.write('[quarry] src/ changed since the last build: compiling it into dist/ …\n');
  const { build } = await import(pathToFileURL(join(root, 'scripts', 'build.mjs')).href);
  build({ unlessFresh: fresh });
}
await import(pathToFileURL(join(root, 'dist', 'cli', 'main.js')).href);
