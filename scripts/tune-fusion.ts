/**
 * Sweeps lexical and fusion settings over an index kept by `quarry eval --keep-index DIR`, on the TRAIN split
 * only (tuning on the test queries would make the reported numbers meaningless). Query vectors are computed
 * once and reused, so each configuration costs only retrieval. Not a test and not part of the product:
 *
 *   npx tsx scripts/tune-fusion.ts --dataset ../shared/data/scifact --index /tmp/scifact-index [--json out.json]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Config, loadConfig } from '../src/config/config.ts';
import { openQuarry } from '../src/core/open-or-build.ts';
import type { Embedder } from '../src/embed/embedder.ts';
import { loadBeir } from '../src/eval/beir.ts';
import { evaluateMode, type ModeReport, type SearchOverrides } from '../src/eval/run-eval.ts';
import { createEmbedder } from '../src/runtime.ts';
import type { SearchMode } from '../src/search/schema.ts';

/** Memoises query vectors: a sweep asks the same queries many times. */
export function cachingEmbedder(inner: Embedder): Embedder {
  const cache = new Map<string, Promise<Float32Array>>();
  return {
    info: inner.info,
    embedPassages: (t, p) => inner.embedPassages(t, p),
    countTokens: (t) => inner.countTokens(t),
    close: () => inner.close(),
    embedQuery(text) {
      let v = cache.get(text);
      if (!v) cache.set(text, (v = inner.embedQuery(text)));
      return v;
    },
  };
}

interface Trial {
  name: string;
  mode: SearchMode;
  config?: Partial<Config>;
  search?: SearchOverrides;
}

function trials(title: number): Trial[] {
  const out: Trial[] = [{ name: 'semantic', mode: 'semantic' }];
  for (const stop of [false, true]) {
    for (const t of [1, 0.5, 2, 0.25]) {
      out.push({ name: `lexical stop=${stop} title=${t}`, mode: 'lexical', config: { lexicalStopwords: stop, bm25TitleWeight: t } });
    }
  }
  const cfg = (stop: boolean, fuseBy: Config['fuseBy']): Partial<Config> => ({ lexicalStopwords: stop, bm25TitleWeight: title, fuseBy });
  out.push({
    name: `hybrid rrf chunk stop=false title=${title} k=60 dense=1 lex=1`,
    mode: 'hybrid',
    config: cfg(false, 'chunk'),
    search: { fusion: 'rrf', rrfK: 60, denseWeight: 1, lexicalWeight: 1 },
  });
  for (const fuseBy of ['chunk', 'article'] as const) {
    for (const k of [10, 30, 60, 100]) {
      for (const [dw, lw] of [
        [1, 1],
        [1, 0.7],
        [0.7, 1],
      ] as const) {
        out.push({
          name: `hybrid rrf ${fuseBy} stop=true title=${title} k=${k} dense=${dw} lex=${lw}`,
          mode: 'hybrid',
          config: cfg(true, fuseBy),
          search: { fusion: 'rrf', rrfK: k, denseWeight: dw, lexicalWeight: lw },
        });
      }
    }
    for (const a of [0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7]) {
      const lw = Math.round((1 - a) * 100) / 100;
      out.push({
        name: `hybrid relative ${fuseBy} stop=true title=${title} dense=${a} lex=${lw}`,
        mode: 'hybrid',
        config: cfg(true, fuseBy),
        search: { fusion: 'relative', denseWeight: a, lexicalWeight: lw },
      });
    }
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' },
      index: { type: 'string' },
      queries: { type: 'string', default: 'queries-train.jsonl' },
      qrels: { type: 'string', default: 'qrels/train.tsv' },
      limit: { type: 'string' },
      only: { type: 'string' },
      title: { type: 'string', default: '1' },
      json: { type: 'string' },
    },
  });
  if (!values.dataset || !values.index) throw new Error('usage: tune-fusion --dataset DIR --index DIR [--only SUBSTRING] [--json FILE]');
  if (/test/.test(values.queries + values.qrels)) throw new Error('tuning runs on the train split only');
  const base = loadConfig({ env: process.env, overrides: { indexDir: values.index, logLevel: 'silent' } });
  const collection = await loadBeir(values.dataset, {
    queriesFile: values.queries,
    qrelsFile: values.qrels,
    limit: values.limit ? Number(values.limit) : undefined,
  });
  const embedder = cachingEmbedder(await createEmbedder(base));
  const rows: Array<{ name: string } & ModeReport> = [];
  try {
    for (const t of trials(Number(values.title)).filter((t) => !values.only || t.name.includes(values.only))) {
      const quarry = await openQuarry({ config: { ...base, ...t.config }, embedder, access: 'read' });
      try {
        const r = await evaluateMode(quarry, collection, t.mode, { search: t.search });
        rows.push({ name: t.name, ...r });
        const f = (x: number) => x.toFixed(4);
        process.stdout.write(`${t.name.padEnd(72)} nDCG@10 ${f(r.ndcg10)}  R@10 ${f(r.recall10)}  R@100 ${f(r.recall100)}  MRR@10 ${f(r.mrr10)}\n`);
      } finally {
        await quarry.close();
      }
    }
  } finally {
    await embedder.close();
  }
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ queries: collection.queries.length, rows }, null, 2)}\n`);
}

await main();
