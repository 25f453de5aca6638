/**
 * `npm run bench -- graph-opt [--texts 256] [--rounds 4] [--levels all,basic]`
 *
 * Quarry's own embedder (main thread, no worker, no cache) under ONNX Runtime graph optimisation levels,
 * same bbc-news + SciFact texts, levels alternating round by round; reports chunks/s per level, the ratio
 * to the first, and how far the vectors move (min cosine to the first level's vectors).
 */
import { loadConfig } from '../src/config/config.ts';
import { createEmbedder } from '../src/runtime.ts';
import { flag, ROOT } from './lib/args.ts';
import { paragraphs, seededShuffle } from './lib/corpus.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { round } from './lib/stats.ts';

type Level = 'disabled' | 'basic' | 'extended' | 'all';

export async function run(args: string[]): Promise<void> {
  const n = Number(flag(args, 'texts', '256'));
  const rounds = Number(flag(args, 'rounds', '4'));
  const levels = flag(args, 'levels', 'all,basic').split(',') as Level[];
  const texts = [...seededShuffle(paragraphs('bbc-news')).slice(0, (n * 3) / 4), ...seededShuffle(paragraphs('scifact')).slice(0, n / 4)].map((p) => p.text);
  const embedders = await Promise.all(
    levels.map((level) =>
      createEmbedder(
        loadConfig({
          env: {},
          cwd: ROOT,
          overrides: { passageWorker: false, queryWorker: false, queryCacheSize: 0, onnxGraphOptimization: level, logLevel: 'silent' },
        }),
      ),
    ),
  );
  await Promise.all(embedders.map((e) => e.embedPassages(texts.slice(0, 8))));
  const seconds: number[][] = levels.map(() => []);
  let reference: Float32Array[] = [];
  const minCos: number[] = levels.map(() => 1);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? levels.map((_, i) => i) : levels.map((_, i) => levels.length - 1 - i);
    for (const i of order) {
      const t = performance.now();
      const vs = await embedders[i]!.embedPassages(texts);
      seconds[i]!.push((performance.now() - t) / 1000);
      if (i === 0) reference = vs;
      else if (reference.length)
        vs.forEach(
          (v, j) =>
            (minCos[i] = Math.min(
              minCos[i]!,
              v.reduce((a, x, d) => a + x * reference[j]![d]!, 0),
            )),
        );
      console.log(`round ${r + 1} ${levels[i]}: ${seconds[i]!.at(-1)!.toFixed(2)} s`);
    }
  }
  await Promise.all(embedders.map((e) => e.close()));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const perRound = (i: number) => seconds[0]!.map((s0, r) => s0 / seconds[i]![r]!);
  const result = newResult('graph-opt', args);
  result.levels = levels.map((level, i) => ({
    level,
    seconds: seconds[i],
    chunksPerS: round(texts.length / median(seconds[i]!), 1),
    speedupVsFirst: round(median(perRound(i)), 3),
    minCosineToFirst: minCos[i],
  }));
  const path = writeResult(result);
  const rows: Row[] = levels.map((level, i) => [
    level,
    round(texts.length / median(seconds[i]!), 1),
    `${round(median(perRound(i)), 2)}×`,
    perRound(i)
      .map((x) => x.toFixed(2))
      .join(', '),
    i === 0 ? '-' : round(minCos[i]!, 6),
  ]);
  updateDoc(
    'graph-opt',
    result,
    [
      `Quarry's embedder (batch 32, 2 threads, main thread), ${texts.length} texts (¾ bbc-news paragraphs, ¼ SciFact abstracts), ${rounds} rounds, levels alternating; speed-up is the median of per-round ratios to \`${levels[0]}\`.`,
      '',
      markdownTable(['graph optimisation', 'chunks/s (median)', `vs ${levels[0]}`, 'per round', `min cosine to ${levels[0]}`], rows),
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
