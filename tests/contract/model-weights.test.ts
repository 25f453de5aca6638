import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/config.ts';
import { missingWeights } from '../../src/embed/model-files.ts';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const MODEL = 'onnx-community/all-MiniLM-L6-v2-ONNX';
const scratch = mkdtempSync(join(tmpdir(), 'quarry-weights-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A models folder holding MODEL's config.json (q4 with external data, as the real one says) and `onnx`. */
function modelsWith(name: string, onnx: string[]): string {
  const dir = join(scratch, name, MODEL);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ model_type: 'bert', 'transformers.js_config': { use_external_data_format: { 'model_q4.onnx': 1 } } }),
  );
  for (const f of onnx) writeFileSync(join(dir, 'onnx', f), 'x');
  return join(scratch, name);
}

async function run(cmd: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_')));
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, cmd, { cwd: ROOT, env: { ...base, ...env }, timeout: CHILD_HANG_GUARD_MS });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

describe('a dtype whose weights are not installed', () => {
  it('names every missing file, the external-data file too, and the command that installs it', () => {
    const models = modelsWith('q8-only', ['model_quantized.onnx']);
    expect(missingWeights(join(models, MODEL), MODEL, 'q8')).toBeNull();
    const q4 = missingWeights(join(models, MODEL), MODEL, 'q4');
    expect(q4?.files).toEqual(['onnx/model_q4.onnx', 'onnx/model_q4.onnx_data']);
    expect(q4?.remedy).toContain('`QUARRY_INSTALL_DTYPES=q4 npm run install-model`');
    // A half-installed q4 (weights without their data file) is still reported.
    expect(missingWeights(join(modelsWith('q4-half', ['model_q4.onnx']), MODEL), MODEL, 'q4')?.files).toEqual(['onnx/model_q4.onnx_data']);
    // A dtype the installer cannot provide says so instead of naming a command that would not help.
    const fp16 = missingWeights(join(models, MODEL), MODEL, 'fp16');
    expect(fp16?.files).toEqual(['onnx/model_fp16.onnx']);
    expect(fp16?.remedy).toContain('QUARRY_ALLOW_REMOTE_MODELS=1');
    // So does another model: the installer only ever installs MiniLM.
    const other = missingWeights(join(models, MODEL), 'Xenova/bge-small-en-v1.5', 'q4');
    expect(other?.remedy).not.toContain('npm run install-model');
    expect(other?.remedy).toContain('QUARRY_ALLOW_REMOTE_MODELS=1');
  });

  it('stops the CLI before it loads anything, with that message', async () => {
    const models = modelsWith('cli', ['model_quantized.onnx']);
    const r = await run(['bin/quarry.js', 'search', 'anything'], {
      QUARRY_MODELS_DIR: models,
      QUARRY_DTYPE: 'q4',
      QUARRY_INDEX_DIR: join(scratch, 'index'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `quarry: model ${MODEL} has no q4 weights in ${models}: missing onnx/model_q4.onnx, onnx/model_q4.onnx_data; run \`QUARRY_INSTALL_DTYPES=q4 npm run install-model\``,
    );
  });
});

describe('npm ci', () => {
  it('installed the weights of the default dtype', () => {
    const dtype = ConfigSchema.shape.dtype.parse(undefined);
    expect(missingWeights(join(ROOT, 'models', MODEL), MODEL, dtype)).toBeNull();
  });

  it('refuses an install-time dtype it cannot provide, naming the variable and the ones it can', async () => {
    const r = await run(['scripts/install-model.mjs'], { QUARRY_INSTALL_DTYPES: 'q8,fp16' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('QUARRY_INSTALL_DTYPES=q8,fp16: unknown dtype fp16; the installer provides q8, q4');
  });
});
