import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AutoTokenizer, env, type FeatureExtractionPipeline, type PreTrainedTokenizer, pipeline, Tensor } from '@huggingface/transformers';
import { QuarryError } from '../errors.ts';
import { type Embedder, type EmbedProgress, lengthSortedBatches } from './embedder.ts';
import { missingWeights } from './model-files.ts';
import { type ModelSettings, modelIdentity } from './model-identity.ts';
import { flattenBatch, poolAndNormalise } from './token-batch.ts';

/** The model (ModelSettings: which one, and how its vectors are made) and how this process runs it. */
export interface TransformersEmbedderOptions extends ModelSettings {
  allowRemoteModels: boolean;
  threads: number;
  batchSize: number;
  /** ONNX Runtime graph optimisation level (default 'all'). */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Sort passages by token count before batching (default); false sorts by characters (benchmarks compare both). */
  sortByTokens?: boolean;
}

/** The model's tokenizer without a model session (the chunker's measure, and passages' token ids); see {@link createTransformersEmbedder}. */
export interface TokenCounter {
  countTokens(text: string): number;
  encodePassage(text: string): number[];
  close(): Promise<void>;
}

/** A batch of token ids embedded, with where its time went (the rebuild profile). */
export interface TokenBatchResult {
  /** rows × dims, row-major, L2-normalised. */
  vectors: Float32Array;
  /** session.run (the model), and pooling + normalising in JS, in ms. */
  modelMs: number;
  poolMs: number;
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
 * Token ids of `prefix + text` exactly as the feature-extraction pipeline feeds them to the model: special tokens
 * added, cut at the model's maximum (the pipeline truncates by dropping the tail, [SEP] included). Tokenising once
 * and passing these ids on replaced four tokenisations of every passage (chunker, two sorts, the pipeline).
 */
const encoder =
  (tokenizer: PreTrainedTokenizer) =>
  (prefix: string, text: string): number[] => {
    const ids = tokenizer.encode(prefix + text);
    return ids.length > tokenizer.model_max_length ? ids.slice(0, tokenizer.model_max_length) : ids;
  };

/**
 * The model's tokenizer alone (16 MiB against ~100 MiB for a session): for a main thread whose queries and
 * passages are all embedded by workers, and which only tokenises (for the chunker and the workers).
 */
export async function createTokenCounter(opts: TransformersEmbedderOptions): Promise<TokenCounter> {
  configureTransformers(opts);
  try {
    const tokenizer = await AutoTokenizer.from_pretrained(opts.model);
    const encode = encoder(tokenizer);
    return {
      countTokens: (text) => encode(opts.passagePrefix, text).length,
      encodePassage: (text) => encode(opts.passagePrefix, text),
      close: async () => {},
    };
  } catch (e) {
    throw new QuarryError('model_unavailable', `cannot load the tokenizer of ${opts.model}: ${(e as Error).message}`, { field: 'model', cause: e });
  }
}

/** The embedder of one ONNX session, with the token-id entry point the workers use. */
export type SessionEmbedder = Embedder & {
  encodePassage(text: string): number[];
  /** Embeds a batch of token id sequences (`ids` concatenated, `lengths` each one's count). */
  embedTokenBatch(ids: Int32Array, lengths: Int32Array): Promise<TokenBatchResult>;
  encodeQuery(text: string): number[];
};

/**
 * Embeds with a Transformers.js model on ONNX Runtime (CPU): Transformers.js loads the session and tokenises;
 * Quarry pads the token ids, calls the model and pools. One session per embedder, created once; sessions are
 * never created per request.
 */
export async function createTransformersEmbedder(opts: TransformersEmbedderOptions): Promise<SessionEmbedder> {
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
  const encode = encoder(extractor.tokenizer);
  const padId = BigInt(extractor.tokenizer.pad_token_id ?? 0);

  const embedTokenBatch = async (ids: Int32Array, lengths: Int32Array): Promise<TokenBatchResult> => {
    const { inputIds, attentionMask, rows, seq } = flattenBatch(ids, lengths, padId);
    const started = performance.now();
    // The library's model call: it adds the inputs this architecture wants beyond these (token_type_ids).
    const out = (await extractor.model({
      input_ids: new Tensor('int64', inputIds, [rows, seq]),
      attention_mask: new Tensor('int64', attentionMask, [rows, seq]),
    })) as Record<string, Tensor>;
    const ran = performance.now();
    const hidden = out.last_hidden_state ?? out.token_embeddings ?? Object.values(out)[0]!;
    const vectors = poolAndNormalise(hidden.data as Float32Array, lengths, seq, hidden.dims[2]!, opts.pooling);
    return { vectors, modelMs: ran - started, poolMs: performance.now() - ran };
  };
  const embedOne = async (ids: number[]): Promise<Float32Array> => (await embedTokenBatch(Int32Array.from(ids), Int32Array.of(ids.length))).vectors;

  // The loaded model must be the one its files describe: the index records that identity.
  const info = await modelIdentity(opts);
  const probed = (await embedOne(encode(opts.queryPrefix, 'dimension probe'))).length;
  if (probed !== info.dims)
    throw new QuarryError('model_unavailable', `model ${opts.model} returns ${probed}-dimensional vectors, but its config.json says ${info.dims}`, {
      field: 'model',
    });

  return {
    info,
    embedTokenBatch,
    encodePassage: (text) => encode(opts.passagePrefix, text),
    encodeQuery: (text) => encode(opts.queryPrefix, text),
    async embedPassages(texts: string[], onProgress?: (p: EmbedProgress) => void, tokenIds?: ReadonlyArray<readonly number[]>): Promise<Float32Array[]> {
      const result = new Array<Float32Array>(texts.length);
      const ids = tokenIds ?? texts.map((t) => encode(opts.passagePrefix, t));
      let done = 0;
      // Batches by token count, not characters: padding is computed like real tokens (docs/benchmarks.md, padding).
      const lengths = opts.sortByTokens === false ? undefined : ids.map((x) => x.length);
      for (const batch of lengthSortedBatches(texts, opts.batchSize, lengths)) {
        const { flat, lengths: batchLengths } = concatIds(batch.map((i) => ids[i]!));
        const { vectors } = await embedTokenBatch(flat, batchLengths);
        batch.forEach((textIndex, j) => (result[textIndex] = vectors.subarray(j * info.dims, (j + 1) * info.dims)));
        done += batch.length;
        onProgress?.({ done, total: texts.length });
      }
      return result;
    },
    embedQuery: (text) => embedOne(encode(opts.queryPrefix, text)),
    countTokens: (text) => encode(opts.passagePrefix, text).length,
    async close(): Promise<void> {
      await extractor.dispose();
    },
  };
}

/** Token id sequences as one Int32Array and their lengths (what a worker message carries). */
export function concatIds(seqs: ReadonlyArray<readonly number[]>): { flat: Int32Array; lengths: Int32Array } {
  const lengths = Int32Array.from(seqs, (s) => s.length);
  const flat = new Int32Array(lengths.reduce((n, l) => n + l, 0));
  let off = 0;
  for (const s of seqs) {
    flat.set(s, off);
    off += s.length;
  }
  return { flat, lengths };
}
