import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEvalReport } from '../../src/cli/eval-report.ts';
import type { Embedder } from '../../src/embed/embedder.ts';
import { type EvalReport, runEval } from '../../src/eval/run-eval.ts';
import { createEmbedder } from '../../src/runtime.ts';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';
import { ROOT, testConfig } from '../helpers/real-service.ts';

/**
 * A five-document collection whose answers are known. Expected metrics are computed by hand from the
 * rankings each query must produce (see the comments on QRELS), the same in every mode.
 */
const CORPUS = [
  { id: 'photo', title: 'Photosynthesis', text: 'Green plants capture sunlight with chlorophyll and turn it into chemical energy stored as sugar.' },
  {
    id: 'iceland',
    title: 'Volcanic eruption in Iceland',
    text: 'Lava poured from the volcano near Grindavik and a cloud of ash closed airports across the region.',
  },
  { id: 'etna', title: 'Mount Etna erupts again', text: 'The volcano on Sicily threw glowing lava fountains into the night sky and covered Catania with ash.' },
  {
    id: 'football',
    title: 'Cup final decided on penalties',
    text: 'The goalkeeper saved two penalties as the home team won the cup final after a goalless match.',
  },
  { id: 'bread', title: 'Baking sourdough at home', text: 'Flour, water, salt and a sourdough starter are all you need to bake a crusty loaf of bread.' },
];
const QUERIES = [
  { id: 'q1', text: 'plants turning sunlight into energy' },
  { id: 'q2', text: 'volcano lava and ash' },
  { id: 'q3', text: 'goalkeeper saved penalties in the cup final' },
  { id: 'q4', text: 'volcano spewing lava over Sicily and Catania' },
  { id: 'q5', text: 'baking bread with a sourdough starter' },
  { id: 'unjudged', text: 'a query nobody judged is not evaluated' },
];
const QRELS = [
  ['q1', 'photo', 1], // photo first: every metric 1
  ['q2', 'iceland', 1], // both volcano documents in the top 2: every metric 1
  ['q2', 'etna', 1],
  ['q3', 'football', 1], // football first, but half of what is relevant is not in the corpus:
  ['q3', 'not-in-corpus', 1], //   recall 1/2, nDCG 1 / (1 + 1/log2 3), MRR 1
  ['q4', 'iceland', 1], // etna (Sicily, Catania) first, iceland second: nDCG 1/log2 3, MRR 1/2, recall 1
  ['q5', 'bread', 2], // graded: bread first, nDCG 1
  ['q5', 'photo', 0], // judged not relevant: no gain, not counted by recall
];

const IDCG_Q3 = 1 + 1 / Math.log2(3);
const EXPECTED = {
  ndcg10: (1 + 1 + 1 / IDCG_Q3 + 1 / Math.log2(3) + 1) / 5,
  recall10: (1 + 1 + 0.5 + 1 + 1) / 5,
  recall100: (1 + 1 + 0.5 + 1 + 1) / 5,
  mrr10: (1 + 1 + 1 + 0.5 + 1) / 5,
};

describe('quarry eval (real model, real index)', () => {
  let dataset: string;
  let keep: string;
  let embedder: Embedder;
  let report: EvalReport;

  beforeAll(async () => {
    dataset = mkdtempSync(join(tmpdir(), 'quarry-eval-data-'));
    mkdirSync(join(dataset, 'qrels'));
    writeFileSync(join(dataset, 'corpus.jsonl'), `${CORPUS.map((d) => JSON.stringify(d)).join('\n')}\n`);
    writeFileSync(join(dataset, 'queries.jsonl'), `${QUERIES.map((q) => JSON.stringify(q)).join('\n')}\n`);
    writeFileSync(join(dataset, 'qrels', 'test.tsv'), `${['query-id\tcorpus-id\tscore', ...QRELS.map((r) => r.join('\t'))].join('\n')}\n`);
    keep = join(mkdtempSync(join(tmpdir(), 'quarry-eval-keep-')), 'index');
    const config = testConfig();
    rmSync(config.indexDir, { recursive: true, force: true }); // runEval makes its own
    embedder = await createEmbedder(config);
    report = await runEval({ dataset, modes: ['semantic', 'lexical', 'hybrid'], config, embedder });
  });

  afterAll(async () => {
    await embedder?.close();
    rmSync(dataset, { recursive: true, force: true });
    rmSync(join(keep, '..'), { recursive: true, force: true });
  });

  it('reports the collection it indexed', () => {
    expect(report.documents).toBe(5);
    expect(report.chunks).toBe(5);
    expect(report.queries).toBe(5);
    expect(report.k).toBe(100);
    expect(report.indexReused).toBe(false);
    expect(report.indexSeconds).toBeGreaterThan(0);
    expect(report.modes.map((m) => m.mode)).toEqual(['semantic', 'lexical', 'hybrid']);
  });

  for (const mode of ['semantic', 'lexical', 'hybrid'] as const) {
    it(`scores ${mode} mode exactly as computed by hand`, () => {
      const m = report.modes.find((r) => r.mode === mode)!;
      expect(m.ndcg10).toBeCloseTo(EXPECTED.ndcg10, 10);
      expect(m.recall10).toBeCloseTo(EXPECTED.recall10, 10);
      expect(m.recall100).toBeCloseTo(EXPECTED.recall100, 10);
      expect(m.mrr10).toBeCloseTo(EXPECTED.mrr10, 10);
      expect(m.latencyP50Ms).toBeGreaterThan(0);
    });
  }

  it('prints a table with one row per mode', () => {
    const lines = formatEvalReport(report).split('\n');
    expect(lines.find((l) => l.startsWith('mode'))).toMatch(/nDCG@10\s+Recall@10\s+Recall@100\s+MRR@10\s+p50 ms/);
    expect(lines.find((l) => l.startsWith('hybrid'))).toContain(EXPECTED.ndcg10.toFixed(4));
  });

  it('keeps the index when asked and reuses it instead of re-embedding', async () => {
    const first = await runEval({ dataset, modes: ['lexical'], config: testConfig(), embedder, keepIndex: keep, limit: 2 });
    expect(first.indexReused).toBe(false);
    expect(existsSync(keep)).toBe(true);
    const generations = readdirSync(keep).filter((n) => n.startsWith('gen-'));
    const second = await runEval({ dataset, modes: ['lexical'], config: testConfig(), embedder, keepIndex: keep, limit: 2 });
    expect(second.indexReused).toBe(true);
    expect(readdirSync(keep).filter((n) => n.startsWith('gen-'))).toEqual(generations);
    // q1 and q2 only: both perfect.
    expect(second.queries).toBe(2);
    expect(second.modes[0]!.ndcg10).toBeCloseTo(1, 10);
    expect(second.modes[0]).toMatchObject({ recall10: first.modes[0]!.recall10, mrr10: first.modes[0]!.mrr10 });
  });

  it('runs as `quarry eval` from the command line: table on stdout, the same numbers in --json', async () => {
    const json = join(keep, '..', 'report.json');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['bin/quarry.js', 'eval', '--dataset', dataset, '--mode', 'lexical', '--json', json, '--log-level', 'silent'],
      { cwd: ROOT, env: { ...process.env, QUARRY_MODELS_DIR: join(ROOT, 'models') }, timeout: CHILD_HANG_GUARD_MS },
    );
    expect(stdout).toMatch(/5 documents \(5 chunks\), 5 queries/);
    expect(stdout).toMatch(new RegExp(`^lexical\\s+${EXPECTED.ndcg10.toFixed(4)}\\s+${EXPECTED.recall10.toFixed(4)}`, 'm'));
    const written = JSON.parse(readFileSync(json, 'utf8')) as EvalReport;
    expect(written.modes).toHaveLength(1);
    expect(written.modes[0]!.ndcg10).toBeCloseTo(EXPECTED.ndcg10, 10);
    expect(written.indexReused).toBe(false);
  });
});
