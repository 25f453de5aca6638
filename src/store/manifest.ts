import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { ModelInfo } from '../embed/embedder.ts';
import { QuarryError } from '../errors.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 1;

export const HnswParamsSchema = z.object({ space: z.literal('cosine'), M: z.number().int(), efConstruction: z.number().int(), efSearch: z.number().int() });
export type HnswParams = z.infer<typeof HnswParamsSchema>;

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  model: z.object({
    id: z.string(),
    dtype: z.string(),
    pooling: z.enum(['mean', 'cls']),
    normalized: z.literal(true),
    dims: z.number().int(),
    maxTokens: z.number().int(),
    queryPrefix: z.string(),
    passagePrefix: z.string(),
    files: z.record(z.string(), z.string()),
  }),
  chunker: z.object({ version: z.string(), minWords: z.number().int(), maxTokens: z.number().int() }),
  hnsw: HnswParamsSchema,
  /** Counts when the index was built; live counts come from the database. */
  counts: z.object({ articles: z.number().int(), chunks: z.number().int() }),
  built: z.string(),
  buildSeconds: z.number(),
  /** Where the articles came from at build time (a seeds folder, or "store" for a rebuild from SQLite). */
  source: z.object({ kind: z.enum(['folder', 'store', 'empty']), path: z.string().optional(), fingerprint: z.string().optional() }),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** What an index must have been built with to be searched and written by this process. */
export interface IndexIdentity {
  model: ModelInfo;
  chunker: Manifest['chunker'];
}

/** The manifest of a generation being started (either backend): what it is built with, counts filled at publish. */
export function newManifest(identity: IndexIdentity, hnsw: Omit<HnswParams, 'space'>, source: Manifest['source']): Manifest {
  return {
    format: MANIFEST_FORMAT,
    model: identity.model,
    chunker: identity.chunker,
    hnsw: { space: 'cosine', ...hnsw },
    counts: { articles: 0, chunks: 0 },
    built: new Date().toISOString(),
    buildSeconds: 0,
    source,
  };
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, MANIFEST_FILE);
  if (!existsSync(path)) throw new QuarryError('index_missing', `no index manifest at ${path}: run \`npm run rebuild-index\``);
  const parsed = ManifestSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    throw new QuarryError('index_incompatible', `the index manifest ${path} is from another Quarry version or damaged: run \`npm run rebuild-index\``);
  }
  return parsed.data;
}

export function writeManifest(dir: string, manifest: Manifest): void {
  writeFileAtomic(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Why an index cannot be searched with this model and chunker, or null when it can. */
export function incompatibility(manifest: Manifest, model: ModelInfo, chunker: Manifest['chunker']): string | null {
  const m = manifest.model;
  const differences: string[] = [];
  if (m.id !== model.id) differences.push(`model ${m.id} (now ${model.id})`);
  if (m.dtype !== model.dtype) differences.push(`dtype ${m.dtype} (now ${model.dtype})`);
  if (m.pooling !== model.pooling) differences.push(`pooling ${m.pooling} (now ${model.pooling})`);
  if (m.dims !== model.dims) differences.push(`${m.dims} dimensions (now ${model.dims})`);
  if (m.passagePrefix !== model.passagePrefix)
    differences.push(`passage prefix ${JSON.stringify(m.passagePrefix)} (now ${JSON.stringify(model.passagePrefix)})`);
  const changedFiles = Object.keys({ ...m.files, ...model.files }).filter((f) => m.files[f] !== model.files[f]);
  if (m.id === model.id && changedFiles.length > 0) differences.push(`model files changed (${changedFiles.join(', ')})`);
  if (manifest.chunker.version !== chunker.version) differences.push(`chunker ${manifest.chunker.version} (now ${chunker.version})`);
  if (manifest.chunker.minWords !== chunker.minWords || manifest.chunker.maxTokens !== chunker.maxTokens) {
    differences.push(
      `chunker settings minWords=${manifest.chunker.minWords}, maxTokens=${manifest.chunker.maxTokens} (now ${chunker.minWords}, ${chunker.maxTokens})`,
    );
  }
  if (differences.length === 0) return null;
  return `the index was built with ${differences.join('; ')}. Rebuild it with the current settings: \`npm run rebuild-index\`, or a rebuild through the running service`;
}
