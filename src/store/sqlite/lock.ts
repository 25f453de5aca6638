import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { QuarryError } from '../../errors.ts';

const LOCK_FILE = 'LOCK';

/** Whether a process exists (EPERM: it does, but belongs to another user). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * One writer per index root: a server and a CLI rebuild writing the same index would lose each other's
 * writes (the HNSW checkpoint and generation swap are per process). A lock left by a dead process is taken
 * over. Returns the release function. `whatToDo` ends the message when another process holds it.
 */
export function acquireWriterLock(
  root: string,
  whatToDo = 'Stop it first, or make the change through that running service (its API adds, deletes and rebuilds)',
): () => void {
  mkdirSync(root, { recursive: true });
  const path = join(root, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        if (existsSync(path) && readFileSync(path, 'utf8').trim() === String(process.pid)) rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSync(path, 'utf8').trim());
      if (owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new QuarryError('conflict', `the index ${root} is in use by process ${owner} (a running server or rebuild). ${whatToDo}`, { field: 'indexDir' });
      }
      rmSync(path, { force: true });
    }
  }
  throw new QuarryError('conflict', `cannot lock the index ${root}`, { field: 'indexDir' });
}
