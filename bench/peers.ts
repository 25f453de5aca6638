/**
 * `npm run bench -- peers [--queries 500] [--ef 16,32,64,100,128] [--n 100000] [--skip vectra]`
 *
 * bbc-news paragraphs with the same cached embeddings (bench/cache) in Quarry's HNSW (hnswlib-node via
 * VectorIndex), Orama, Vectra and LanceDB (@lancedb/lancedb 0.31.0, flat scan: no ANN index at this
 * size). Index time, query latency p50/p99 (k=10) and recall@10 against exact search on the same vectors.
 * Queries are held-out embedded bbc-news titles (titles are not indexed as paragraphs).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { create, insertMultiple, search } from '@orama/orama';
import { LocalIndex } from 'vectra';
import { ConfigSchema } from '../src/config/config.ts';

/** Quarry's default efSearch (config). */
const DEFAULT_EF = ConfigSchema.shape.efSearch.parse(undefined);

import { VectorIndex } from '../src/store/sqlite/vector-index.ts';
import { flag, numberList, ROOT } from './lib/args.ts';
import { bruteForce, recallAtK, type VectorSet, vectorSet } from './lib/dataset.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { percentile, round } from './lib/stats.ts';
import { CACHE_DIR, loadCache } from './lib/vector-cache.ts';

const K = 10;

interface EngineResult {
  engine: string;
  setting: string;
  indexS: number;
  recall: number;
  p50ms: number;
  p99ms: number;
}

async function measure(
  queries: Float32Array[],
  truth: number[][],
  search: (q: Float32Array) => Promise<number[]> | number[],
): Promise<Omit<EngineResult, 'engine' | 'setting' | 'indexS'>> {
  for (const q of queries.slice(0, 20)) await search(q);
  const times: number[] = [];
  let recall = 0;
  for (let i = 0; i < queries.length; i++) {
    const t = performance.now();
    const found = await search(queries[i]!);
    times.push(performance.now() - t);
    recall += recallAtK(found, truth[i]!, K);
  }
  return { recall: round(recall / queries.length, 4), p50ms: round(percentile(times, 50), 4), p99ms: round(percentile(times, 99), 4) };
}

export async function run(args: string[]): Promise<void> {
  const cache = loadCache();
  const bbc = cache.header.segments[0];
  if (bbc?.source !== 'bbc-news') throw new Error('the vector cache does not start with bbc-news');
  const dims = cache.header.dims;
  // Default: the bbc-news paragraphs. --n larger than that takes the ann bench's set (real, then synthetic).
  const n = Number(flag(args, 'n', String(bbc.count)));
  const set: VectorSet = n <= bbc.count ? { n, dims, data: cache.vectors.subarray(0, n * dims), real: n, synthetic: 0, noiseSigma: 0 } : vectorSet(cache, n);
  const row = (i: number) => set.data.subarray(i * dims, (i + 1) * dims);
  const nq = Number(flag(args, 'queries', '500'));
  const { scifact, bbcTitles } = cache.header.queries;
  const queries: Float32Array[] = [];
  for (let i = 0; i < Math.min(nq, bbcTitles); i++) queries.push(cache.queries.slice((scifact + i) * dims, (scifact + i + 1) * dims));
  const truth = queries.map((q) => bruteForce(set, q, K));
  const results: EngineResult[] = [];
  const skip = (flag(args, 'skip', '') ?? '').split(',');
  const log = (r: EngineResult) => (results.push(r), console.log(JSON.stringify(r)));

  {
    let t = performance.now();
    const bf = await measure(queries, truth, (q) => bruteForce(set, q, K));
    log({ engine: 'exact (JS Float32Array)', setting: '-', indexS: 0, ...bf });
    t = performance.now();
    const h = VectorIndex.create(dims, { space: 'cosine', M: 16, efConstruction: 200, efSearch: 100 }, n);
    for (let i = 0; i < n; i++) h.add(i, row(i));
    const indexS = round((performance.now() - t) / 1000, 2);
    for (const ef of numberList(args, 'ef', [16, 32, 64, 100, 128])) {
      log({
        engine: 'Quarry (hnswlib-node)',
        setting: `M=16 efC=200 ef=${ef}${ef === DEFAULT_EF ? ' (default)' : ''}`,
        indexS,
        ...(await measure(queries, truth, (q) => h.search(q, K, n, ef).map((x) => x.label))),
      });
    }
  }

  {
    const t = performance.now();
    const db = create({ schema: { i: 'number', embedding: `vector[${dims}]` } as const });
    const docs = Array.from({ length: n }, (_, i) => ({ id: String(i), i, embedding: Array.from(row(i)) }));
    await insertMultiple(db, docs, 1000);
    const indexS = round((performance.now() - t) / 1000, 2);
    log({
      engine: 'Orama',
      setting: 'mode vector, similarity 0',
      indexS,
      ...(await measure(queries, truth, async (q) => {
        const r = await search(db, { mode: 'vector', vector: { value: Array.from(q), property: 'embedding' }, similarity: 0, limit: K, includeVectors: false });
        return r.hits.map((h) => Number(h.id));
      })),
    });
  }

  // Vectra keeps its index as one JSON file: past ~50k vectors of 384 floats the JSON text exceeds V8's
  // maximum string length, so a failure there is recorded, not fatal to the other engines' figures.
  if (skip.includes('vectra')) results.push({ engine: 'Vectra', setting: 'skipped (--skip vectra)', indexS: NaN, recall: NaN, p50ms: NaN, p99ms: NaN });
  else
    try {
      const dir = join(CACHE_DIR, 'peers-vectra');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const t = performance.now();
      const index = new LocalIndex(dir);
      await index.createIndex();
      await index.beginUpdate();
      for (let i = 0; i < n; i++) await index.insertItem({ vector: Array.from(row(i)), metadata: { i } });
      await index.endUpdate();
      const indexS = round((performance.now() - t) / 1000, 2);
      log({
        engine: 'Vectra',
        setting: 'LocalIndex (in memory after load)',
        indexS,
        ...(await measure(queries, truth, async (q) => (await index.queryItems(Array.from(q), '', K)).map((r) => Number(r.item.metadata.i)))),
      });
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      console.log(`Vectra failed: ${(e as Error).message}`);
      results.push({ engine: 'Vectra', setting: `failed: ${(e as Error).message.slice(0, 80)}`, indexS: NaN, recall: NaN, p50ms: NaN, p99ms: NaN });
      rmSync(join(CACHE_DIR, 'peers-vectra'), { recursive: true, force: true });
    }

  {
    const dir = join(CACHE_DIR, 'peers-lancedb');
    rmSync(dir, { recursive: true, force: true });
    const t = performance.now();
    const conn = await lancedb.connect(dir);
    const table = await conn.createTable(
      'bbc',
      Array.from({ length: n }, (_, i) => ({ i, vector: Array.from(row(i)) })),
    );
    const indexS = round((performance.now() - t) / 1000, 2);
    log({
      engine: 'LanceDB',
      setting: 'flat scan, cosine',
      indexS,
      ...(await measure(queries, truth, async (q) => {
        const rows = await table.vectorSearch(Array.from(q)).distanceType('cosine').limit(K).select(['i']).toArray();
        return rows.map((r: { i: number }) => Number(r.i));
      })),
    });
    conn.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const result = newResult('peers', args);
  Object.assign(result, { n, queries: queries.length, k: K, results });
  const path = writeResult(result);
  const rows: Row[] = results.map((r) => [r.engine, r.setting, r.indexS, r.recall, r.p50ms, r.p99ms]);
  updateDoc(
    n === bbc.count ? 'peers' : `peers-${n}`,
    result,
    [
      `${n <= bbc.count ? `${n} bbc-news paragraphs` : `${n} vectors (${set.real} real: bbc-news then Reuters; ${set.synthetic} synthetic perturbed copies, as in the ann bench)`}, the same vectors in every engine; ${queries.length} held-out queries (embedded bbc-news titles), k=${K}; recall@10 against exact search on the same vectors. All in one Node process, one engine after another.`,
      '',
      markdownTable(['engine', 'setting', 'index s', 'recall@10', 'p50 ms', 'p99 ms'], rows),
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
