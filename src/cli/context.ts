import { type Config, loadConfig, unknownEnvSettings } from '../config/config.ts';
import type { Embedder } from '../embed/embedder.ts';
import { createEmbedder } from '../runtime.ts';

/** Flags shared by every command, mapped onto configuration keys (flags win over the environment). */
export interface CommonFlags {
  index?: string;
  seeds?: string;
  models?: string;
  model?: string;
  dtype?: string;
  efSearch?: string;
  logLevel?: string;
}

export function configFrom(flags: CommonFlags, extra: Record<string, unknown> = {}): Config {
  // A warning, not a refusal: the service still starts, but nobody believes a setting took effect that did not.
  for (const u of unknownEnvSettings(process.env)) {
    process.stderr.write(
      `warning: ${u.name} is not a Quarry setting and is ignored${u.suggestion ? ` (did you mean ${u.suggestion}?)` : ''}; \`quarry config\` lists the settings\n`,
    );
  }
  return loadConfig({
    env: process.env,
    overrides: {
      indexDir: flags.index,
      seedsDir: flags.seeds,
      modelsDir: flags.models,
      model: flags.model,
      dtype: flags.dtype,
      efSearch: flags.efSearch,
      logLevel: flags.logLevel,
      ...extra,
    },
  });
}

/**
 * Runs `fn` with the model loaded on this thread. A one-shot command embeds a query or a few passages: the worker
 * threads a server uses (each loads its own model session) would only add their start-up time. `build`: a long
 * job that embeds passages only (`rebuild-index`), given the passage sessions in workers (unless
 * QUARRY_PASSAGE_WORKER=0): this thread chunks and stores while they embed (docs/benchmarks.md, rebuild).
 */
export async function withEmbedder<T>(config: Config, fn: (e: Embedder) => Promise<T>, opts: { build?: boolean } = {}): Promise<T> {
  const embedder = opts.build
    ? await createEmbedder({ ...config, queryWorker: false }, { passagesOnly: true })
    : await createEmbedder({ ...config, queryWorker: false, passageWorker: false });
  try {
    return await fn(embedder);
  } finally {
    await embedder.close();
  }
}
