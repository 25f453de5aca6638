import type { Config } from '../config/config.ts';
import { QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { IndexIdentity } from './manifest.ts';
import { PgStore } from './postgres/pg-store.ts';
import { restoreSnapshot } from './sqlite/snapshot.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { IndexStore, RestoreReport } from './store.ts';

export interface OpenStoreOptions {
  identity: IndexIdentity;
  /** 'read': search and look-ups only, no lock (CLI search, check); 'write': this process may change the index. */
  access: 'read' | 'write';
  logger?: Logger;
  /** SQLite: searches read in a worker thread (config.searchReadWorker); for a server, not a one-off CLI command. */
  readWorker?: boolean;
}

/**
 * The configured backend's store: PostgreSQL + pgvector when `databaseUrl` is set (QUARRY_DATABASE_URL), else
 * the embedded SQLite one in `config.indexDir`.
 */
export function openStore(config: Config, opts: OpenStoreOptions): Promise<IndexStore> {
  if (config.databaseUrl) {
    return PgStore.open({
      url: config.databaseUrl,
      readUrl: config.databaseReadUrl,
      identity: opts.identity,
      access: opts.access,
      hnsw: { M: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.efSearch },
      logger: opts.logger,
    });
  }
  return SqliteStore.open({
    root: config.indexDir,
    identity: opts.identity,
    access: opts.access,
    hnsw: { M: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.efSearch },
    checkpointEvery: config.checkpointEvery,
    compactDeletedRatio: config.compactDeletedRatio,
    logger: opts.logger,
    readWorker: opts.readWorker,
  });
}

/**
 * Installs a snapshot (written by `IndexStore.snapshot`) as the configured index; see restoreSnapshot. With
 * `allowIncompatible`, a snapshot made with another model or chunker is installed and reported as such (the
 * caller rebuilds it); without, it is refused before anything is touched.
 */
export async function restoreStore(config: Config, opts: { from: string; identity: IndexIdentity; allowIncompatible: boolean }): Promise<RestoreReport> {
  if (config.databaseUrl) {
    throw new QuarryError(
      'conflict',
      'QUARRY_DATABASE_URL is set: this index lives in PostgreSQL, restored with the database tools (pg_restore, or a base backup plus WAL), not `quarry restore`; see docs/deployment.md',
      { field: 'databaseUrl' },
    );
  }
  return restoreSnapshot({ root: config.indexDir, ...opts });
}
