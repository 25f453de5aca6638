import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { openOrBuild, openQuarry, rebuildIndex } from '../../src/core/open-or-build.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { silentLogger } from '../../src/logger.ts';
import { SearchRequestSchema, type SearchResponse } from '../../src/search/schema.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { ROOT, seedsWithDistractors } from '../helpers/service.ts';

/*
 * An index on disk: reopening, identity checks, following the seeds folder, failed builds. The subject is the
 * storage, not the model, so the test embedder stands in for it (the real model's manifest is checked in
 * tests/e2e/search-e2e.test.ts).
 */

let embedder: Embedder;
let seeds: string;
const dirs: string[] = [];

const configFor = (indexDir: string, extra: Record<string, unknown> = {}) =>
  loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, seedsDir: seeds, modelsDir: join(ROOT, 'models'), logLevel: 'silent', ...extra } });
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
const query = (q: string) => SearchRequestSchema.parse({ q, k: 5, mode: 'hybrid' });
/** What a user sees of a result list (timings differ run to run). */
const visible = (r: SearchResponse) =>
  r.results.map((x) => ({ id: x.article.id, score: x.score, evidence: x.evidence.map((e) => [e.paragraph, e.start, e.end]) }));

beforeAll(async () => {
  seeds = seedsWithDistractors();
  dirs.push(seeds);
  embedder = createHashedEmbedder();
});
afterAll(async () => {
  await embedder?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('an index on disk', () => {
  it('gives the same results after close and reopen', async () => {
    const config = configFor(tempDir('quarry-index-'));
    const first = await openOrBuild({ config, embedder, logger: silentLogger });
    expect(first.report.built).toBe(true);
    const before = await Promise.all(['China-Belarus industrial cooperation', 'giant panda cubs', 'battery factory'].map((q) => first.quarry.search(query(q))));
    await first.quarry.close();

    const reopened = await openQuarry({ config, embedder, access: 'write' });
    try {
      const after = await Promise.all(['China-Belarus industrial cooperation', 'giant panda cubs', 'battery factory'].map((q) => reopened.search(query(q))));
      expect(after.map(visible)).toEqual(before.map(visible));
      expect(await reopened.stats()).toMatchObject({ articles: 7, deleted: 0 });
    } finally {
      await reopened.close();
    }
  });

  it('refuses to open an index built with another model, saying to run rebuild-index', async () => {
    const config = configFor(tempDir('quarry-index-'));
    const { quarry } = await openOrBuild({ config, embedder, logger: silentLogger });
    await quarry.close();
    const otherModel: Embedder = { ...embedder, countTokens: embedder.countTokens, info: { ...embedder.info, id: 'Xenova/bge-small-en-v1.5', files: {} } };
    await expect(openQuarry({ config, embedder: otherModel, access: 'write' })).rejects.toMatchObject({
      code: 'index_incompatible',
      message: expect.stringMatching(/model test\/hashed-bag-of-words-384 \(now Xenova\/bge-small-en-v1\.5\).*rebuild-index/),
    });
  });

  it('upgrades an index built with q4 (the old default): npm start rebuilds it from the stored articles with q8', async () => {
    const indexDir = tempDir('quarry-index-');
    // The model's identity as the manifest records it, before and after q8 became the default (the vectors
    // are the test embedder's: the subject is the manifest check and the rebuild, not the model).
    const withDtype = (dtype: string, weights: Record<string, string>): Embedder => ({
      ...embedder,
      countTokens: embedder.countTokens,
      info: {
        ...embedder.info,
        id: 'onnx-community/all-MiniLM-L6-v2-ONNX',
        dtype,
        files: { 'config.json': 'fe5da868b77bdb104140822a5af0837cb6450ad6de8ff3dfcc8dd44ddd3e3ae7', ...weights },
      },
    });
    const q4 = withDtype('q4', {
      'onnx/model_q4.onnx': 'e4dcb918111189b7686147e309379832fce83d4ecbf17c395961749b5788c786',
      'onnx/model_q4.onnx_data': '56fb7a55115e900196115a74e399beb45c2f41ae00b99525d46fb52935c4ee2a',
    });
    const q8 = withDtype('q8', { 'onnx/model_quantized.onnx': 'afdb6f1a0e45b715d0bb9b11772f032c399babd23bfc31fed1c170afc848bdb1' });
    const old = await openOrBuild({ config: configFor(indexDir, { dtype: 'q4' }), embedder: q4, logger: silentLogger });
    await old.quarry.upsertArticles(
      [
        {
          id: 'api-only',
          title: 'Added through the API',
          date: null,
          source: null,
          url: null,
          paragraphs: ['A paragraph about lighthouse keepers on remote islands.'],
        },
      ],
      'api',
    );
    await old.quarry.close();

    await expect(openQuarry({ config: configFor(indexDir), embedder: q8, access: 'write' })).rejects.toMatchObject({
      code: 'index_incompatible',
      message: expect.stringMatching(/dtype q4 \(now q8\).*rebuild-index/),
    });
    const upgraded = await openOrBuild({ config: configFor(indexDir), embedder: q8, logger: silentLogger });
    try {
      expect(upgraded.report.rebuiltReason).toMatch(/dtype q4 \(now q8\)/);
      expect((await upgraded.quarry.getArticle('api-only'))?.title).toBe('Added through the API');
      expect((await upgraded.quarry.stats()).articles).toBe(8);
      const r = await upgraded.quarry.search(query('lighthouse keepers'));
      expect(r.results[0]!.article.id).toBe('api-only');
    } finally {
      await upgraded.quarry.close();
    }
    const current = readFileSync(join(indexDir, 'CURRENT'), 'utf8').trim();
    expect(JSON.parse(readFileSync(join(indexDir, current, 'manifest.json'), 'utf8')).model).toMatchObject({ dtype: 'q8', files: q8.info.files });
    // Opened again with q8: no second rebuild.
    const again = await openOrBuild({ config: configFor(indexDir), embedder: q8, logger: silentLogger });
    expect(again.report.rebuiltReason).toBeNull();
    await again.quarry.close();
  });

  it('refuses another chunker setting, and npm start rebuilds from the stored articles instead of failing', async () => {
    const indexDir = tempDir('quarry-index-');
    const built = await openOrBuild({ config: configFor(indexDir), embedder, logger: silentLogger });
    await built.quarry.upsertArticles(
      [
        {
          id: 'api-only',
          title: 'Added through the API',
          date: null,
          source: null,
          url: null,
          paragraphs: ['A paragraph about lighthouse keepers on remote islands.'],
        },
      ],
      'api',
    );
    await built.quarry.close();

    const changed = configFor(indexDir, { minWords: 3 });
    await expect(openQuarry({ config: changed, embedder, access: 'write' })).rejects.toMatchObject({
      code: 'index_incompatible',
      message: expect.stringMatching(/chunker settings.*rebuild-index/),
    });

    const reopened = await openOrBuild({ config: changed, embedder, logger: silentLogger });
    try {
      expect(reopened.report.rebuiltReason).toMatch(/chunker settings/);
      expect((await reopened.quarry.getArticle('api-only'))?.title).toBe('Added through the API');
      expect((await reopened.quarry.stats()).articles).toBe(8);
    } finally {
      await reopened.quarry.close();
    }
  });

  it('follows the seeds folder on start: new files are added, removed files deleted, API articles kept', async () => {
    const seedsDir = tempDir('quarry-seeds-');
    cpSync(seeds, seedsDir, { recursive: true });
    const indexDir = tempDir('quarry-index-');
    const config = loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir, seedsDir, modelsDir: join(ROOT, 'models') } });
    const first = await openOrBuild({ config, embedder, logger: silentLogger });
    await first.quarry.upsertArticles(
      [
        {
          id: 'from-api',
          title: 'API article',
          date: null,
          source: null,
          url: null,
          paragraphs: ['Lighthouse keepers on remote islands keep the lamps burning.'],
        },
      ],
      'api',
    );
    await first.quarry.close();

    writeFileSync(
      join(seedsDir, '001_new-seed.txt'),
      ' date 2024-06-01 Orchard growers expect a record apple harvest\n\nFarmers in the valley said warm spring weather and steady rain would bring a record apple harvest this autumn.\n',
    );
    rmSync(join(seedsDir, 'distractors.jsonl'));
    const second = await openOrBuild({ config, embedder, logger: silentLogger });
    try {
      expect(second.report.sync).toMatchObject({ added: 1, removed: 6, updated: 0, unchanged: 1 });
      const ids = (await second.quarry.listArticles()).map((a) => a.id).sort();
      expect(ids).toEqual(['1a76b68b4bef4123', 'from-api', 'new-seed']);
      const r = await second.quarry.search(query('apple harvest'));
      expect(r.results[0]!.article.id).toBe('new-seed');
    } finally {
      await second.quarry.close();
    }
  });

  it('does not delete an article while its seed file cannot be parsed', async () => {
    const seedsDir = tempDir('quarry-seeds-');
    cpSync(seeds, seedsDir, { recursive: true });
    const config = loadConfig({ env: {}, cwd: ROOT, overrides: { indexDir: tempDir('quarry-index-'), seedsDir, modelsDir: join(ROOT, 'models') } });
    const first = await openOrBuild({ config, embedder, logger: silentLogger });
    await first.quarry.close();

    const seedFile = readdirSync(seedsDir).find((f) => f.endsWith('.txt'))!;
    writeFileSync(join(seedsDir, seedFile), ''); // e.g. caught half-written by an editor or a copy
    const second = await openOrBuild({ config, embedder, logger: silentLogger });
    try {
      expect(second.report.parseErrors.map((e) => e.message)).toEqual([expect.stringMatching(/the file is empty/)]);
      expect(second.report.sync).toMatchObject({ removed: 0 });
      expect((await second.quarry.getArticle('1a76b68b4bef4123'))?.title).toBe('Chinese, Belarusian presidents pledge to enhance ties');
    } finally {
      await second.quarry.close();
    }
  });

  it('leaves the previous index usable when a build fails half way', async () => {
    const config = configFor(tempDir('quarry-index-'));
    const { quarry } = await openOrBuild({ config, embedder, logger: silentLogger });
    await quarry.close();
    const failing: Embedder = {
      ...embedder,
      countTokens: embedder.countTokens,
      embedPassages: async () => {
        throw new Error('model crashed');
      },
    };
    await expect(rebuildIndex({ config, embedder: failing, from: { store: true } })).rejects.toThrow('model crashed');
    expect(readdirSync(config.indexDir).filter((n) => n.endsWith('.building'))).toEqual([]);
    const reopened = await openQuarry({ config, embedder, access: 'write' });
    try {
      expect((await reopened.search(query('giant panda cubs'))).results[0]!.article.id).toBe('distractor-china-pandas');
    } finally {
      await reopened.close();
    }
    expect(existsSync(join(config.indexDir, 'LOCK'))).toBe(false);
  });
});
