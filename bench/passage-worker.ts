/**
 * `npm run bench -- passage-worker [--texts 384] [--rounds 2]`
 *
 * Passage embedding on the main thread vs in the passage worker (QUARRY_PASSAGE_WORKER), same texts
 * (bbc-news paragraphs), interleaved rounds: throughput, CPU-seconds per wall second, and the largest
 * difference between the vectors the two produce (they run the same model file and settings).
 */
import { loadConfig } from '../src/config/config.ts';
import { createEmbedder } from '../src/runtime.ts';
import { flag } from './lib/args.ts';
import { paragraphs } from './lib/corpus.ts';
import { newResult, writeResult } from './lib/results.ts';
import { round } from './lib/stats.ts';

export async function run(args: string[]): Promise<void> {
  const n = Number(flag(args, 'texts', '384'));
  const rounds = Number(flag(args, 'rounds', '2'));
  const texts = paragraphs('bbc-news')
    .slice(0, n)
    .map((p) => p.text);
  const onMain = await createEmbedder(loadConfig({ env: {}, overrides: { passageWorker: false, queryCacheSize: 0 } }));
  const inWorker = await createEmbedder(loadConfig({ env: {}, overrides: { passageWorker: true, queryCacheSize: 0 } }));
  try {
    const a = await onMain.embedPassages(texts.slice(0, 50));
    const b = await inWorker.embedPassages(texts.slice(0, 50));
    const maxDiff = Math.max(...a.map((v, i) => Math.max(...v.map((x, j) => Math.abs(x - b[i]![j]!)))));
    const rows: Array<Record<string, number | string>> = [];
    for (let r = 0; r < rounds; r++) {
      for (const [name, e] of [
        ['main thread', onMain],
        ['worker', inWorker],
      ] as const) {
        const cpu0 = process.cpuUsage();
        const t = performance.now();
        await e.embedPassages(texts);
        const s = (performance.now() - t) / 1000;
        const cpu = process.cpuUsage(cpu0);
        rows.push({ round: r, where: name, chunksPerSecond: round(texts.length / s, 1), cpuSecondsPerSecond: round((cpu.user + cpu.system) / 1e6 / s, 2) });
      }
    }
    const result = newResult('passage-worker', args);
    Object.assign(result, { texts: texts.length, maxAbsVectorDifference: maxDiff, rows });
    console.table(rows);
    console.log(`max |difference| between the two paths' vectors: ${maxDiff}; wrote ${writeResult(result)}`);
  } finally {
    await onMain.close();
    await inWorker.close();
  }
}
