import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Config, loadConfig } from '../../src/config/config.ts';
import { openOrBuild } from '../../src/core/open-or-build.ts';
import type { Quarry } from '../../src/core/quarry.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { silentLogger } from '../../src/logger.ts';
import { createApp } from '../../src/server/app.ts';
import { listen, type RunningServer } from '../../src/server/listen.ts';
import { createHashedEmbedder } from './hashed-embedder.ts';

/*
 * The service under test, with whichever embedder the tier uses: real SQLite/HNSW index, real Express app on
 * an ephemeral port. This module never imports the real model (tests/helpers/real-service.ts does), so the
 * fast tiers can use it.
 */

export const ROOT = resolve(import.meta.dirname, '../..');
export const SEEDS_DIR = join(ROOT, 'seeds');
export const FIXTURES_DIR = join(ROOT, 'tests/fixtures');

/** A temporary folder holding the seed article and the distractor articles written for the tests. */
export function seedsWithDistractors(): string {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-seeds-'));
  for (const f of readdirSync(SEEDS_DIR)) cpSync(join(SEEDS_DIR, f), join(dir, f));
  cpSync(join(FIXTURES_DIR, 'distractors.jsonl'), join(dir, 'distractors.jsonl'));
  return dir;
}

export function testConfig(overrides: Record<string, unknown> = {}): Config {
  const indexDir = mkdtempSync(join(tmpdir(), 'quarry-index-'));
  return loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, modelsDir: join(ROOT, 'models'), port: 0, logLevel: 'silent', ...overrides } });
}

export interface Service {
  config: Config;
  embedder: Embedder;
  quarry: Quarry;
  server: RunningServer;
  url: string;
  /** Stops the server and closes the index (the index folder stays, for reopen tests). */
  stop(): Promise<void>;
  /** stop() and delete the temporary folders. */
  dispose(): Promise<void>;
}

/**
 * An index built from `seedsDir` with `embedder` (opened or built as `npm start` does) and the app serving it.
 * `ownsEmbedder`: stop() closes the embedder too.
 */
export async function startService(opts: { seedsDir: string; config?: Config; embedder: Embedder; ownsEmbedder: boolean }): Promise<Service> {
  const config = opts.config ?? testConfig({ seedsDir: opts.seedsDir });
  const { embedder } = opts;
  const { quarry } = await openOrBuild({ config, embedder, logger: silentLogger });
  const server = await listen(createApp({ quarry, config }), 0, '127.0.0.1');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.close();
    await quarry.close();
    if (opts.ownsEmbedder) await embedder.close();
  };
  return {
    config,
    embedder,
    quarry,
    server,
    url: server.url,
    stop,
    async dispose() {
      await stop();
      rmSync(config.indexDir, { recursive: true, force: true });
    },
  };
}

/** The service on the test embedder (tests/helpers/hashed-embedder.ts): for tests whose subject is not the model. */
export function startHashedService(opts: { seedsDir: string; config?: Config; embedder?: Embedder }): Promise<Service> {
  return startService({ ...opts, embedder: opts.embedder ?? createHashedEmbedder(), ownsEmbedder: !opts.embedder });
}
