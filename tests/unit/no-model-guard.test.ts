import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingWeights } from '../../src/embed/model-files.ts';
import { createEmbedder } from '../../src/runtime.ts';
import { testConfig } from '../helpers/service.ts';

/** The fast tiers' guard (tests/helpers/no-model.ts) is in force: loading the real model fails, loudly. */
describe('the fast tiers', () => {
  // A models folder that looks complete to Quarry's own checks, so the attempt reaches Transformers.js.
  const modelsDir = mkdtempSync(join(tmpdir(), 'quarry-no-model-'));
  afterAll(() => rmSync(modelsDir, { recursive: true, force: true }));

  it('refuse to load the model', async () => {
    const config = testConfig({ modelsDir });
    mkdirSync(join(modelsDir, config.model), { recursive: true });
    writeFileSync(join(modelsDir, config.model, 'config.json'), JSON.stringify({ hidden_size: 384 }));
    // ...and the configured dtype's weights file (empty: Transformers.js is never reached for real).
    for (const f of missingWeights(join(modelsDir, config.model), config.model, config.dtype)?.files ?? []) {
      mkdirSync(dirname(join(modelsDir, config.model, f)), { recursive: true });
      writeFileSync(join(modelsDir, config.model, f), '');
    }
    for (const workers of [true, false]) {
      await expect(createEmbedder({ ...config, queryWorker: workers, passageWorker: workers })).rejects.toThrow(/fast test tiers must not load the model/);
    }
    rmSync(config.indexDir, { recursive: true, force: true });
  });
});
