import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fsyncDir, writeFileAtomic } from '../../util/atomic-file.ts';
import { processAlive } from './lock.ts';

/**
 * An index root holds generations (`gen-…/`, each a complete index: manifest, SQLite, HNSW checkpoint)
 * and a CURRENT file naming the one in use. A rebuild writes a new `gen-….building/`, renames it when
 * complete and then rewrites CURRENT atomically: a crash at any moment leaves CURRENT naming a whole,
 * usable generation.
 */
const CURRENT_FILE = 'CURRENT';
const BUILDING_SUFFIX = '.building';
const OWNER_FILE = 'owner.pid';

export function currentGenerationDir(root: string): string | null {
  const path = join(root, CURRENT_FILE);
  if (!existsSync(path)) return null;
  const name = readFileSync(path, 'utf8').trim();
  const dir = join(root, name);
  return name && existsSync(dir) ? dir : null;
}

export function startGeneration(root: string): string {
  mkdirSync(root, { recursive: true });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const dir = join(root, `gen-${stamp}-${process.pid}-${Math.random().toString(36).slice(2, 8)}${BUILDING_SUFFIX}`);
  mkdirSync(dir);
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/** Makes a finished generation the current one; returns its final directory. */
export function publishGeneration(root: string, buildingDir: string): string {
  const finalDir = buildingDir.slice(0, -BUILDING_SUFFIX.length);
  rmSync(join(buildingDir, OWNER_FILE), { force: true });
  renameSync(buildingDir, finalDir);
  fsyncDir(root);
  writeFileAtomic(join(root, CURRENT_FILE), `${finalDir.slice(root.length + 1)}\n`);
  return finalDir;
}

/**
 * Removes superseded generations and builds abandoned by a crashed process. A build owned by a live
 * process (a rebuild running elsewhere) is left alone.
 */
export function removeStaleGenerations(root: string): string[] {
  if (!existsSync(root)) return [];
  const current = currentGenerationDir(root);
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    if (!name.startsWith('gen-')) continue;
    const dir = join(root, name);
    if (dir === current) continue;
    if (name.endsWith(BUILDING_SUFFIX)) {
      const owner = Number(existsSync(join(dir, OWNER_FILE)) ? readFileSync(join(dir, OWNER_FILE), 'utf8') : 0);
      if (owner > 0 && owner !== process.pid && processAlive(owner)) continue;
      if (owner === process.pid) continue;
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

export function discardGeneration(buildingDir: string): void {
  rmSync(buildingDir, { recursive: true, force: true });
}
