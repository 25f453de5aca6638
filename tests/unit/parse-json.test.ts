import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadArticleFolder } from '../../src/corpus/load-folder.ts';
import { parseJsonArticles, parseJsonlArticles } from '../../src/corpus/parse-json.ts';

const dir = mkdtempSync(join(tmpdir(), 'quarry-parse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('JSON articles', () => {
  it('accepts text (split on blank lines) or paragraphs, with optional metadata', () => {
    const [a] = parseJsonArticles(
      JSON.stringify({ id: 'a1', title: ' T ', date: '2024-01-02', source: 'Wire', text: 'One.\r\n\r\nTwo  words.\n\n\n' }),
      'a.json',
    );
    expect(a).toEqual({ id: 'a1', title: 'T', date: '2024-01-02', source: 'Wire', url: null, tags: [], paragraphs: ['One.', 'Two words.'] });
    const [b] = parseJsonArticles(JSON.stringify({ articles: [{ id: 'b', title: 'B', paragraphs: ['x', ' ', 'y'] }] }), 'b.json');
    expect(b!.paragraphs).toEqual(['x', 'y']);
  });

  it.each([
    [{ title: 'no id', text: 'x' }, /id/],
    [{ id: '../etc', title: 't', text: 'x' }, /id: may contain only/],
    [{ id: 'a'.repeat(201), title: 't', text: 'x' }, /id: must be at most 200/],
    [{ id: 'x', text: 'body' }, /title/],
    [{ id: 'x', title: 't' }, /needs `text` or `paragraphs`/],
    [{ id: 'x', title: 't', paragraphs: ['', '  '] }, /at least one non-empty paragraph/],
    [{ id: 'x', title: 't', text: 'x', date: '04/12/2023' }, /date: must be an ISO 8601 date/],
    [{ id: 'x', title: 't', text: 'x', date: '2023-02-30' }, /date: is not a real calendar date/],
    [{ id: 'x', title: 't', text: 'x', colour: 'red' }, /unknown field `colour`/],
  ])('reports %j by file name and reason', (value, reason) => {
    expect(() => parseJsonArticles(JSON.stringify(value), 'bad.json')).toThrow(reason);
    expect(() => parseJsonArticles(JSON.stringify(value), 'bad.json')).toThrow(/^bad\.json: /);
  });

  it('reports invalid JSON by file name', () => {
    expect(() => parseJsonArticles('{"id": ', 'broken.json')).toThrow(/broken\.json: invalid JSON/);
  });

  it('reads JSONL line by line and reports bad lines by file and line number', () => {
    const { articles, errors } = parseJsonlArticles(
      ['{"id":"a","title":"A","text":"x"}', '', 'not json', '{"id":"b","title":"B","text":"y"}', '{"id":"c"}'].join('\n'),
      'feed.jsonl',
    );
    expect(articles.map((a) => a.id)).toEqual(['a', 'b']);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/^feed\.jsonl:3: invalid JSON/), expect.stringMatching(/^feed\.jsonl:5: /)]);
  });
});

describe('loadArticleFolder', () => {
  it('indexes the readable files and reports the others by name', async () => {
    writeFileSync(join(dir, '001_good.txt'), ' date 2024-01-01 Good title\n\nGood body paragraph with words.\n');
    writeFileSync(join(dir, '002_empty.txt'), '');
    writeFileSync(join(dir, 'feed.jsonl'), '{"id":"j1","title":"J","text":"jsonl body"}\n{"id":"good","title":"dup","text":"dup"}\n');
    writeFileSync(join(dir, 'broken.json'), '{');
    writeFileSync(join(dir, 'notes.md'), '# not an article');
    const loaded = await loadArticleFolder(dir);
    expect(loaded.articles.map((a) => a.id).sort()).toEqual(['good', 'j1']);
    expect(loaded.errors.map((e) => e.message).sort()).toEqual([
      expect.stringMatching(/^002_empty\.txt: the file is empty/),
      expect.stringMatching(/^broken\.json: invalid JSON/),
      expect.stringMatching(/^feed\.jsonl: article id good already came from 001_good\.txt/),
    ]);
  });

  it('names the folder when it cannot be read', async () => {
    await expect(loadArticleFolder(join(dir, 'missing'))).rejects.toThrow(/cannot read the articles folder .*missing: ENOENT/);
  });
});
