/**
 * The relevance evaluation behind `quarry eval`: index a BEIR collection with the real pipeline (one article
 * per document, chunked and embedded as usual), ask every query through `Quarry.search` in each mode, and score
 * the article rankings against the qrels. A document's score is its article's score, i.e. its best chunk.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config } from '../config/config.ts';
import { buildIndex } from '../core/build-index.ts';
import { identityOf } from '../core/open-or-build.ts';
import type { SourcedArticle } from '../core/prepare.ts';
import { Quarry } from '../core/quarry.ts';
import { cleanParagraph } from '../corpus/article.ts';
import type { Embedder } from '../embed/embedder.ts';
import { MAX_K, MAX_QUERY_LENGTH, type SearchMode, type SearchRequestInput, SearchRequestSchema } from '../search/schema.ts';
import { openStore } from '../store/open-store.ts';
import { type BeirCollection, type BeirDoc, loadBeir } from './beir.ts';
import { evaluate, percentile, type Qrels, type Run } from './metrics.ts';

/** Fusion and lexical knobs a run may override (the same fields a search request accepts). */
export type SearchOverrides = Omit<SearchRequestInput, 'q' | 'k' | 'mode' | 'explain' | 'evidence' | 'minScore'>;

export interface EvalOptions {
  dataset: string;
  modes: SearchMode[];
  /** Evaluate only the first N judged queries. */
  limit?: number;
  /** Relative to the dataset folder; default queries.jsonl and qrels/test.tsv. */
  queriesFile?: string;
  qrelsFile?: string;
  /**
   * Keep the index in this folder and reuse it next time when it holds the same corpus, model and chunker
   * (so tuning runs do not re-embed the corpus). Without it a temporary index is built and deleted.
   */
  keepIndex?: string;
  /** Articles retrieved per query (default MAX_K = 100, so Recall@100 is measurable). */
  k?: number;
  search?: SearchOverrides;
  config: Config;
  embedder: Embedder;
  onProgress?: (e: EvalProgress) => void;
}

export type EvalProgress = { stage: 'index'; articlesDone: number; articlesTotal: number } | { stage: 'query'; mode: SearchMode; done: number; total: number };

export interface ModeReport {
  mode: SearchMode;
  ndcg10: number;
  recall10: number;
  recall100: number;
  mrr10: number;
  /** Median wall time of one `Quarry.search` call (query embedding included), in ms. */
  latencyP50Ms: number;
}

export interface EvalReport {
  dataset: string;
  queriesFile: string;
  qrelsFile: string;
  documents: number;
  chunks: number;
  queries: number;
  k: number;
  /** Seconds to chunk, embed and store the corpus (from the reused index's manifest when reused). */
  indexSeconds: number;
  indexReused: boolean;
  search: SearchOverrides;
  modes: ModeReport[];
}

export const DEFAULT_QUERIES_FILE = 'queries.jsonl';
export const DEFAULT_QRELS_FILE = join('qrels', 'test.tsv');

/** One article per document. An empty text would give an article with nothing to search: the title stands in. */
export function docToArticle(doc: BeirDoc): SourcedArticle {
  const text = cleanParagraph(doc.text);
  const title = cleanParagraph(doc.title);
  return {
    article: { id: doc.id, title: title || doc.id, date: null, source: null, url: null, paragraphs: [text || title || doc.id] },
    origin: 'eval',
  };
}

/** Identifies a corpus, so a kept index is reused only for the same documents. */
export function corpusFingerprint(corpus: readonly BeirDoc[]): string {
  const h = createHash('sha256');
  for (const d of corpus) h.update(d.id).update('\0').update(d.title).update('\0').update(d.text).update('\n');
  return `sha256:${h.digest('hex')}`;
}

export async function runEval(opts: EvalOptions): Promise<EvalReport> {
  const queriesFile = opts.queriesFile ?? DEFAULT_QUERIES_FILE;
  const qrelsFile = opts.qrelsFile ?? DEFAULT_QRELS_FILE;
  const collection = await loadBeir(opts.dataset, { queriesFile, qrelsFile, limit: opts.limit });
  const indexDir = opts.keepIndex ? resolve(opts.keepIndex) : mkdtempSync(join(tmpdir(), 'quarry-eval-'));
  const config: Config = { ...opts.config, indexDir };
  try {
    const { quarry, seconds, reused } = await openEvalIndex(config, opts.embedder, collection, opts.dataset, opts.onProgress);
    try {
      const modes: ModeReport[] = [];
      for (const mode of opts.modes) modes.push(await evaluateMode(quarry, collection, mode, opts));
      return {
        dataset: resolve(opts.dataset),
        queriesFile,
        qrelsFile,
        documents: collection.corpus.length,
        chunks: (await quarry.stats()).chunks,
        queries: collection.queries.length,
        k: opts.k ?? MAX_K,
        indexSeconds: seconds,
        indexReused: reused,
        search: opts.search ?? {},
        modes,
      };
    } finally {
      await quarry.close();
    }
  } finally {
    if (!opts.keepIndex) rmSync(indexDir, { recursive: true, force: true });
  }
}

/** Opens the kept index when it holds this corpus with this model and chunker; otherwise builds one. */
export async function openEvalIndex(
  config: Config,
  embedder: Embedder,
  collection: BeirCollection,
  dataset: string,
  onProgress?: (e: EvalProgress) => void,
): Promise<{ quarry: Quarry; seconds: number; reused: boolean }> {
  const fingerprint = corpusFingerprint(collection.corpus);
  const store = await openStore(config, { identity: identityOf(config, embedder.info), access: 'write' });
  try {
    // Reused only when it holds this corpus embedded with this model and chunker.
    if (store.hasIndex && !store.incompatibility && store.manifest.source.fingerprint === fingerprint) {
      return { quarry: new Quarry({ config, embedder, store }), seconds: store.manifest.buildSeconds, reused: true };
    }
    const report = await buildIndex(store, embedder, config, {
      articles: collection.corpus.map(docToArticle),
      source: { kind: 'folder', path: resolve(dataset), fingerprint },
      onProgress: (p) => onProgress?.({ stage: 'index', articlesDone: p.articlesDone, articlesTotal: p.articlesTotal }),
    });
    return { quarry: new Quarry({ config, embedder, store }), seconds: report.seconds, reused: false };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Every query of the collection in one mode: the run, its metrics and the latency. */
export async function evaluateMode(
  quarry: Quarry,
  collection: Pick<BeirCollection, 'queries' | 'qrels'>,
  mode: SearchMode,
  opts: Pick<EvalOptions, 'k' | 'search' | 'onProgress'> = {},
): Promise<ModeReport> {
  const run: Run = new Map();
  const latencies: number[] = [];
  const k = opts.k ?? MAX_K;
  for (const [i, query] of collection.queries.entries()) {
    const req = SearchRequestSchema.parse({ ...opts.search, q: query.text.slice(0, MAX_QUERY_LENGTH), k, mode, evidence: 1 });
    const started = performance.now();
    const res = await quarry.search(req);
    latencies.push(performance.now() - started);
    run.set(
      query.id,
      res.results.map((r) => ({ docId: r.article.id, score: r.score })),
    );
    opts.onProgress?.({ stage: 'query', mode, done: i + 1, total: collection.queries.length });
  }
  return { mode, ...scoreRun(run, collection.qrels), latencyP50Ms: latencies.length ? percentile(latencies, 50) : 0 };
}

export function scoreRun(run: Run, qrels: Qrels): Omit<ModeReport, 'mode' | 'latencyP50Ms'> {
  const { means } = evaluate(run, qrels, { ks: [10, 100] });
  return { ndcg10: means['ndcg@10'] ?? 0, recall10: means['recall@10'] ?? 0, recall100: means['recall@100'] ?? 0, mrr10: means['mrr@10'] ?? 0 };
}
