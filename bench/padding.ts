/**
 * `npm run bench -- padding [--timed 600] [--rounds 3]`: how much of each batch is padding under Quarry's length-sorted batching
 * (sorted by characters) versus sorting by token count, for a small call (96 texts, like one API write)
 * and a build-sized call (1,100 texts: buildGeneration embeds 256 articles at a time). Padding is compute
 * the model spends on nothing: attention masks do not skip it. No timing; token counts only.
 */
import { AutoTokenizer } from '@huggingface/transformers';
import { loadConfig } from '../src/config/config.ts';
import { lengthSortedBatches } from '../src/embed/embedder.ts';
import { createTransformersEmbedder } from '../src/embed/transformers-embedder.ts';
import { createEmbedder, embedderOptions } from '../src/runtime.ts';
import { flag, ROOT } from './lib/args.ts';
import { paragraphs, type Source, seededShuffle } from './lib/corpus.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { median, round } from './lib/stats.ts';

function paddingShare(batches: number[][], lens: number[]): number {
  let real = 0;
  let padded = 0;
  for (const b of batches) {
    const l = b.map((i) => lens[i]!);
    real += l.reduce((a, x) => a + x, 0);
    padded += Math.max(...l) * l.length;
  }
  return 1 - real / padded;
}

export async function run(args: string[]): Promise<void> {
  const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { logLevel: 'silent' } });
  const embedder = await createEmbedder(config); // sets the Transformers.js env (local models only)
  const tok = await AutoTokenizer.from_pretrained(config.model);
  const rows: Row[] = [];
  const out: unknown[] = [];
  for (const [source, n] of [
    ['bbc-news', 96],
    ['bbc-news', 1100],
    ['reuters21578', 1100],
    ['scifact', 1100],
  ] as Array<[Source, number]>) {
    const texts = seededShuffle(paragraphs(source))
      .slice(0, n)
      .map((p) => p.text);
    const lens = texts.map((t) => Math.min(512, tok.encode(t).length));
    for (const b of [8, 32, 64]) {
      const byChars = paddingShare(lengthSortedBatches(texts, b), lens);
      const order = texts.map((_, i) => i).sort((x, y) => lens[x]! - lens[y]!);
      const byTokens: number[][] = [];
      for (let i = 0; i < order.length; i += b) byTokens.push(order.slice(i, i + b));
      const tok2 = paddingShare(byTokens, lens);
      out.push({ source, texts: n, batch: b, paddingByChars: round(byChars, 4), paddingByTokens: round(tok2, 4) });
      rows.push([source, n, b, `${(byChars * 100).toFixed(1)}%`, `${(tok2 * 100).toFixed(1)}%`]);
      console.log(rows.at(-1)!.join('  '));
    }
  }
  await embedder.close();

  // Timed: Quarry's embedPassages sorting by tokens (default) vs by characters, same texts, interleaved.
  const timedN = Number(flag(args, 'timed', '600'));
  const rounds = Number(flag(args, 'rounds', '3'));
  const texts = seededShuffle([...paragraphs('bbc-news'), ...paragraphs('reuters21578')])
    .slice(0, timedN)
    .map((p) => p.text);
  // The shipped session settings (graph optimisation included: before 2026-12-01 this bench left it at 'all').
  const base = embedderOptions(config);
  const byTok = await createTransformersEmbedder({ ...base, sortByTokens: true });
  const byChar = await createTransformersEmbedder({ ...base, sortByTokens: false });
  await byTok.embedPassages(texts.slice(0, 32));
  await byChar.embedPassages(texts.slice(0, 32));
  const times: { tokens: number[]; chars: number[] } = { tokens: [], chars: [] };
  const time = async (e: typeof byTok, into: number[]) => {
    const t = performance.now();
    await e.embedPassages(texts);
    into.push((performance.now() - t) / 1000);
  };
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      await time(byTok, times.tokens);
      await time(byChar, times.chars);
    } else {
      await time(byChar, times.chars);
      await time(byTok, times.tokens);
    }
    console.log(`round ${r}: tokens ${times.tokens.at(-1)!.toFixed(2)} s, chars ${times.chars.at(-1)!.toFixed(2)} s`);
  }
  await byTok.close();
  await byChar.close();
  const speedup = median(times.chars.map((c, i) => c / times.tokens[i]!));
  const result = newResult('padding', args);
  result.rows = out;
  result.timed = {
    texts: timedN,
    mix: 'bbc-news + reuters21578 paragraphs, seeded shuffle',
    batch: config.embedBatchSize,
    threads: config.threads,
    rounds,
    secondsByTokens: times.tokens,
    secondsByChars: times.chars,
    speedupMedianOfRounds: round(speedup, 3),
  };
  const path = writeResult(result);
  updateDoc(
    'padding',
    result,
    [
      'Share of padded tokens per call (texts truncated at 512 tokens, as the pipeline does).',
      '',
      markdownTable(['source', 'texts per call', 'batch', 'padding, sorted by characters (Quarry)', 'padding, sorted by tokens'], rows),
      '',
      `Timed, Quarry's embedPassages on ${timedN} bbc-news + Reuters paragraphs (batch ${config.embedBatchSize}, ${config.threads} threads), ${rounds} interleaved rounds: sorted by characters ${median(times.chars).toFixed(2)} s, by tokens ${median(times.tokens).toFixed(2)} s (token counting included) — **${speedup.toFixed(2)}×** (median of per-round ratios).`,
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
}
