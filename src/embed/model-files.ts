import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.ts';

/** Transformers.js file-name suffix of each dtype (onnx/model<suffix>.onnx). */
const DTYPE_SUFFIX: Record<string, string> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
};

/** The model and dtypes `npm run install-model` can install (scripts/install-model.mjs, QUARRY_INSTALL_DTYPES). */
const INSTALLABLE = { model: 'onnx-community/all-MiniLM-L6-v2-ONNX', dtypes: ['q8', 'q4'] };

/**
 * The ONNX files a dtype loads that are missing from `modelDir` (its external-data file too when the model's
 * config.json says it has one), and how to get them; null when none is missing.
 */
export function missingWeights(modelDir: string, model: string, dtype: string): { files: string[]; remedy: string } | null {
  const weights = `onnx/model${DTYPE_SUFFIX[dtype] ?? ''}.onnx`;
  let external = false;
  try {
    const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as {
      'transformers.js_config'?: { use_external_data_format?: Record<string, unknown> };
    };
    external = Boolean(config['transformers.js_config']?.use_external_data_format?.[weights.slice('onnx/'.length)]);
  } catch {
    // No readable config.json: the caller reports that; only the weights file itself is checked here.
  }
  const files = [weights, ...(external ? [`${weights}_data`] : [])].filter((f) => !existsSync(join(modelDir, f)));
  if (files.length === 0) return null;
  const remedy =
    model === INSTALLABLE.model && INSTALLABLE.dtypes.includes(dtype)
      ? `run \`QUARRY_INSTALL_DTYPES=${dtype} npm run install-model\` to add them (installed files are kept)`
      : `the installer provides ${INSTALLABLE.model} ${INSTALLABLE.dtypes.join(' and ')} only: put the files there, or set QUARRY_ALLOW_REMOTE_MODELS=1 to let Quarry download them from the Hugging Face hub`;
  return { files, remedy };
}

/** Remembered checksums, by file: hashing 25-90 MB of weights took most of a one-shot command's second. */
const CACHE_FILE = '.quarry-checksums.json';
type ChecksumCache = Record<string, { size: number; mtimeMs: number; sha256: string }>;

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (d) => hash.update(d))
      .on('end', () => res(hash.digest('hex')));
  });
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function readCache(modelDir: string): ChecksumCache {
  try {
    return JSON.parse(readFileSync(join(modelDir, CACHE_FILE), 'utf8')) as ChecksumCache;
  } catch {
    return {};
  }
}

/**
 * SHA-256 of the files a model of this dtype actually loads: the configuration and tokenizer files, and only
 * this dtype's ONNX weights (other dtypes may sit in the same folder without changing the model). A file whose
 * size and modification time are those of its last hashing is not read again (as git's index does).
 */
export async function modelFileChecksums(modelDir: string, dtype: string): Promise<Record<string, string>> {
  const weights = `model${DTYPE_SUFFIX[dtype] ?? ''}.onnx`;
  const files = (await listFiles(modelDir))
    .map((p) => relative(modelDir, p).split('\\').join('/'))
    .filter((rel) => !rel.startsWith('.') && (rel.startsWith('onnx/') ? rel === `onnx/${weights}` || rel.startsWith(`onnx/${weights}_data`) : true))
    .sort();
  const cache = readCache(modelDir);
  let changed = false;
  const out: Record<string, string> = {};
  for (const rel of files) {
    const { size, mtimeMs } = statSync(join(modelDir, rel));
    const known = cache[rel];
    if (known && known.size === size && known.mtimeMs === mtimeMs) out[rel] = known.sha256;
    else {
      out[rel] = await sha256File(join(modelDir, rel));
      cache[rel] = { size, mtimeMs, sha256: out[rel] };
      changed = true;
    }
  }
  if (changed) {
    try {
      writeFileAtomic(join(modelDir, CACHE_FILE), `${JSON.stringify(cache, null, 2)}\n`);
    } catch {
      // A read-only models folder: hash again next time.
    }
  }
  return out;
}
