/**
 * `npm run bench -- embed [--short 256] [--long 64] [--rounds 3] [--batches 8,32,64] [--threads 1,2] [--sessions 1] [--no-variants]
 *   [--variants-only] [--variants 'opt basic|no spinning'] [--block NAME: the docs block to write]`
 *
 * Quarry's embed stage (createEmbedder -> embedPassages: tokenise, run, pool, normalise, copy) against a
 * bare onnxruntime-node session of the same model file fed the same token ids, pre-tokenised outside the
 * timed region: the floor Quarry's own overhead sits on. Each configuration (threads, batch) runs its rounds
 * with Quarry and bare alternating which goes first, so machine noise falls on both; the median round is
 * reported, and the ratio is taken per round.
 *
 * Sessions live for one configuration only. ONNX Runtime's CPU arena keeps a session's peak memory until the
 * session is released: 3.6 GB (q8) and 5.0 GB (q4) for one session after batch 64 of SciFact abstracts. With
 * every configuration's sessions alive at once the full grid reached the machine's 24 GB and died after
 * printing it (exit code 1 after 764 s). Peak RSS is now recorded in the result.
 */

import type * as ort from 'onnxruntime-node';
import { loadConfig } from '../src/config/config.ts';
import type { Embedder } from '../src/embed/embedder.ts';
import { createEmbedder } from '../src/runtime.ts';
import { flag, has, numberList, ROOT } from './lib/args.ts';
import { createSession, loadTokenizer, meanPoolNormalise, modelFile, type TokenisedBatch, tokeniseBatches } from './lib/bare-onnx.ts';
import { paragraphs, seededShuffle } from './lib/corpus.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { median, round } from './lib/stats.ts';

const MFLOP_PER_TOKEN = 22;
/** How each quantised dtype computes its matrix products. */
const INT8_NOTE: Record<string, string> = {
  q4: "The q4 model's MatMulNBits nodes carry accuracy_level 4: they compute in int8.",
  q8: "The q8 model's MatMulInteger nodes compute in int8 (activations quantised per call by DynamicQuantizeLinear).",
};

async function timeQuarry(e: Embedder, texts: string[]): Promise<number> {
  const t = performance.now();
  await e.embedPassages(texts);
  return (performance.now() - t) / 1000;
}

async function timeBare(s: ort.InferenceSession, batches: TokenisedBatch[], cpu?: number[]): Promise<number> {
  const c = process.cpuUsage();
  const t = performance.now();
  for (const b of batches) await s.run(b.feed);
  const wall = (performance.now() - t) / 1000;
  const used = process.cpuUsage(c);
  cpu?.push((used.user + used.system) / 1e6);
  return wall;
}

/** The batch that needs the most memory (most padded tokens): running it first grows a session's arena to
 * its peak, so arena growth is not timed. */
const largest = (batches: TokenisedBatch[]): TokenisedBatch => batches.reduce((a, b) => (b.padded > a.padded ? b : a));

/** Peak RSS of the process so far (worker threads included), in MiB. */
const peakRssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

export async function run(args: string[]): Promise<void> {
  const rounds = Number(flag(args, 'rounds', '3'));
  const batchSizes = numberList(args, 'batches', [8, 32, 64]);
  const threadCounts = numberList(args, 'threads', [1, 2]);
  const sets = {
    'bbc-news paragraphs': seededShuffle(paragraphs('bbc-news'))
      .slice(0, Number(flag(args, 'short', '256')))
      .map((p) => p.text),
    'SciFact abstracts': seededShuffle(paragraphs('scifact'))
      .slice(0, Number(flag(args, 'long', '64')))
      .map((p) => p.text),
  };
  const base = loadConfig({ env: process.env, cwd: ROOT, overrides: { logLevel: 'silent' } });
  const file = modelFile(base.modelsDir, base.model, base.dtype);
  const result = newResult('embed', args);
  // Same graph optimisation level as Quarry's sessions, so the floor is the same computation.
  const bareOptions = (threads: number): ort.InferenceSession.SessionOptions => ({
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: base.onnxGraphOptimization,
  });
  // Like for like: Quarry's passage embedding in one session of `threads` threads (the bare session's layout),
  // unless --sessions asks for its pool split (N sessions of threads/N each; bench rebuild compares layouts).
  const sessions = Number(flag(args, 'sessions', '1'));
  const quarryConfig = (threads: number, b: number) =>
    loadConfig({
      env: process.env,
      cwd: ROOT,
      overrides: {
        threads,
        passageSessions: sessions,
        passageThreads: Math.max(1, Math.floor(threads / sessions)),
        embedBatchSize: b,
        logLevel: 'silent',
      },
    });

  // A first embedder sets Transformers.js' model path for the tokenizer; it also gives the input names.
  const probe = await createEmbedder(quarryConfig(threadCounts[0]!, batchSizes[0]!));
  const tokenizer = await loadTokenizer(base.model);
  await probe.close();
  const inputNames = await (async () => {
    const s = await createSession(file, bareOptions(1));
    const names = s.inputNames;
    await s.release();
    return names;
  })();

  const rows: Row[] = [];
  const measurements: unknown[] = [];
  for (const [setName, texts] of Object.entries(has(args, 'variants-only') ? {} : sets)) {
    const tokenised = new Map(batchSizes.map((b) => [b, tokeniseBatches(tokenizer, texts, b, inputNames)]));
    const tokens = tokenised.get(batchSizes[0]!)!.reduce((n, b) => n + b.tokens, 0);
    const lengths = new Map(texts.map((t) => [t, tokenizer.encode(t).length]));
    const longest = texts.slice().sort((x, y) => lengths.get(y)! - lengths.get(x)!);
    const samples = new Map<string, { q: number[]; b: number[] }>();
    let poolS = 0;
    const bJs = batchSizes.includes(32) ? 32 : batchSizes[0]!;

    for (const threads of threadCounts) {
      for (const b of batchSizes) {
        // One Quarry embedder (one ONNX session in its passage worker, as in the service) and one bare session.
        const quarry = await createEmbedder(quarryConfig(threads, b));
        const bare = await createSession(file, bareOptions(threads));
        try {
          const batches = tokenised.get(b)!;
          // Warm-up: first runs allocate arenas and pick kernels; the largest batch grows the arena to its peak.
          await quarry.embedPassages(longest.slice(0, b));
          await timeBare(bare, [largest(batches)]);
          const s = { q: [] as number[], b: [] as number[] };
          samples.set(`${threads}/${b}`, s);
          for (let r = 0; r < rounds; r++) {
            const q = () => timeQuarry(quarry, texts).then((x) => s.q.push(x));
            const bb = () => timeBare(bare, batches).then((x) => s.b.push(x));
            if (r % 2 === 0) {
              await q();
              await bb();
            } else {
              await bb();
              await q();
            }
          }
          // JS-side pooling + normalisation of real outputs, timed alone (largest thread count, batch 32).
          if (threads === threadCounts.at(-1) && b === bJs) {
            for (const tb of batches) {
              const out = await bare.run(tb.feed);
              const hidden = out[bare.outputNames[0]!]!;
              const t = performance.now();
              meanPoolNormalise(hidden.data as Float32Array, tb.mask, tb.dims[0], tb.dims[1], hidden.dims[2]!);
              poolS += (performance.now() - t) / 1000;
            }
          }
        } finally {
          await quarry.close();
          await bare.release();
        }

        const s = samples.get(`${threads}/${b}`)!;
        const padded = tokenised.get(b)!.reduce((n, x) => n + x.padded, 0);
        const qS = median(s.q);
        const bS = median(s.b);
        // Ratio per round (same round = same machine state), then the median of those.
        const ratio = median(s.q.map((x, i) => s.b[i]! / x));
        const m = {
          set: setName,
          texts: texts.length,
          tokens,
          paddedTokens: padded,
          threads,
          batch: b,
          quarry: { seconds: s.q, chunksPerS: round(texts.length / qS, 1), tokensPerS: round(tokens / qS, 0) },
          bare: { seconds: s.b, chunksPerS: round(texts.length / bS, 1), tokensPerS: round(tokens / bS, 0) },
          ratio: round(ratio, 3),
          computeShare: round(((tokens / qS) * MFLOP_PER_TOKEN * 1e6) / (result.machine.peakGflops * 1e9), 4),
          peakRssMiB: peakRssMiB(),
        };
        measurements.push(m);
        rows.push([
          setName,
          Math.round(tokens / texts.length),
          threads,
          b,
          m.quarry.chunksPerS,
          m.quarry.tokensPerS,
          m.bare.chunksPerS,
          m.bare.tokensPerS,
          `${m.ratio.toFixed(2)}×`,
          `${(m.computeShare * 100).toFixed(1)}%`,
        ]);
        console.log(`${rows.at(-1)!.join('  ')}  (peak RSS ${m.peakRssMiB} MiB)`);
      }
    }

    // JS-side costs at batch 32: tokenisation (timed here), and pooling + normalisation (timed above).
    const tTok = performance.now();
    tokeniseBatches(tokenizer, texts, bJs, inputNames);
    const tokeniseS = (performance.now() - tTok) / 1000;
    const bestQuarry = Math.min(...(samples.get(`${threadCounts.at(-1)}/${bJs}`)?.q ?? [NaN]));
    measurements.push({
      set: setName,
      jsCosts: {
        batch: bJs,
        tokeniseS: round(tokeniseS, 4),
        poolS: round(poolS, 4),
        quarryBestS: round(bestQuarry, 4),
        tokeniseShare: round(tokeniseS / bestQuarry, 4),
        poolShare: round(poolS / bestQuarry, 4),
      },
    });
    console.log(`${setName}: tokenise ${tokeniseS.toFixed(3)} s, pool ${poolS.toFixed(3)} s, quarry ${bestQuarry.toFixed(3)} s`);
  }
  result.measurements = measurements;
  result.mflopPerToken = MFLOP_PER_TOKEN;

  // Speed pass: ONNX Runtime session options on the bare session (batch 32), interleaved round-robin.
  const variantRows: Row[] = [];
  if (!has(args, 'no-variants')) {
    const texts = sets['bbc-news paragraphs'];
    const allVariants: Record<string, ort.InferenceSession.SessionOptions> = {
      'intra 2, inter 1, opt all, spinning (ORT defaults)': { intraOpNumThreads: 2, interOpNumThreads: 1 },
      'intra 2, opt extended': { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'extended' },
      'intra 2, opt basic': { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'basic' },
      'intra 2, opt disabled': { intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' },
      'intra 2, no spinning (Quarry)': { intraOpNumThreads: 2, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } },
      'intra 4 (oversubscribed)': { intraOpNumThreads: 4, interOpNumThreads: 1 },
      'intra 2, inter 2, parallel': { intraOpNumThreads: 2, interOpNumThreads: 2, executionMode: 'parallel' },
      'intra 0 (ORT default)': {},
    };
    const only = flag(args, 'variants', undefined)?.split('|');
    const variants = only ? Object.fromEntries(Object.entries(allVariants).filter(([k], i) => i === 0 || only.some((o) => k.includes(o)))) : allVariants;
    const batches = tokeniseBatches(tokenizer, texts, 32, inputNames);
    const tokens = batches.reduce((n, b) => n + b.tokens, 0);
    const keys = Object.keys(variants);
    const vs = new Map<string, number[]>(keys.map((k) => [k, []]));
    // CPU seconds this process used per pass: threads that spin while waiting show up here, not in wall time.
    const cpu = new Map<string, number[]>(keys.map((k) => [k, []]));
    // One session alive at a time (arena memory, see the top): created, warmed on the largest batch, timed
    // and released within its turn of the round.
    for (let r = 0; r < rounds; r++) {
      for (const k of r % 2 === 0 ? keys : keys.slice().reverse()) {
        const session = await createSession(file, variants[k]!);
        try {
          await timeBare(session, [largest(batches)]);
          vs.get(k)!.push(await timeBare(session, batches, cpu.get(k)));
        } finally {
          await session.release();
        }
      }
    }
    const ref = median(vs.get(keys[0]!)!);
    const variantResults = keys.map((k) => {
      const s = median(vs.get(k)!);
      const cpuS = median(cpu.get(k)!);
      variantRows.push([k, round(texts.length / s, 1), round(tokens / s, 0), `${(ref / s).toFixed(2)}×`, round(cpuS / s, 2)]);
      console.log(variantRows.at(-1)!.join('  '));
      return {
        variant: k,
        options: variants[k],
        seconds: vs.get(k),
        cpuSeconds: cpu.get(k),
        tokensPerS: round(tokens / s, 0),
        vsFirstRow: round(ref / s, 3),
        coresBusy: round(cpuS / s, 2),
      };
    });
    result.sessionVariants = { set: 'bbc-news paragraphs', batch: 32, texts: texts.length, tokens, results: variantResults };
  }
  result.peakRssMiB = peakRssMiB();
  console.log(`peak RSS ${result.peakRssMiB} MiB`);

  const path = writeResult(result);
  const body = [
    `Compute limit: ${MFLOP_PER_TOKEN} MFLOP/token against an estimated ${result.machine.peakGflops} GFLOP/s peak (${result.machine.peakAssumption}). Tokens are real (unpadded) tokens; the median of ${rounds} rounds, Quarry and bare alternating. Model: ${base.model} ${base.dtype} (\`${file.slice(base.modelsDir.length + 1)}\`). ${INT8_NOTE[base.dtype] ?? ''}${result.machine.peakInt8Gops ? ` The int8 VNNI peak is about ${result.machine.peakInt8Gops} GOP/s: for int8 compute, divide the share by 4.` : ''} Peak RSS of the run: ${result.peakRssMiB} MiB.`,
    '',
    markdownTable(
      [
        'inputs',
        'tokens/chunk',
        'threads',
        'batch',
        'Quarry chunks/s',
        'Quarry tokens/s',
        'bare ORT chunks/s',
        'bare ORT tokens/s',
        'Quarry ÷ bare',
        'share of peak',
      ],
      rows,
    ),
    ...(variantRows.length
      ? [
          '',
          'ONNX Runtime session options, bare session, bbc-news paragraphs, batch 32 (same run):',
          '',
          markdownTable(['session options', 'chunks/s', 'tokens/s', 'vs first row', 'CPU s per wall s'], variantRows),
        ]
      : []),
    '',
    `JS-side costs (batch 32): ${measurements
      .filter((m): m is { set: string; jsCosts: Record<string, number> } => typeof m === 'object' && m !== null && 'jsCosts' in m)
      .map(
        (m) =>
          `${m.set}: tokenisation ${(m.jsCosts.tokeniseShare! * 100).toFixed(1)}%, pooling+normalising ${(m.jsCosts.poolShare! * 100).toFixed(1)}% of Quarry's embed time`,
      )
      .join('; ')}.`,
    '',
    `Raw: \`${path.slice(ROOT.length + 1)}\``,
  ].join('\n');
  // A variants-only run updates its own block, leaving the full grid's table in place.
  updateDoc(flag(args, 'block', has(args, 'variants-only') ? 'embed-session-options' : 'embed'), result, body);
  console.log(`wrote ${path}`);
}
