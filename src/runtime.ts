import pino from 'pino';
import type { Config } from './config/config.ts';
import type { Embedder } from './embed/embedder.ts';
import { withQueryCache } from './embed/query-cache.ts';
import { createTokenCounter, createTransformersEmbedder, type TransformersEmbedderOptions } from './embed/transformers-embedder.ts';
import { withWorkers } from './embed/worker-embedder.ts';
import type { Logger } from './logger.ts';
import type { LivePressure } from './util/live-pressure.ts';
import type { StageProfile } from './util/stage-profile.ts';

/** The model session's settings from the configuration (the main thread's session and every worker's). */
export function embedderOptions(config: Config): TransformersEmbedderOptions {
  return {
    model: config.model,
    dtype: config.dtype,
    pooling: config.pooling,
    queryPrefix: config.queryPrefix,
    passagePrefix: config.passagePrefix,
    maxTokens: config.maxTokens,
    modelsDir: config.modelsDir,
    allowRemoteModels: config.allowRemoteModels,
    threads: config.threads,
    batchSize: config.embedBatchSize,
    graphOptimization: config.onnxGraphOptimization,
  };
}

/**
 * The real model, as configured. One per process. `passagesOnly`: an embedder for a build, which embeds no query
 * (with the query worker off, no model session is loaded on this thread). `profile` collects where passage
 * embedding time goes (benchmarks). `pressure`: a live rebuild's batches wait while live requests are held up (serve).
 */
export async function createEmbedder(
  config: Config,
  opts: { profile?: StageProfile; passagesOnly?: boolean; pressure?: LivePressure } = {},
): Promise<Embedder> {
  const options = embedderOptions(config);
  // Queries and passages both in workers: this thread only tokenises, so it loads no model session. A build
  // (`rebuild-index`) embeds no query: its query worker is off and it needs no session here either.
  const tokenizerOnly = config.passageWorker && (config.queryWorker || opts.passagesOnly === true);
  const main = tokenizerOnly ? await createTokenCounter(options) : await createTransformersEmbedder(options);
  const model = await withWorkers(main, options, {
    passages: config.passageWorker,
    queries: config.queryWorker,
    queryThreads: config.queryThreads,
    passageSessions: config.passageSessions,
    passageThreads: config.passageThreads,
    backgroundNice: config.rebuildNice,
    backgroundPace: opts.pressure ? () => opts.pressure!.calm() : undefined,
    profile: opts.profile,
  });
  return config.queryCacheSize > 0 ? withQueryCache(model, config.queryCacheSize) : model;
}

/** JSON logs (pino); human-readable when stdout is a terminal, one line per event (a request log line
 * carries its request id). */
export function createLogger(config: Config, opts: { destination?: NodeJS.WritableStream } = {}): Logger & pino.Logger {
  const pretty = process.stdout.isTTY && !opts.destination;
  return pino(
    { level: config.logLevel, base: undefined, redact: ['req.headers.authorization'] },
    pretty
      ? pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } })
      : (opts.destination ?? process.stdout),
  );
}
