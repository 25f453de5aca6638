import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AutoTokenizer, env, type FeatureExtractionPipeline, pipeline } from '@huggingface/transformers';
import { QuarryError } from '../errors.ts';
import { type Embedder, type EmbedProgress, lengthSortedBatches } from './embedder.ts';
import { missingWeights } from './model-files.ts';
import { modelIdentity } from './model-identity.ts';

export interface TransformersEmbedderOptions {
  model: string;
  dtype: string;
  pooling: 'mean' | 'cls';
  queryPrefix: string;
  passagePrefix: string;
  maxTokens: number;
  modelsDir: string;
  allowRemoteModels: boolean;
  threads: number;
  batchSize: number;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Sort passages by token count before batching (default); false sorts by characters (benchmarks compare both). */
  sortByTokens?: boolean;
}

/** Token counts without a model session (the chunker's measure); see {@link createTransformersEmbedder}. */
export interface TokenCounter {
  countTokens(text: string): number;
  close(): Promise<void>;
}

function configureTransformers(opts: TransformersEmbedderOptions): string {
  // Transformers.js keeps these settings in its module-level `env`; they are set once here, from config.
  env.localModelPath = opts.modelsDir.endsWith('/') ? opts.modelsDir : `${opts.modelsDir}/`;
  env.cacheDir = opts.modelsDir;
  env.allowLocalModels = true;
  env.allowRemoteModels = opts.allowRemoteModels;
  const modelDir = join(opts.modelsDir, opts.model);
  if (!opts.allowRemoteModels && !existsSync(join(modelDir, 'config.json'))) {
    throw new QuarryError(
      'model_unavailable',
      `model ${opts.model} is not in ${opts.modelsDir}: run \`npm ci\` (it installs the default model), or set QUARRY_ALLOW_REMOTE_MODELS=1 to let Quarry download it from the Hugging Face hub`,
      { field: 'model' },
    );
  }
  const missing = opts.allowRemoteModels ? null : missingWeights(modelDir, opts.model, opts.dtype);
  if (missing) {
    throw new QuarryError(
      'model_unavailable',
      `model ${opts.model} has no ${opts.dtype} weights in ${opts.modelsDir}: missing ${missing.files.join(', ')}; ${missing.remedy}`,
      { field: 'dtype' },
    );
  }
  return modelDir;
}

/**
 * The model's tokenizer alone (16 MiB against ~100 MiB for a session): for a main thread whose queries and
 * passages are all embedded by workers, and which only counts tokens for the chunker.
 */
export async function createTokenCounter(opts: TransformersEmbedderOptions): Promise<TokenCounter> {
  configureTransformers(opts);
  try {
    const tokenizer = await AutoTokenizer.from_pretrained(opts.model);
    return { countTokens: (text) => tokenizer.encode(opts.passagePrefix + text).length, close: async () => {} };
  } catch (e) {
    throw new QuarryError('model_unavailable', `cannot load the tokenizer of ${opts.model}: ${(e as Error).message}`, { field: 'model', cause: e });
  }
}

/**
 * Embeds with a Transformers.js feature-extraction pipeline on ONNX Runtime (CPU). One pipeline (one ONNX
 * session) per embedder, created once; sessions are never created per request.
 */
export async function createTransformersEmbedder(opts: TransformersEmbedderOptions): Promise<Embedder> {
  configureTransformers(opts);
  let extractor: FeatureExtractionPipeline;
  try {
    extractor = (await pipeline('feature-extraction', opts.model, {
      dtype: opts.dtype as 'q4',
      // Sequential execution, one intra-op pool sized to the cores: more threads oversubscribe 2 cores
      // (0.78-0.83x in bench/embed). Idle workers block instead of spinning: spinning burns the CPU the
      // event loop and other processes need, and was never faster here (1.00x and 1.31x, docs/benchmarks.md).
      session_options: {
        intraOpNumThreads: opts.threads,
        graphOptimizationLevel: opts.graphOptimization ?? 'all',
        interOpNumThreads: 1,
        executionMode: 'sequential',
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      },
    })) as FeatureExtractionPipeline;
  } catch (e) {
    throw new QuarryError('model_unavailable', `cannot load model ${opts.model} (${opts.dtype}): ${(e as Error).message}`, { field: 'model', cause: e });
  }

  const run = async (texts: string[]): Promise<Float32Array[]> => {
    const out = await extractor(texts, { pooling: opts.pooling, normalize: true });
    const [rows, dims] = out.dims as [number, number];
    const data = out.data as Float32Array;
    const vectors: Float32Array[] = [];
    for (let r = 0; r < rows; r++) vectors.push(data.slice(r * dims, (r + 1) * dims));
    return vectors;
  };

  // The loaded model must be the one its files describe: the index records that identity.
  const info = await modelIdentity(opts);
  const probed = (await run([`${opts.queryPrefix}dimension probe`]))[0]!.length;
  if (probed !== info.dims)
    throw new QuarryError('model_unavailable', `model ${opts.model} returns ${probed}-dimensional vectors, but its config.json says ${info.dims}`, {
      field: 'model',
    });

  return {
    info,
    async embedPassages(texts: string[], onProgress?: (p: EmbedProgress) => void): Promise<Float32Array[]> {
      const result = new Array<Float32Array>(texts.length);
      let done = 0;
      // Batches by token count, not characters: padding is computed like real tokens. Counting costs about
      // 1% of the embedding (a second tokenisation); it saved far more in padding (docs/benchmarks.md).
      const tokens = opts.sortByTokens === false ? undefined : texts.map((t) => extractor.tokenizer.encode(opts.passagePrefix + t).length);
      for (const batch of lengthSortedBatches(texts, opts.batchSize, tokens)) {
        const vectors = await run(batch.map((i) => opts.passagePrefix + texts[i]!));
        batch.forEach((textIndex, j) => (result[textIndex] = vectors[j]!));
        done += batch.length;
        onProgress?.({ done, total: texts.length });
      }
      return result;
    },
    async embedQuery(text: string): Promise<Float32Array> {
      return (await run([opts.queryPrefix + text]))[0]!;
    },
    countTokens(text: string): number {
      return extractor.tokenizer.encode(opts.passagePrefix + text).length;
    },
    async close(): Promise<void> {
      await extractor.dispose();
    },
  };
}
