/**
 * `npm run bench -- duplicates [--rebuild] [--dataset bbc-news|reuters21578] [--limit N]`: how duplicate
 * detection behaves on bbc-news (2,225 articles, ../shared/data, read at run time), or on the first N
 * Reuters-21578 stories (no list of true pairs there: the pairs are for checking by eye). Builds the index through the real store (tags, groups at ingest) with
 * the vector cache's paragraph embeddings (chunks the cache lacks are embedded by the model), then:
 * - checks that every pair of bbc-news/duplicates.tsv (98 byte-identical copies) ended in one group;
 * - scores every article pair that shares a paragraph pair at cosine >= 0.8 (brute force over all chunk
 *   vectors), with corpus/duplicates.ts pairScore at several paragraph thresholds: the distribution the
 *   thresholds were chosen from;
 * - prints the highest-scoring pairs that are not exact copies, with their texts, for checking by eye.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { safeId } from '../scripts/dataset-to-articles.mjs';
import { loadConfig } from '../src/config/config.ts';
import { buildIndex } from '../src/core/build-index.ts';
import { identityOf } from '../src/core/open-or-build.ts';
import { isShortText, NEAR_DUPLICATE, numbersAgreement, pairScore, SHORT_TEXT_WORDS } from '../src/corpus/duplicates.ts';
import { createEmbedder } from '../src/runtime.ts';
import { openStore } from '../src/store/open-store.ts';
import { blobToVector } from '../src/store/sqlite/database.ts';
import { currentGenerationDir } from '../src/store/sqlite/index-dir.ts';
import { flag, has, ROOT } from './lib/args.ts';
import { DATA_DIR, type Source } from './lib/corpus.ts';
import { cacheFirstEmbedder, newsArticles } from './lib/news-articles.ts';
import { markdownTable, newResult, type Row, updateDoc, writeResult } from './lib/results.ts';
import { round } from './lib/stats.ts';
import { CACHE_DIR, loadCache } from './lib/vector-cache.ts';

const THRESHOLDS = [0.85, 0.9, 0.93, 0.95, 0.97, 0.99];
const SHARES = [0.5, 0.6, 0.7, 0.8, 0.9, 1];
const SCAN_MIN = 0.8;

interface Row_ {
  rowid: number;
  id: string;
  title: string;
  paragraphs: string;
  text_hash: string;
  dup_group: number | null;
}

export async function run(args: string[]): Promise<void> {
  const dataset = flag(args, 'dataset', 'bbc-news') as Source;
  const limit = Number(flag(args, 'limit', '0')) || Infinity;
  const indexDir = join(CACHE_DIR, `duplicates-index-${dataset}${Number.isFinite(limit) ? `-${limit}` : ''}`);
  const config = loadConfig({ env: process.env, cwd: ROOT, overrides: { indexDir, logLevel: 'silent' } });
  const result = newResult('duplicates', args);
  if (has(args, 'rebuild') && existsSync(indexDir)) rmSync(indexDir, { recursive: true, force: true });
  if (!currentGenerationDir(indexDir)) {
    const real = await createEmbedder({ ...config, queryWorker: false });
    const embedder = cacheFirstEmbedder(real, loadCache());
    const store = await openStore(config, { identity: identityOf(config, real.info), access: 'write' });
    const t = performance.now();
    const report = await buildIndex(store, embedder, config, { articles: newsArticles(dataset).slice(0, limit), source: { kind: 'empty' } });
    await store.close();
    await real.close();
    result.build = {
      seconds: round((performance.now() - t) / 1000, 1),
      chunks: report.chunks,
      cachedVectors: embedder.cached,
      embeddedVectors: embedder.embedded,
    };
    console.log(JSON.stringify(result.build));
  }
  const db = new Database(join(currentGenerationDir(indexDir)!, 'quarry.db'), { readonly: true });
  const articles = db.prepare<[], Row_>('SELECT rowid, id, title, paragraphs, text_hash, dup_group FROM articles').all();
  const byRowid = new Map(articles.map((a) => [a.rowid, a]));
  const byId = new Map(articles.map((a) => [a.id, a]));
  const chunks = db
    .prepare<[], { rowid: number; article_rowid: number; vector: Buffer }>('SELECT rowid, article_rowid, vector FROM chunks ORDER BY rowid')
    .all();
  const vecs = chunks.map((c) => blobToVector(c.vector));
  const vectorsOf = new Map<number, Float32Array[]>();
  chunks.forEach((c, i) => {
    let list = vectorsOf.get(c.article_rowid);
    if (!list) vectorsOf.set(c.article_rowid, (list = []));
    list.push(vecs[i]!);
  });

  // 1. The 98 exact pairs of duplicates.tsv.
  const truthFile = join(DATA_DIR, dataset, 'duplicates.tsv');
  const truth = (existsSync(truthFile) ? readFileSync(truthFile, 'utf8').trim().split('\n').slice(1) : []).map(
    (l) => l.split('\t').map(safeId) as [string, string],
  );
  const grouped = truth.filter(([a, b]) => {
    const x = byId.get(a);
    const y = byId.get(b);
    return x && y && x.dup_group !== null && x.dup_group === y.dup_group;
  });
  const groups = new Map<number, number[]>();
  for (const a of articles) if (a.dup_group !== null) groups.set(a.dup_group, [...(groups.get(a.dup_group) ?? []), a.rowid]);
  const exactGroups = [...groups.values()].filter((m) => new Set(m.map((r) => byRowid.get(r)!.text_hash)).size === 1).length;
  result.truth = { pairs: truth.length, grouped: grouped.length, missing: truth.filter((p) => !grouped.includes(p)), groups: groups.size, exactGroups };
  console.log(JSON.stringify(result.truth));

  // 2. Every article pair sharing a paragraph pair at >= SCAN_MIN (brute force over the chunk vectors).
  const t = performance.now();
  const pairs = new Map<string, { a: number; b: number; best: number }>();
  const dims = vecs[0]!.length;
  for (let i = 0; i < vecs.length; i++) {
    const vi = vecs[i]!;
    const ai = chunks[i]!.article_rowid;
    for (let j = i + 1; j < vecs.length; j++) {
      const aj = chunks[j]!.article_rowid;
      if (aj === ai) continue;
      const vj = vecs[j]!;
      let s = 0;
      for (let d = 0; d < dims; d++) s += vi[d]! * vj[d]!;
      if (s < SCAN_MIN) continue;
      const [a, b] = ai < aj ? [ai, aj] : [aj, ai];
      const key = `${a}:${b}`;
      const p = pairs.get(key);
      if (!p) pairs.set(key, { a, b, best: s });
      else p.best = Math.max(p.best, s);
    }
  }
  const scanSeconds = round((performance.now() - t) / 1000, 1);
  const scored = [...pairs.values()].map((p) => {
    const exact = byRowid.get(p.a)!.text_hash === byRowid.get(p.b)!.text_hash;
    const scores = Object.fromEntries(THRESHOLDS.map((th) => [th, pairScore(vectorsOf.get(p.a)!, vectorsOf.get(p.b)!, th)]));
    return { ...p, exact, scores, grouped: byRowid.get(p.a)!.dup_group !== null && byRowid.get(p.a)!.dup_group === byRowid.get(p.b)!.dup_group };
  });
  const nonExact = scored.filter((p) => !p.exact);
  // Pairs the vectors alone would join at the shipped thresholds, and how many of them the figures rule and
  // the short-text rule (corpus/duplicates.ts) turn down.
  const textOf = (r: number) => ({ title: byRowid.get(r)!.title, paragraphs: JSON.parse(byRowid.get(r)!.paragraphs) as string[] });
  const byVectors = nonExact.filter((p) => p.scores[NEAR_DUPLICATE.paragraphCosine]!.score >= NEAR_DUPLICATE.share);
  const figuresDisagree = byVectors.filter((p) => numbersAgreement(textOf(p.a), textOf(p.b)) < NEAR_DUPLICATE.numbers).length;
  const shortUntitled = byVectors.filter(
    (p) => numbersAgreement(textOf(p.a), textOf(p.b)) >= NEAR_DUPLICATE.numbers && (isShortText(textOf(p.a)) || isShortText(textOf(p.b))) && !p.grouped,
  ).length;
  result.rules = { byVectors: byVectors.length, figuresDisagree, shortTextOtherTitle: shortUntitled, grouped: byVectors.filter((p) => p.grouped).length };
  console.log(JSON.stringify(result.rules));
  // Pairs (not exact copies) that each (paragraph threshold, share) would call duplicates.
  const grid: Row[] = THRESHOLDS.map((th) => [th, ...SHARES.map((sh) => nonExact.filter((p) => p.scores[th]!.score >= sh).length)]);
  // Distribution of the pair score at the chosen paragraph threshold.
  const bins = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001];
  const chosen = NEAR_DUPLICATE.paragraphCosine;
  const hist: Row[] = bins.slice(0, -1).map((lo, i) => {
    const hi = bins[i + 1]!;
    const inBin = (x: number) => x >= lo && x < hi;
    return [
      `${lo.toFixed(1)}–${Math.min(1, hi).toFixed(1)}`,
      nonExact.filter((p) => inBin(p.scores[chosen]!.score)).length,
      scored.filter((p) => p.exact && inBin(p.scores[chosen]!.score)).length,
    ];
  });
  const para = (r: Row_) => (JSON.parse(r.paragraphs) as string[]).join(' ¶ ');
  const top = nonExact
    .sort((x, y) => y.scores[chosen]!.score - x.scores[chosen]!.score || y.best - x.best)
    .slice(0, 40)
    .map((p) => {
      const a = byRowid.get(p.a)!;
      const b = byRowid.get(p.b)!;
      return {
        a: a.id,
        b: b.id,
        titleA: a.title,
        titleB: b.title,
        best: round(p.best, 4),
        score: round(p.scores[chosen]!.score, 3),
        aShare: round(p.scores[chosen]!.aShare, 3),
        bShare: round(p.scores[chosen]!.bShare, 3),
        grouped: p.grouped,
        textA: para(a).slice(0, 600),
        textB: para(b).slice(0, 600),
      };
    });
  // Exact copies under different titles: where ignoring the title could join different stories (formulaic briefs).
  const exactRetitled = scored
    .filter((p) => p.exact && byRowid.get(p.a)!.title !== byRowid.get(p.b)!.title)
    .slice(0, 40)
    .map((p) => ({
      a: byRowid.get(p.a)!.id,
      b: byRowid.get(p.b)!.id,
      titleA: byRowid.get(p.a)!.title,
      titleB: byRowid.get(p.b)!.title,
      text: para(byRowid.get(p.a)!).slice(0, 300),
    }));
  const exactHashGroups = new Map<string, number[]>();
  for (const a of articles) exactHashGroups.set(a.text_hash, [...(exactHashGroups.get(a.text_hash) ?? []), a.rowid]);
  const retitledGroups = [...exactHashGroups.values()]
    .filter((m) => m.length > 1 && new Set(m.map((r) => byRowid.get(r)!.title)).size > 1)
    .map((m) => ({ ids: m.map((r) => byRowid.get(r)!.id), titles: m.map((r) => byRowid.get(r)!.title), text: para(byRowid.get(m[0]!)!).slice(0, 300) }));
  for (const g of retitledGroups.slice(0, 30)) console.log(`\n[exact, retitled] ${g.ids.join(', ')}: ${g.titles.join(' | ')}\n  ${g.text}`);
  result.exactRetitled = { pairs: exactRetitled.length, groups: retitledGroups.length, sample: retitledGroups.slice(0, 40) };
  result.pairs = { scanned: chunks.length, candidatePairs: scored.length, exactPairs: scored.length - nonExact.length, scanSeconds, grid, hist, top };
  for (const p of top.slice(0, 25)) {
    console.log(`\n[${p.score} a=${p.aShare} b=${p.bShare} best=${p.best}${p.grouped ? ' GROUPED' : ''}] ${p.a} "${p.titleA}"  ~  ${p.b} "${p.titleB}"`);
    console.log(`  A: ${p.textA.slice(0, 300)}`);
    console.log(`  B: ${p.textB.slice(0, 300)}`);
  }
  db.close();

  const path = writeResult(result);
  const tr = result.truth as { pairs: number; grouped: number; groups: number; exactGroups: number };
  const groupedNonExact = top.filter((p) => p.grouped);
  updateDoc(
    dataset === 'bbc-news' ? 'duplicates' : `duplicates-${dataset}`,
    result,
    [
      `${dataset}, ${articles.length} articles, ${chunks.length} chunks; duplicates grouped at ingest by the store (thresholds: paragraph cosine ≥ ${NEAR_DUPLICATE.paragraphCosine}, share ≥ ${NEAR_DUPLICATE.share} on both sides). ${tr.pairs > 0 ? `**${tr.grouped} of the ${tr.pairs} pairs of duplicates.tsv are grouped**; ` : ''}the index holds ${tr.groups} groups, ${tr.exactGroups} of them exact copies only.`,
      '',
      `Every article pair sharing a paragraph pair at cosine ≥ ${SCAN_MIN} (brute force, ${scored.length} pairs, ${scored.length - nonExact.length} of them exact copies): how many pairs that are **not** exact copies each paragraph threshold (rows) and share (columns) would call duplicates:`,
      '',
      markdownTable(['paragraph cosine', ...SHARES.map((s) => `share ≥ ${s}`)], grid),
      '',
      `Pair score (the smaller share) at paragraph cosine ${chosen}: non-exact pairs vs exact copies per bin:`,
      '',
      markdownTable(['score', 'not exact', 'exact copies'], hist),
      '',
      `Exact copies (same normalised text) under different titles: ${retitledGroups.length} groups (listed in the raw result, to check that ignoring titles joins no different stories).`,
      '',
      `Of the ${byVectors.length} non-exact pairs the paragraph vectors alone join at these thresholds, ${figuresDisagree} are turned down because their figures disagree (< ${NEAR_DUPLICATE.numbers} of the numbers shared) and ${shortUntitled} because a text under ${SHORT_TEXT_WORDS} words has another title; ${byVectors.filter((p) => p.grouped).length} are grouped.`,
      '',
      `Non-exact pairs grouped at the chosen thresholds: ${groupedNonExact.length}${groupedNonExact.length ? ` (${groupedNonExact.map((p) => `${p.a} ~ ${p.b} ${p.score}`).join('; ')})` : ''}. The highest-scoring non-exact pairs with their texts are in the raw result.`,
      '',
      `Raw: \`${path.slice(ROOT.length + 1)}\``,
    ].join('\n'),
  );
  console.log(`wrote ${path}`);
}
