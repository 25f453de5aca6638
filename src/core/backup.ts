import type { Config } from '../config/config.ts';
import type { Embedder } from '../embed/embedder.ts';
import { modelIdentity } from '../embed/model-identity.ts';
import type { Logger } from '../logger.ts';
import { openStore, restoreStore } from '../store/open-store.ts';
import type { RestoreReport, SnapshotReport } from '../store/store.ts';
import type { BuildProgress, BuildReport } from './build-index.ts';
import { identityOf, rebuildIndex } from './open-or-build.ts';
import { Quarry } from './quarry.ts';

/**
 * `quarry snapshot DIR`: a consistent copy of the configured index, taken beside a running server (no lock:
 * the index is opened read-only) or with none. No model is loaded: a backup embeds nothing, and an index made
 * with another model is backed up all the same.
 */
export async function snapshotIndex(deps: { config: Config; dir: string; logger?: Logger }): Promise<SnapshotReport> {
  const identity = identityOf(deps.config, await modelIdentity(deps.config));
  const store = await openStore(deps.config, { identity, access: 'read', logger: deps.logger });
  const quarry = new Quarry({ config: deps.config, embedder: null, store, logger: deps.logger });
  try {
    return await quarry.snapshot(deps.dir);
  } finally {
    await quarry.close();
  }
}

/**
 * `quarry restore DIR [--rebuild]`: installs a snapshot as the configured index (refused while a server or
 * rebuild holds it). A snapshot made with another model or chunker is refused unless `rebuild`; then it is
 * installed and re-embedded from its stored articles, as `npm start` does with such an index.
 */
export async function restoreIndex(deps: {
  config: Config;
  from: string;
  rebuild: boolean;
  loadEmbedder: () => Promise<Embedder>;
  onProgress?: (p: BuildProgress) => void;
}): Promise<{ restore: RestoreReport; rebuilt: BuildReport | null }> {
  const identity = identityOf(deps.config, await modelIdentity(deps.config));
  const restore = await restoreStore(deps.config, { from: deps.from, identity, allowIncompatible: deps.rebuild });
  if (!restore.incompatibility) return { restore, rebuilt: null };
  const embedder = await deps.loadEmbedder();
  try {
    const { report } = await rebuildIndex({ config: deps.config, embedder, from: { store: true }, onProgress: deps.onProgress });
    return { restore, rebuilt: report };
  } finally {
    await embedder.close();
  }
}
