import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuarryError } from '../../src/errors.ts';
import { loadBeir } from '../../src/eval/beir.ts';

const dirs: string[] = [];

/** A fresh temp dir holding `files` (relative path → content). */
function collection(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quarry-beir-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const jsonl = (...records: unknown[]): string => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;

/** Runs `fn`, expecting a QuarryError, and returns it. */
async function quarryError(fn: () => Promise<unknown>): Promise<QuarryError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QuarryError);
    return e as QuarryError;
  }
  throw new Error('expected a QuarryError');
}

describe('loadBeir', () => {
  let dir: string;
  beforeAll(() => {
    dir = collection({
      // Split corpus: corpus-00 then corpus-01 (name order), `_id` in one, `id` in the other, a blank line.
      'corpus-01.jsonl': `${jsonl({ id: 'd3', title: 'Three', text: 'third' })}\n${jsonl({ _id: 'd4', text: 'no title' })}`,
      'corpus-00.jsonl': jsonl({ _id: 'd1', title: 'One', text: 'first' }, { _id: 'd2', title: '', text: 'second', metadata: {} }),
      'queries.jsonl': jsonl(
        { _id: 'q0', text: 'not judged' },
        { _id: 'q2', text: 'second query' },
        { _id: 'q1', text: 'first query', metadata: {} },
        { _id: 'q3', text: 'only non-relevant judgements' },
      ),
      'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td3\t2\nq2\td2\t1\nq3\td4\t0\n',
      'queries-train.jsonl': jsonl({ id: 'tq', text: 'training query' }),
      'qrels/train.tsv': 'query-id\tcorpus-id\tscore\r\ntq\td4\t1\r\n', // CRLF line endings
      'notes.jsonl': 'not a corpus file\n',
    });
  });

  it('reads the split corpus in name order, with `_id` or `id`', async () => {
    const { corpus } = await loadBeir(dir);
    expect(corpus).toEqual([
      { id: 'd1', title: 'One', text: 'first' },
      { id: 'd2', title: '', text: 'second' },
      { id: 'd3', title: 'Three', text: 'third' },
      { id: 'd4', title: '', text: 'no title' },
    ]);
  });

  it('keeps the queries with a relevant judgement, in queries-file order, and their qrels', async () => {
    const { queries, qrels } = await loadBeir(dir);
    // q0 has no qrels, q3 only a grade-0 judgement.
    expect(queries).toEqual([
      { id: 'q2', text: 'second query' },
      { id: 'q1', text: 'first query' },
    ]);
    expect([...qrels.keys()]).toEqual(['q2', 'q1']);
    expect(qrels.get('q1')).toEqual(
      new Map([
        ['d1', 1],
        ['d3', 2],
      ]),
    );
    expect(qrels.get('q2')).toEqual(new Map([['d2', 1]]));
  });

  it('limit keeps the first N queries and only their qrels', async () => {
    const { queries, qrels, corpus } = await loadBeir(dir, { limit: 1 });
    expect(queries.map((q) => q.id)).toEqual(['q2']);
    expect([...qrels.keys()]).toEqual(['q2']);
    expect(corpus).toHaveLength(4); // the corpus is never limited
  });

  it('reads another queries file and qrels file', async () => {
    const { queries, qrels } = await loadBeir(dir, { queriesFile: 'queries-train.jsonl', qrelsFile: 'qrels/train.tsv' });
    expect(queries).toEqual([{ id: 'tq', text: 'training query' }]);
    expect(qrels).toEqual(new Map([['tq', new Map([['d4', 1]])]]));
  });

  it('rejects a bad limit', async () => {
    const err = await quarryError(() => loadBeir(dir, { limit: 0 }));
    expect(err.code).toBe('invalid_request');
  });
});

describe('loadBeir errors name the file and line', () => {
  const judged = {
    'queries.jsonl': jsonl({ _id: 'q1', text: 'query' }),
    'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\n',
  };
  const base = { ...judged, 'corpus.jsonl': jsonl({ _id: 'd1', text: 'x' }) };

  it('malformed JSON in a split corpus file', async () => {
    const dir = collection({
      ...judged,
      'corpus-00.jsonl': jsonl({ _id: 'd1', text: 'x' }),
      // line 1 fine, line 2 blank, line 3 broken
      'corpus-01.jsonl': `${jsonl({ _id: 'd2', text: 'y' })}\n{"_id": "d3", "text": \n`,
    });
    const err = await quarryError(() => loadBeir(dir));
    const file = path.join(dir, 'corpus-01.jsonl');
    expect(err.code).toBe('parse_error');
    expect(err.field).toBe(file);
    expect(err.message).toContain(`${file}:3:`);
    expect(err.details).toEqual({ line: 3 });
  });

  it('a record without an id', async () => {
    const dir = collection({ ...base, 'queries.jsonl': jsonl({ _id: 'q1', text: 'ok' }, { text: 'no id' }) });
    const err = await quarryError(() => loadBeir(dir));
    expect(err.message).toContain(`${path.join(dir, 'queries.jsonl')}:2:`);
    expect(err.message).toMatch(/"_id" or "id"/);
  });

  it('a qrels line with a non-numeric score', async () => {
    const dir = collection({ ...base, 'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\thigh\n' });
    const err = await quarryError(() => loadBeir(dir));
    expect(err.field).toBe(path.join(dir, 'qrels', 'test.tsv'));
    expect(err.message).toContain(':3:');
  });

  it('a judged query missing from the queries file', async () => {
    const dir = collection({ ...base, 'qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq9\td1\t1\n' });
    const err = await quarryError(() => loadBeir(dir));
    expect(err.message).toContain(`${path.join(dir, 'qrels', 'test.tsv')}:3:`);
    expect(err.message).toContain('"q9"');
  });

  it('a duplicate document id', async () => {
    const dir = collection({ ...base, 'corpus.jsonl': jsonl({ _id: 'd1', text: 'x' }, { id: 'd1', text: 'again' }) });
    const err = await quarryError(() => loadBeir(dir));
    expect(err.message).toContain(`${path.join(dir, 'corpus.jsonl')}:2: duplicate document id "d1"`);
  });

  it('a missing file', async () => {
    const dir = collection(base);
    const err = await quarryError(() => loadBeir(dir, { queriesFile: 'queries-dev.jsonl' }));
    expect(err.code).toBe('not_found');
    expect(err.field).toBe(path.join(dir, 'queries-dev.jsonl'));
  });
});
