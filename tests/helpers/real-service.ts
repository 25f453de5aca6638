import type { Config } from '../../src/config/config.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { createEmbedder } from '../../src/runtime.ts';
import { type Service, startService, testConfig } from './service.ts';

export { FIXTURES_DIR, ROOT, SEEDS_DIR, seedsWithDistractors, testConfig } from './service.ts';

/** The service with the real model (tests/e2e). */
export type RealService = Service;

/**
 * The real thing: the real model, a real SQLite/HNSW index built from `seedsDir`, and the Express app on
 * an ephemeral port. Pass an embedder to share one model between services in a test file.
 */
export async function startRealService(opts: { seedsDir: string; config?: Config; embedder?: Embedder }): Promise<RealService> {
  const config = opts.config ?? testConfig({ seedsDir: opts.seedsDir });
  const embedder = opts.embedder ?? (await createEmbedder(config));
  return startService({ seedsDir: opts.seedsDir, config, embedder, ownsEmbedder: !opts.embedder });
}
