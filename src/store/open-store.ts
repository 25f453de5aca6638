import type { Config } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import type { IndexIdentity } from './manifest.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import type { IndexStore } from './store.ts';

export interface OpenStoreOptions {
  identity: IndexIdentity;
  /** 'read': search and look-ups only, no lock (CLI search, check); 'write': this process may change the index. */
  access: 'read' | 'write';
  logger?: Logger;
}

/** The configured backend's store (the embedded SQLite one: `config.indexDir`). */
export function openStore(config: Config, opts: OpenStoreOptions): Promise<IndexStore> {
  return SqliteStore.open({
    root: config.indexDir,
    identity: opts.identity,
    access: opts.access,
    hnsw: { M: config.hnswM, efConstruction: config.hnswEfConstruction, efSearch: config.efSearch },
    checkpointEvery: config.checkpointEvery,
    compactDeletedRatio: config.compactDeletedRatio,
    logger: opts.logger,
  });
}
