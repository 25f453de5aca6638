/**
 * Loads a retrieval test collection laid out as BEIR distributes them:
 *
 *   <dir>/corpus.jsonl            {"_id"|"id", "title"?, "text"} per line — or split as corpus-00.jsonl, corpus-01.jsonl…
 *   <dir>/queries.jsonl           {"_id"|"id", "text"} per line
 *   <dir>/qrels/test.tsv          query-id <TAB> corpus-id <TAB> score, with a header row
 *
 * Files are streamed line by line. Every parse error names the file and the 1-based line.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { QuarryError } from '../errors.ts';
import type { Qrels } from './metrics.ts';

export interface BeirDoc {
  id: string;
  title: string;
  text: string;
}

export interface BeirQuery {
  id: string;
  text: string;
}

export interface BeirCollection {
  /** Every document, in file order (split files concatenated in name order). */
  corpus: BeirDoc[];
  /** Queries with at least one relevant judgement, in queries-file order, at most `limit`. */
  queries: BeirQuery[];
  /** Judgements of exactly the returned queries, in the same order. */
  qrels: Qrels;
}

export interface LoadBeirOptions {
  /** Relative to `dir` (or absolute). Default `queries.jsonl`; e.g. `queries-train.jsonl`. */
  queriesFile?: string;
  /** Relative to `dir` (or absolute). Default `qrels/test.tsv`; e.g. `qrels/train.tsv`. */
  qrelsFile?: string;
  /** Keep only the first N queries (in queries-file order) that have a relevant judgement. */
  limit?: number;
}

/** `corpus.jsonl`, `corpus-00.jsonl`, … Name order is plain code-unit order, so split files need zero-padded numbers. */
const CORPUS_FILE = /^corpus.*\.jsonl$/;

const parseError = (file: string, line: number, message: string): QuarryError =>
  new QuarryError('parse_error', `${file}:${line}: ${message}`, { field: file, details: { line } });

const fileError = (file: string, e: unknown): QuarryError => {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT'
    ? new QuarryError('not_found', `${file}: no such file`, { field: file, cause: e })
    : new QuarryError('internal', `${file}: cannot read (${code ?? String(e)})`, { field: file, cause: e });
};

/** Non-blank lines with their 1-based physical line numbers (blank lines still count). */
async function* readLines(file: string): AsyncGenerator<{ text: string; line: number }> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const rl = createInterface({ input: stream, crlfDelay: Infinity }); // crlfDelay: \r\n is one line break
  let line = 0;
  try {
    for await (const raw of rl) {
      line++;
      const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw; // a BOM would break JSON.parse on line 1
      if (text.trim() === '') continue;
      yield { text, line };
    }
  } catch (e) {
    // Only read errors land here (readline forwards the stream's ENOENT, EISDIR…): an exception in the
    // consumer's loop body does not enter the generator, it just runs `finally`.
    throw fileError(file, e);
  } finally {
    rl.close();
    stream.destroy(); // the caller may stop early (limit): release the file
  }
}

/** One JSON object per line, with an `_id` (BEIR) or `id`. Numeric ids are accepted and turned into strings. */
async function* readJsonl(file: string): AsyncGenerator<{ record: Record<string, unknown>; id: string; line: number }> {
  for await (const { text, line } of readLines(file)) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw parseError(file, line, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw parseError(file, line, 'expected a JSON object');
    }
    const record = value as Record<string, unknown>;
    const rawId = record._id ?? record.id;
    if (!((typeof rawId === 'string' && rawId !== '') || (typeof rawId === 'number' && Number.isFinite(rawId)))) {
      throw parseError(file, line, 'needs a non-empty string "_id" or "id"');
    }
    yield { record, id: String(rawId), line };
  }
}

const stringField = (record: Record<string, unknown>, key: string, file: string, line: number, required: boolean): string => {
  const v = record[key];
  if (v === undefined || v === null) {
    if (required) throw parseError(file, line, `needs a string "${key}"`);
    return '';
  }
  if (typeof v !== 'string') throw parseError(file, line, `"${key}" must be a string`);
  return v;
};

async function loadCorpus(dir: string): Promise<BeirDoc[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw fileError(dir, e);
  }
  const files = names.filter((n) => CORPUS_FILE.test(n)).sort();
  if (files.length === 0) throw new QuarryError('not_found', `${dir}: no corpus*.jsonl file`, { field: dir });

  const corpus: BeirDoc[] = [];
  const seen = new Set<string>(); // ids are how qrels refer to documents: a duplicate would be ambiguous
  for (const name of files) {
    const file = path.join(dir, name);
    for await (const { record, id, line } of readJsonl(file)) {
      if (seen.has(id)) throw parseError(file, line, `duplicate document id "${id}"`);
      seen.add(id);
      corpus.push({ id, title: stringField(record, 'title', file, line, false), text: stringField(record, 'text', file, line, true) });
    }
  }
  return corpus;
}

/** Qrels plus, per query, the line where it is first judged (to point at it if the query text is missing). */
async function loadQrels(file: string): Promise<{ qrels: Qrels; firstLine: Map<string, number> }> {
  const qrels: Qrels = new Map();
  const firstLine = new Map<string, number>();
  let first = true;
  for await (const { text, line } of readLines(file)) {
    const cells = text.split('\t').map((c) => c.trim());
    const isFirst = first;
    first = false;
    // BEIR files start with "query-id\tcorpus-id\tscore"; recognise a header by its non-numeric score so that a
    // header-less file loses no judgement.
    if (isFirst && cells.length === 3 && !isNumeric(cells[2]!)) continue;
    if (cells.length !== 3) throw parseError(file, line, `expected 3 tab-separated columns (query-id, doc-id, score), got ${cells.length}`);
    const [queryId, docId, scoreText] = cells as [string, string, string];
    if (queryId === '' || docId === '') throw parseError(file, line, 'empty query-id or doc-id');
    if (!isNumeric(scoreText)) throw parseError(file, line, `score "${scoreText}" is not a number`);
    const score = Number(scoreText);

    let rels = qrels.get(queryId);
    if (rels === undefined) {
      rels = new Map();
      qrels.set(queryId, rels);
      firstLine.set(queryId, line);
    }
    // A repeated pair with the same grade is harmless; with a different one we cannot know which is meant.
    const previous = rels.get(docId);
    if (previous !== undefined && previous !== score) {
      throw parseError(file, line, `query "${queryId}" judges document "${docId}" again with a different score (${previous}, then ${score})`);
    }
    rels.set(docId, score);
  }
  return { qrels, firstLine };
}

const isNumeric = (s: string): boolean => s !== '' && Number.isFinite(Number(s));

const hasRelevant = (rels: ReadonlyMap<string, number>): boolean => [...rels.values()].some((g) => g > 0);

/**
 * Loads `dir`. Queries without a relevant judgement are dropped: evaluate() would skip them anyway, and counting
 * them towards `limit` would evaluate fewer queries than asked. The returned qrels hold only the returned
 * queries, so a limited load is scored against its own queries only (evaluate() counts a qrels query missing
 * from the run as 0). The corpus is never limited: fewer documents would make retrieval easier.
 */
export async function loadBeir(dir: string, options: LoadBeirOptions = {}): Promise<BeirCollection> {
  const { limit } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new QuarryError('invalid_request', `limit must be a positive integer, got ${limit}`, { field: 'limit' });
  }
  const queriesFile = path.resolve(dir, options.queriesFile ?? 'queries.jsonl');
  const qrelsFile = path.resolve(dir, options.qrelsFile ?? path.join('qrels', 'test.tsv'));

  // Qrels first: they decide which queries to keep, and then the queries file can stop at `limit`.
  const { qrels: allQrels, firstLine } = await loadQrels(qrelsFile);
  const queries: BeirQuery[] = [];
  const qrels: Qrels = new Map();
  const seen = new Set<string>();
  for await (const { record, id, line } of readJsonl(queriesFile)) {
    if (seen.has(id)) throw parseError(queriesFile, line, `duplicate query id "${id}"`);
    seen.add(id);
    const rels = allQrels.get(id);
    if (rels === undefined || !hasRelevant(rels)) continue;
    queries.push({ id, text: stringField(record, 'text', queriesFile, line, true) });
    qrels.set(id, rels);
    if (queries.length === limit) break;
  }

  // Having read the whole queries file, every judged query must have turned up; otherwise its text is missing
  // and the evaluation would silently cover fewer queries than the qrels say.
  if (queries.length !== limit) {
    for (const [queryId, rels] of allQrels) {
      if (!seen.has(queryId) && hasRelevant(rels)) {
        throw parseError(qrelsFile, firstLine.get(queryId) ?? 0, `query "${queryId}" is not in ${queriesFile}`);
      }
    }
  }

  const corpus = await loadCorpus(dir);
  return { corpus, queries, qrels };
}
