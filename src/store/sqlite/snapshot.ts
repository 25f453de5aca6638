import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { QuarryError } from '../../errors.ts';
import { fsyncDir, fsyncFile, writeFileAtomic } from '../../util/atomic-file.ts';
import { type IndexIdentity, incompatibility, MANIFEST_FILE, readManifest } from '../manifest.ts';
import type { RestoreReport, SnapshotReport } from '../store.ts';
import { DATABASE_FILE } from './database.ts';
import { discardGeneration, publishGeneration, removeStaleGenerations, startGeneration } from './index-dir.ts';
import { acquireWriterLock } from './lock.ts';
import { vacuumInto } from './vacuum-into.ts';
import { CHECKPOINT_FILE, type Checkpoint, CheckpointSchema } from './vector-index.ts';

/** The snapshot's own record, written last: a folder without it is not a snapshot. */
export const SNAPSHOT_FILE = 'snapshot.json';

const FileEntrySchema = z.object({ name: z.string().regex(/^[A-Za-z0-9._-]+$/), bytes: z.number().int().min(0), sha256: z.string().regex(/^[0-9a-f]{64}$/) });
const SnapshotFileSchema = z.object({
  format: z.literal(1),
  backend: z.literal('sqlite'),
  createdAt: z.string(),
  seq: z.number().int(),
  articles: z.number().int(),
  chunks: z.number().int(),
  /** The change the copied HNSW checkpoint includes; null when none was copied (the restore rebuilds the graph). */
  checkpointSeq: z.number().int().nullable(),
  files: z.array(FileEntrySchema).min(1),
  source: z.object({ indexDir: z.string(), generation: z.string() }),
});
type SnapshotFile = z.infer<typeof SnapshotFileSchema>;

/** An HNSW checkpoint held open: later checkpoints may delete its file, the open descriptor still reads it. */
export interface CapturedCheckpoint {
  fd: number;
  checkpoint: Checkpoint;
}

/** Opens the checkpoint the generation's checkpoint.json names; null when there is none (or it is unreadable). */
export function openCheckpoint(genDir: string): CapturedCheckpoint | null {
  // Another process may replace the checkpoint between reading its name and opening it: read the name again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const path = join(genDir, CHECKPOINT_FILE);
    if (!existsSync(path)) return null;
    const parsed = CheckpointSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) return null;
    try {
      return { fd: openSync(join(genDir, parsed.data.file), 'r'), checkpoint: parsed.data };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return null;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

function isEmptyFolderOrAbsent(path: string): boolean {
  if (!existsSync(path)) return true;
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

export interface SnapshotInput {
  root: string;
  /** The generation captured (its folder). */
  genDir: string;
  /** Its HNSW checkpoint, opened at the capture (null: none). */
  checkpoint: CapturedCheckpoint | null;
  dest: string;
  writesHeldMs: number;
  startedAt: number;
}

/**
 * Writes the snapshot: the database as of one read transaction (VACUUM INTO, on a worker thread), the HNSW
 * checkpoint captured before it when the copy's change log still holds every change after that checkpoint
 * (else none: the restored index then rebuilds its graph from SQLite's vectors, slower but whole), the
 * manifest, and snapshot.json with each file's size and SHA-256. It is written beside `dest` and renamed into
 * place, so `dest` holds a whole snapshot or nothing.
 */
export async function writeSnapshot(input: SnapshotInput): Promise<SnapshotReport> {
  const target = resolve(input.dest);
  if (!isEmptyFolderOrAbsent(target))
    throw new QuarryError('conflict', `${target} already exists and is not an empty folder: a snapshot goes into a new one`, { field: 'dir' });
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.partial-${process.pid}-${randomBytes(4).toString('hex')}`;
  mkdirSync(tmp);
  try {
    const db = await vacuumInto(join(input.genDir, DATABASE_FILE), join(tmp, DATABASE_FILE));
    // The copy replays the changes after the checkpoint from its own log, so that log must start at or before them.
    const usable = (cp: Checkpoint) => cp.seq <= db.lastSeq && (cp.seq === db.lastSeq || (db.firstLoggedSeq !== null && db.firstLoggedSeq <= cp.seq + 1));
    let cp: Checkpoint | null = null;
    if (input.checkpoint && usable(input.checkpoint.checkpoint)) {
      cp = input.checkpoint.checkpoint;
      await pipeline(createReadStream('', { fd: input.checkpoint.fd, autoClose: false, start: 0 }), createWriteStream(join(tmp, cp.file)));
      fsyncFile(join(tmp, cp.file));
      writeFileAtomic(join(tmp, CHECKPOINT_FILE), `${JSON.stringify(cp)}\n`);
    }
    await copyFile(join(input.genDir, MANIFEST_FILE), join(tmp, MANIFEST_FILE));
    fsyncFile(join(tmp, MANIFEST_FILE));

    const names = [DATABASE_FILE, MANIFEST_FILE, ...(cp ? [cp.file, CHECKPOINT_FILE] : [])];
    const files = await Promise.all(names.map(async (name) => ({ name, bytes: statSync(join(tmp, name)).size, sha256: await sha256Of(join(tmp, name)) })));
    const record: SnapshotFile = {
      format: 1,
      backend: 'sqlite',
      createdAt: new Date().toISOString(),
      seq: db.lastSeq,
      articles: db.articles,
      chunks: db.chunks,
      checkpointSeq: cp?.seq ?? null,
      files,
      source: { indexDir: input.root, generation: basename(input.genDir) },
    };
    writeFileAtomic(join(tmp, SNAPSHOT_FILE), `${JSON.stringify(record, null, 2)}\n`);
    fsyncDir(tmp);
    // rename(2) replaces an empty folder, so a folder made for the snapshot beforehand is fine.
    renameSync(tmp, target);
    fsyncDir(dirname(target));
    return {
      dir: target,
      createdAt: record.createdAt,
      articles: record.articles,
      chunks: record.chunks,
      seq: record.seq,
      files,
      bytes: files.reduce((n, f) => n + f.bytes, 0),
      seconds: Math.round((performance.now() - input.startedAt) / 10) / 100,
      writesHeldMs: Math.round(input.writesHeldMs * 1000) / 1000,
      details: {
        generation: basename(input.genDir),
        databaseCopyMs: db.ms,
        checkpointSeq: cp?.seq ?? null,
        // What the restored index replays from its change log on open (all of it when there is no checkpoint).
        changesToReplay: cp ? db.lastSeq - cp.seq : null,
        graphOnRestore: cp ? 'checkpoint + replay' : 'rebuilt from the stored vectors',
      },
    };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Reads and validates a snapshot's record; errors name the folder and what is wrong. */
export function readSnapshot(from: string): SnapshotFile {
  const path = join(from, SNAPSHOT_FILE);
  if (!existsSync(path)) {
    throw new QuarryError('invalid_request', `${from} is not a Quarry snapshot (no ${SNAPSHOT_FILE}; an interrupted snapshot leaves none)`, { field: 'dir' });
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new QuarryError('invalid_request', `${path} is not valid JSON: the snapshot is damaged`, { field: 'dir' });
  }
  const parsed = SnapshotFileSchema.safeParse(json);
  if (!parsed.success) throw new QuarryError('invalid_request', `${path} is from another Quarry version or damaged`, { field: 'dir' });
  return parsed.data;
}

/**
 * Installs a snapshot as the current index of `root`: refuses while another process holds the index (its
 * lock), and refuses a snapshot made with another model or chunker unless `allowIncompatible` (the caller then
 * rebuilds it from its stored articles). The files are copied into a new generation, checked against the
 * snapshot's sizes and checksums and SQLite's quick_check, and only then swapped in: a damaged snapshot or a
 * crash during the restore leaves the previous index as it was.
 */
export async function restoreSnapshot(opts: { root: string; from: string; identity: IndexIdentity; allowIncompatible: boolean }): Promise<RestoreReport> {
  const started = performance.now();
  const from = resolve(opts.from);
  const record = readSnapshot(from);
  const manifest = readManifest(from);
  const why = incompatibility(manifest, opts.identity.model, opts.identity.chunker);
  if (why && !opts.allowIncompatible) {
    throw new QuarryError(
      'index_incompatible',
      `the snapshot ${from} was made with other settings (${why.replace(/^the index was built with /, '').replace(/\. Rebuild it.*$/, '')}). Restore it with --rebuild to re-embed its articles with the current model and chunker`,
      { field: 'rebuild' },
    );
  }
  // A running service cannot take a restored generation in (no API swaps one in), so the only way is to stop it.
  const release = acquireWriterLock(opts.root, 'Stop it first, then restore: a snapshot is installed only into an index no process has open');
  try {
    const dir = startGeneration(opts.root);
    try {
      for (const f of record.files) {
        const src = join(from, f.name);
        if (!existsSync(src)) throw new QuarryError('invalid_request', `the snapshot ${from} is missing ${f.name}`, { field: 'dir' });
        const dst = join(dir, f.name);
        await copyFile(src, dst);
        if (statSync(dst).size !== f.bytes || (await sha256Of(dst)) !== f.sha256) {
          throw new QuarryError('invalid_request', `the snapshot ${from} is damaged: ${f.name} differs from its checksum`, { field: 'dir' });
        }
        fsyncFile(dst);
      }
      const db = new Database(join(dir, DATABASE_FILE), { readonly: true, fileMustExist: true });
      try {
        const check = String(db.pragma('quick_check', { simple: true }));
        if (check !== 'ok') throw new QuarryError('invalid_request', `the snapshot ${from} is damaged: SQLite quick_check: ${check}`, { field: 'dir' });
      } finally {
        db.close();
      }
      fsyncDir(dir);
      publishGeneration(opts.root, dir);
    } catch (e) {
      discardGeneration(dir);
      throw e;
    }
    removeStaleGenerations(opts.root);
  } finally {
    release();
  }
  return {
    indexDir: opts.root,
    articles: record.articles,
    chunks: record.chunks,
    seq: record.seq,
    createdAt: record.createdAt,
    incompatibility: why,
    seconds: Math.round((performance.now() - started) / 10) / 100,
  };
}

/** Closes a captured checkpoint's descriptor. */
export function releaseCheckpoint(c: CapturedCheckpoint | null): void {
  if (c) closeSync(c.fd);
}
