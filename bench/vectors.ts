/**
 * `npm run bench -- vectors [--budget-s 720] [--batch 32] [--resume]`: embeds the paragraphs of bbc-news,
 * Reuters-21578 (seeded shuffle) and SciFact once with Quarry's own embedder, and the held-out queries,
 * into bench/cache/. Stops when the time budget is spent (the header records how many of each);
 * `--resume` continues a cache cut short.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { loadConfig } from '../src/config/config.ts';
import { createEmbedder } from '../src/runtime.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { bbcTitles, paragraphs, scifactQueries, seededShuffle } from './lib/corpus.ts';
import { appendVectors, CACHE_DIR, type CacheHeader, type CacheSegment, headerPath, queriesPath, vectorsPath, writeHeader } from './lib/vector-cache.ts';

export async function run(args: string[]): Promise<void> {
  const budgetS = Number(flag(args, 'budget-s', '720'));
  const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { embedBatchSize: flag(args, 'batch', undefined), logLevel: 'silent' } });
  const embedder = await createEmbedder(config);
  mkdirSync(CACHE_DIR, { recursive: true });
  const model = config.model;
  const resume = has(args, 'resume') && existsSync(headerPath(model));
  if (!resume) for (const p of [vectorsPath(model), queriesPath(model), headerPath(model)]) if (existsSync(p)) rmSync(p);
  const started = performance.now();

  const sq = scifactQueries();
  const titles = bbcTitles();
  let header: CacheHeader;
  if (resume) {
    header = JSON.parse(readFileSync(headerPath(model), 'utf8')) as CacheHeader;
    // A run killed between appending vectors and writing the header leaves rows the header does not count.
    truncateSync(vectorsPath(model), header.count * header.dims * 4);
  } else {
    const qv: Float32Array[] = [];
    for (const q of [...sq, ...titles]) qv.push(await embedder.embedQuery(q));
    appendVectors(queriesPath(model), qv);
    header = {
      model,
      dtype: config.dtype,
      dims: embedder.info.dims,
      count: 0,
      segments: [],
      queries: { scifact: sq.length, bbcTitles: titles.length },
      embedSeconds: 0,
      written: '',
    };
  }
  const previousSeconds = header.embedSeconds;
  // Cheapest-per-paragraph sources before SciFact's long abstracts, so a short budget still yields many vectors.
  const plan: Array<{ seg: CacheSegment; texts: string[] }> = [
    { seg: { source: 'bbc-news', order: 'file', count: 0 }, texts: paragraphs('bbc-news').map((p) => p.text) },
    { seg: { source: 'reuters21578', order: 'shuffle-42', count: 0 }, texts: seededShuffle(paragraphs('reuters21578')).map((p) => p.text) },
    { seg: { source: 'scifact', order: 'file', count: 0 }, texts: paragraphs('scifact').map((p) => p.text) },
  ];
  const STEP = 512;
  outer: for (const { seg: fresh, texts } of plan) {
    const done = header.segments.find((s) => s.source === fresh.source);
    if (done && done.count >= texts.length) continue;
    const seg = done ?? fresh;
    if (!done) header.segments.push(seg);
    for (let i = seg.count; i < texts.length; i += STEP) {
      if ((performance.now() - started) / 1000 > budgetS) break outer;
      const vs = await embedder.embedPassages(texts.slice(i, i + STEP));
      appendVectors(vectorsPath(model), vs);
      seg.count += vs.length;
      header.count += vs.length;
      header.embedSeconds = previousSeconds + (performance.now() - started) / 1000;
      header.written = new Date().toISOString();
      writeHeader(header);
      console.log(`${seg.source}: ${seg.count}/${texts.length} (total ${header.count}, ${(header.count / header.embedSeconds).toFixed(0)}/s)`);
    }
  }
  await embedder.close();
}
