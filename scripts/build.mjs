#!/usr/bin/env node
// Compiles src/ into dist/ (tsc with tsconfig.build.json) and copies the files tsc does not emit (the web
// pages). Runs at install (npm's postinstall) and again from bin/quarry.js whenever src/ is newer than the build.
// dist/.build-stamp is written last: a build that stopped half way is never taken for a finished one.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const STAMP = join(root, 'dist', '.build-stamp');

const LOCK = join(root, 'dist', '.build-lock');
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

/** One build at a time: two commands started together on a stale checkout must not write dist/ at once. */
function withBuildLock(fn) {
  mkdirSync(join(root, 'dist'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const owner = Number(existsSync(join(LOCK, 'pid')) ? readFileSync(join(LOCK, 'pid'), 'utf8') : 0);
      // A lock left by a killed build (or one too young to have written its pid yet) is taken over after a minute.
      if ((owner > 0 && !alive(owner)) || Date.now() - statSync(LOCK).mtimeMs > 60_000) rmSync(LOCK, { recursive: true, force: true });
      else sleep(100);
    }
  }
  writeFileSync(join(LOCK, 'pid'), String(process.pid));
  try {
    return fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Compiles unless another process just did (its stamp is newer than every source file). */
export function build({ quiet = false, unlessFresh = null } = {}) {
  withBuildLock(() => {
    if (unlessFresh?.()) return;
    compile(quiet);
  });
}

function compile(quiet) {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  rmSync(STAMP, { force: true });
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`compiling src/ failed (tsc exit ${r.status}):\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  mkdirSync(join(root, 'dist', 'web'), { recursive: true });
  cpSync(join(root, 'src', 'web', 'public'), join(root, 'dist', 'web', 'public'), { recursive: true });
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    build();
    console.log('[quarry] compiled src/ into dist/');
  } catch (e) {
    console.error(`[quarry] ERROR: ${e.message}`);
    process.exit(1);
  }
}
