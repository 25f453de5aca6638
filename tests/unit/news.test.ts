import { describe, expect, it } from 'vitest';
import { reutersDate, toArticle } from '../../scripts/dataset-to-articles.mjs';
import { ArticleInputSchema, articleContentHash, dateKey, normaliseArticle } from '../../src/corpus/article.ts';
import { duplicateTextHash, isNearDuplicate, numbersAgreement, pairScore } from '../../src/corpus/duplicates.ts';
import { bestSentence } from '../../src/search/best-sentence.ts';
import type { FusedChunk } from '../../src/search/fuse.ts';
import { MAX_DEPTH, SearchRequestSchema, SimilarRequestSchema } from '../../src/search/schema.ts';
import { collapseStories, countFacets, recencyFactor, type ScoredArticle, sortStories } from '../../src/search/stories.ts';
import { parseHighlight } from '../../src/store/sqlite/database.ts';
import type { ArticleMeta } from '../../src/store/store.ts';

const firstIssue = (r: { success: boolean; error?: { issues: Array<{ path: PropertyKey[]; message: string }> } }) => {
  expect(r.success).toBe(false);
  return { field: r.error!.issues[0]!.path.map(String).join('.'), message: r.error!.issues[0]!.message };
};

describe('article tags', () => {
  it('are trimmed and deduplicated ignoring case, keeping the first spelling; absent means none', () => {
    const a = normaliseArticle(ArticleInputSchema.parse({ id: 'a', title: 'T', text: 'x', tags: [' Economy ', 'economy', 'ECONOMY', 'Belarus', 'belarus '] }));
    expect(a.tags).toEqual(['Economy', 'Belarus']);
    expect(normaliseArticle(ArticleInputSchema.parse({ id: 'b', title: 'T', text: 'x' })).tags).toEqual([]);
  });

  it('are refused, naming the field, when empty, too long, too many or not strings', () => {
    const base = { id: 'a', title: 'T', text: 'x' };
    expect(firstIssue(ArticleInputSchema.safeParse({ ...base, tags: ['ok', '  '] })).field).toBe('tags.1');
    expect(firstIssue(ArticleInputSchema.safeParse({ ...base, tags: ['x'.repeat(101)] })).field).toBe('tags.0');
    expect(firstIssue(ArticleInputSchema.safeParse({ ...base, tags: Array.from({ length: 51 }, (_, i) => `t${i}`) })).field).toBe('tags');
    expect(firstIssue(ArticleInputSchema.safeParse({ ...base, tags: 'economy' })).field).toBe('tags');
    expect(firstIssue(ArticleInputSchema.safeParse({ ...base, tags: [3] })).field).toBe('tags.0');
  });

  it('change the content hash only when there are some (untagged articles keep their old hash)', () => {
    const a = normaliseArticle(ArticleInputSchema.parse({ id: 'a', title: 'T', text: 'x' }));
    const { tags: _t, ...untagged } = a;
    expect(articleContentHash(a)).toBe(articleContentHash(untagged));
    expect(articleContentHash({ ...a, tags: ['economy'] })).not.toBe(articleContentHash(a));
  });

  it('dates filter by the calendar date as written, not converted to UTC', () => {
    expect(dateKey('2023-12-04T23:30:00-05:00')).toBe('2023-12-04');
    expect(dateKey(null)).toBeNull();
  });
});

describe('search request: filters, paging, facets', () => {
  const q = { q: 'x' };
  it('takes one or several sources and tags, the same from a query string and a JSON body', () => {
    const get = SearchRequestSchema.parse({ ...q, source: ['Xinhua', 'Reuters'], tag: 'economy', facets: 'source, tag', collapse: 'false' });
    const post = SearchRequestSchema.parse({ ...q, source: ['Xinhua', 'Reuters'], tag: ['economy'], facets: ['source', 'tag'], collapse: false });
    expect(get).toEqual(post);
    expect(get.source).toEqual(['Xinhua', 'Reuters']);
    expect(get.facets).toEqual(['source', 'tag']);
  });

  it('defaults: relevance order, offset 0, collapsed, no filters', () => {
    const r = SearchRequestSchema.parse(q);
    expect(r).toMatchObject({ sort: 'relevance', offset: 0, collapse: true });
    expect(r.source).toBeUndefined();
  });

  it.each([
    [{ from: '2023-13-01' }, 'from'],
    [{ from: '2023-02-30' }, 'from'],
    [{ to: 'yesterday' }, 'to'],
    [{ from: '2024-01-02', to: '2024-01-01' }, 'from'],
    [{ facets: 'source,author' }, 'facets'],
    [{ facets: ['year', 'colour'] }, 'facets'],
    [{ offset: MAX_DEPTH - 5, k: 10 }, 'offset'],
    [{ offset: -1 }, 'offset'],
    [{ recency: '30 days' }, 'recency'],
    [{ recency: '0d' }, 'recency'],
    [{ recencyDate: '2024-1-1' }, 'recencyDate'],
    [{ sort: 'newest' }, 'sort'],
    [{ source: Array.from({ length: 51 }, (_, i) => `s${i}`) }, 'source'],
    [{ tag: [''] }, 'tag.0'],
  ])('refuses %j naming %s', (extra, field) => {
    expect(firstIssue(SearchRequestSchema.safeParse({ ...q, ...extra })).field).toBe(field);
  });

  it('reads recency half-lives in days or hours', () => {
    expect(SearchRequestSchema.parse({ ...q, recency: '30d' }).recency).toBe(30);
    expect(SearchRequestSchema.parse({ ...q, recency: '12h' }).recency).toBe(0.5);
  });

  it('lets a page end exactly at the maximum depth, and the similar request shares the rules', () => {
    expect(SearchRequestSchema.parse({ ...q, offset: MAX_DEPTH - 10, k: 10 }).offset).toBe(MAX_DEPTH - 10);
    expect(firstIssue(SimilarRequestSchema.safeParse({ offset: MAX_DEPTH })).field).toBe('offset');
    expect(firstIssue(SimilarRequestSchema.safeParse({ from: '2024-01-02', to: '2023-01-01' })).field).toBe('from');
  });
});

const meta = (id: string, date: string | null, source: string | null = null, tags: string[] = []): ArticleMeta => ({
  id,
  title: id,
  date,
  source,
  url: null,
  tags,
});
const scored = (key: number, score: number): ScoredArticle => ({ key, relevance: score, score, recencyFactor: null, chunks: [] as FusedChunk[] });

describe('stories: recency, collapse, sort, facets', () => {
  it('halves a score every half-life from the reference date; later articles are not boosted, undated ones sink', () => {
    const r = { reference: '2024-03-31', halfLifeDays: 30 };
    expect(recencyFactor('2024-03-31', r)).toBe(1);
    expect(recencyFactor('2024-03-01T10:00:00Z', r)).toBeCloseTo(0.5, 10);
    expect(recencyFactor('2024-01-31', r)).toBeCloseTo(0.25, 10); // 60 days (2024 is a leap year)
    expect(recencyFactor('2024-05-01', r)).toBe(1);
    expect(recencyFactor(null, r)).toBe(0);
    expect(recencyFactor('2020-01-01', { reference: null, halfLifeDays: 1 })).toBe(1);
  });

  it('collapses a group into its best member, at equal scores the earliest date then the smallest id', () => {
    const metas = new Map([
      [1, meta('b', '2024-01-02')],
      [2, meta('a', '2024-01-02')],
      [3, meta('c', '2024-01-01')],
      [4, meta('d', '2024-01-05')],
    ]);
    const groups = new Map([
      [1, 7],
      [2, 7],
      [3, 8],
      [4, 8],
    ]);
    const stories = collapseStories([scored(4, 0.9), scored(1, 0.8), scored(2, 0.8), scored(3, 0.9)], groups, metas, true);
    expect(stories.map((s) => [s.rep.key, s.group])).toEqual([
      [3, 8],
      [2, 7],
    ]);
    expect(collapseStories([scored(1, 0.8), scored(2, 0.8)], groups, metas, false).map((s) => s.rep.key)).toEqual([1, 2]);
  });

  it('sorts by date newest first, undated last, equal dates by score', () => {
    const metas = new Map([
      [1, meta('a', '2024-01-01')],
      [2, meta('b', null)],
      [3, meta('c', '2024-02-01T08:00:00Z')],
      [4, meta('d', '2024-02-01')],
    ]);
    const stories = [scored(1, 0.9), scored(2, 0.8), scored(3, 0.5), scored(4, 0.7)].map((rep) => ({ rep, group: null }));
    expect(sortStories(stories, 'date', metas).map((s) => s.rep.key)).toEqual([4, 3, 1, 2]);
    expect(sortStories(stories, 'relevance', metas)).toBe(stories);
  });

  it('counts facets once per story, case-insensitively, in the most frequent spelling, by count then value', () => {
    const metas = new Map([
      [1, meta('a', '2023-05-01', 'Xinhua', ['Economy', 'economy'])],
      [2, meta('b', '2024-01-01', 'XINHUA', ['economy', 'Belarus'])],
      [3, meta('c', '2024-02-01', 'xinhua', ['Belarus'])],
      [4, meta('d', null, null, [])],
      [5, meta('e', '2024-03-01', 'Reuters', ['economy'])],
    ]);
    const stories = [1, 2, 3, 4, 5].map((k) => ({ rep: scored(k, 1), group: null }));
    const f = countFacets(stories, ['source', 'tag', 'year'], metas);
    expect(f.source).toEqual([
      { value: 'XINHUA', count: 3 },
      { value: 'Reuters', count: 1 },
    ]);
    expect(f.tag).toEqual([
      { value: 'economy', count: 3 },
      { value: 'Belarus', count: 2 },
    ]);
    expect(f.year).toEqual([
      { value: '2024', count: 3 },
      { value: '2023', count: 1 },
    ]);
  });
});

describe('highlights and the best sentence', () => {
  it('parses highlight() markers into offsets of the unmarked text, in UTF-16 code units', () => {
    const text = '🚀 Belarus — Cooperation grows. Industrial park.';
    const marked = '🚀 \u0002Belarus\u0003 — \u0002Cooperation\u0003 grows. \u0002Industrial\u0003 park.';
    const ranges = parseHighlight(marked, '\u0002', '\u0003');
    expect(ranges.map((r) => text.slice(r.start, r.end))).toEqual(['Belarus', 'Cooperation', 'Industrial']);
  });

  it('picks the sentence with the most distinct terms, then the most matches, and null without matches', () => {
    const text = 'China and China again. China and Belarus met. Nothing here.';
    const at = (w: string, from = 0) => ({ start: text.indexOf(w, from), end: text.indexOf(w, from) + w.length });
    const matches = [at('China'), at('China', 5), at('China', 20), at('Belarus')];
    const s = bestSentence(text, matches, ['china', 'belarus'])!;
    expect(text.slice(s.start, s.end)).toBe('China and Belarus met.');
    expect(bestSentence(text, [], ['china'])).toBeNull();
    // One word from a stem counts once: "cooperation" and "cooperating" are one query term.
    const t2 = 'Cooperation and cooperating. Cooperation with Belarus.';
    const m2 = [
      { start: 0, end: 11 },
      { start: 16, end: 27 },
      { start: 29, end: 40 },
      { start: 46, end: 53 },
    ];
    const s2 = bestSentence(t2, m2, ['cooperation', 'belarus'])!;
    expect(t2.slice(s2.start, s2.end)).toBe('Cooperation with Belarus.');
  });
});

describe('duplicates and datasets', () => {
  it('compares texts for exact duplicates ignoring case, punctuation and whitespace, and titles unless the text is short', () => {
    const long = Array.from({ length: 45 }, (_, i) => `word${i}`).join(' ');
    expect(duplicateTextHash({ title: 'A', paragraphs: [`Xi met Lukashenko. ${long}`, 'Trade grew!'] })).toBe(
      duplicateTextHash({ title: 'B', paragraphs: [`xi met  LUKASHENKO ${long}`, 'trade grew'] }),
    );
    expect(duplicateTextHash({ title: 'A', paragraphs: [`Xi met Lukashenko. ${long}`] })).not.toBe(
      duplicateTextHash({ title: 'A', paragraphs: [`Xi met Putin. ${long}`] }),
    );
    // A brief: "Qtly div 15 cts vs 15 cts prior" says nothing of whose dividend; the title does.
    const brief = ['Qtly div 15 cts vs 15 cts prior', 'Pay April 1', 'Record March 16'];
    expect(duplicateTextHash({ title: 'ACME SETS QUARTERLY', paragraphs: brief })).not.toBe(
      duplicateTextHash({ title: 'EMCA SETS QUARTERLY', paragraphs: brief }),
    );
    expect(duplicateTextHash({ title: 'Acme sets quarterly', paragraphs: brief })).toBe(duplicateTextHash({ title: 'ACME SETS QUARTERLY', paragraphs: brief }));
  });

  it('near duplicates need their figures to agree, and a short text its title', () => {
    const e = (i: number) => Float32Array.from({ length: 4 }, (_, d) => (d === i ? 1 : 0));
    const words = 'and so the market went on much as it had before that day '.repeat(4);
    const fed = (amount: string, rate: string) => ({
      title: 'FED ADDS RESERVES',
      paragraphs: [`The Fed arranged ${amount} billion dlrs of repurchases. ${words}`, `Funds traded at ${rate} pct.`],
      vectors: [e(0), e(1)],
    });
    expect(numbersAgreement(fed('1.5', '6-3/16'), fed('1.5', '6-3/16'))).toBe(1);
    expect(isNearDuplicate(fed('1.5', '6-3/16'), fed('1.5', '6-3/16'))).toBe(true);
    expect(isNearDuplicate(fed('1.5', '6-3/16'), fed('2.0', '6-1/4'))).toBe(false);
    // An expanded version keeps the figures of the shorter one.
    const longer = { ...fed('1.5', '6-3/16'), paragraphs: [...fed('1.5', '6-3/16').paragraphs, 'Another 3 figures: 7 and 9.'] };
    expect(numbersAgreement(fed('1.5', '6-3/16'), longer)).toBe(1);
    const brief = (title: string) => ({ title, paragraphs: ['Qtly div 15 cts vs 15 cts prior'], vectors: [e(2)] });
    expect(isNearDuplicate(brief('ACME SETS QUARTERLY'), brief('EMCA SETS QUARTERLY'))).toBe(false);
    expect(isNearDuplicate(brief('ACME SETS QUARTERLY'), brief('Acme sets quarterly'))).toBe(true);
  });

  it('scores a pair by the share of paragraphs with a counterpart, on the weaker side', () => {
    const e = (i: number) => Float32Array.from({ length: 4 }, (_, d) => (d === i ? 1 : 0));
    expect(pairScore([e(0), e(1)], [e(0), e(1), e(2), e(3)])).toEqual({ aShare: 1, bShare: 0.5, score: 0.5 });
    expect(pairScore([e(0)], [])).toEqual({ aShare: 0, bShare: 0, score: 0 });
  });

  it('reads Reuters dates into ISO 8601, and maps dataset labels to tags', () => {
    expect(reutersDate('26-FEB-1987 15:01:01.79')).toBe('1987-02-26T15:01:01.79');
    expect(reutersDate('3-MAR-1987  09:15:05.40')).toBe('1987-03-03T09:15:05.40');
    expect(reutersDate('31-MAR-1987 605:12:19.12')).toBe('1987-03-31');
    expect(reutersDate('30-FEB-1987 10:00:00.00')).toBeNull();
    const r = toArticle('reuters21578', { id: '1', title: 'COCOA', text: 'Showers.', date: '26-FEB-1987 15:01:01.79', topics: ['cocoa'], places: ['usa'] });
    expect(r).toMatchObject({ date: '1987-02-26T15:01:01.79', tags: ['cocoa', 'usa'], source: 'Reuters' });
    expect(toArticle('bbc-news', { id: 'business/001', title: 'T', text: 'x', category: 'business' })).toMatchObject({
      id: 'business-001',
      tags: ['business'],
    });
    expect(ArticleInputSchema.safeParse(r).success).toBe(true);
  });
});
