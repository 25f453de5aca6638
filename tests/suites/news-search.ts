import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SearchResponse } from '../../src/search/schema.ts';
import type { SimilarResponse } from '../../src/search/similar.ts';
import type { IndexTarget, TestBackend } from '../helpers/backends.ts';
import { FIXTURES_DIR, type RealService, ROOT, startRealService, testConfig } from '../helpers/real-service.ts';

/*
 * Newsroom search end to end: the real model, a real index built from a small news collection written for
 * these tests (tests/fixtures/news.jsonl: dates, sources, tags, one story published three times — an exact
 * copy under another headline and an edited copy), the HTTP API and the CLI. Run against both backends:
 * tests/e2e/news-search.test.ts (SQLite), tests/postgres/pg-search.test.ts (PostgreSQL).
 */

interface Fixture {
  id: string;
  title: string;
  date: string | null;
  source: string;
  tags: string[];
}
const FIXTURE: Fixture[] = readFileSync(join(FIXTURES_DIR, 'news.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Fixture);
const byId = new Map(FIXTURE.map((a) => [a.id, a]));
const PARK_GROUP = ['xh-park-2023', 'pd-park-2023', 'tass-park-2023'];

const API_KEY = 'news-search-test-key-0123456789';

export function newsSearchSuite(backend: TestBackend): void {
  let service: RealService;
  let seeds: string;
  let target: IndexTarget;

  const get = async <T = SearchResponse>(path: string, params: Record<string, string | string[]> = {}): Promise<{ status: number; body: T }> => {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
    const res = await fetch(`${service.url}${path}?${qs}`);
    return { status: res.status, body: (await res.json()) as T };
  };
  const post = async (body: unknown): Promise<{ status: number; body: SearchResponse }> => {
    const res = await fetch(`${service.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as SearchResponse };
  };
  const ids = (r: SearchResponse | SimilarResponse) => r.results.map((x) => x.article.id);
  const errorField = (body: unknown) => (body as { error: { field?: string } }).error.field;

  beforeAll(async () => {
    seeds = mkdtempSync(join(tmpdir(), 'quarry-news-seeds-'));
    cpSync(join(FIXTURES_DIR, 'news.jsonl'), join(seeds, 'news.jsonl'));
    target = await backend.newIndex();
    service = await startRealService({ seedsDir: seeds, config: testConfig({ seedsDir: seeds, apiKey: API_KEY, ...target.config }) });
  });

  afterAll(async () => {
    await service?.dispose();
    if (seeds) rmSync(seeds, { recursive: true, force: true });
  });

  describe('filters inside retrieval', () => {
    it.each(['hybrid', 'semantic', 'lexical'])('%s: only matching articles, the best k of them, with the path in explain', async (mode) => {
      const { status, body } = await get('/search', {
        q: 'China Belarus industrial cooperation',
        mode,
        source: ['xinhua', 'TASS'],
        explain: 'true',
        collapse: 'false',
      });
      expect(status).toBe(200);
      expect(body.results.length).toBeGreaterThan(0);
      for (const r of body.results) expect(['Xinhua', 'TASS']).toContain(r.article.source);
      const r = body.explain!.retrieval;
      expect(r.filtered).toBe(true);
      expect(r.matchingArticles).toBe(FIXTURE.filter((a) => ['Xinhua', 'TASS'].includes(a.source)).length);
      expect(r.dense).toBe(mode === 'lexical' ? null : 'exact-scan');
      expect(r.lexical).toBe(mode === 'semantic' ? null : 'fts5-filtered');
      expect(r.selectivity).toBeGreaterThan(0);
      expect(r.selectivity).toBeLessThan(1);
    });

    it('returns the k matching articles even when none of them would rank in the unfiltered top k', async () => {
      const q = 'China Belarus industrial park cooperation';
      const unfiltered = await get('/search', { q, mode: 'semantic', k: '3' });
      const sport = FIXTURE.filter((a) => a.tags.includes('sport')).map((a) => a.id);
      expect(ids(unfiltered.body).some((id) => sport.includes(id))).toBe(false);
      const { body } = await get('/search', { q, mode: 'semantic', k: '3', tag: 'Sport' });
      expect(ids(body).sort()).toEqual(sport.sort());
      expect(body.total).toBe(sport.length);
    });

    it('dates: inclusive calendar days; undated articles never match a date bound', async () => {
      const { body } = await get('/search', { q: 'news', mode: 'semantic', k: '50', from: '2023-12-04', to: '2023-12-05', collapse: 'false' });
      expect(ids(body).sort()).toEqual(['pd-park-2023', 'xh-park-2023']);
      const open = await get('/search', { q: 'museum paintings', mode: 'semantic', k: '50', to: '2030-01-01' });
      expect(ids(open.body)).not.toContain('undated-museum');
    });

    it('GET (repeated parameters, comma-separated facets) and POST (arrays) are the same request', async () => {
      const q = { q: 'trade and economy', source: ['Xinhua', 'AP'], tag: ['economy', 'trade'], from: '2023-01-01', facets: 'source,year' };
      const a = await get('/search', q);
      const b = await post({ ...q, facets: ['source', 'year'] });
      expect(a.status).toBe(200);
      expect(ids(b.body)).toEqual(ids(a.body));
      expect(b.body.facets).toEqual(a.body.facets);
      expect(b.body.total).toBe(a.body.total);
    });
  });

  describe('sort, recency, paging, facets', () => {
    it('sort=date: newest first among the matching stories, undated last', async () => {
      const { body } = await get('/search', { q: 'economy rates trade harvest museum', mode: 'lexical', sort: 'date', k: '50' });
      const dates = body.results.map((r) => r.article.date);
      const dated = dates.filter((d): d is string => d !== null);
      expect(dated).toEqual([...dated].sort().reverse());
      expect(dates.indexOf(null)).toBe(dates.includes(null) ? dates.length - 1 : -1);
      expect(ids(body)).toContain('undated-museum');
    });

    it('recency decays scores from the newest article date and says so in explain', async () => {
      const { body } = await get('/search', { q: 'interest rates inflation', mode: 'semantic', recency: '30d', explain: 'true' });
      const newest = FIXTURE.map((a) => a.date)
        .filter((d): d is string => d !== null)
        .sort()
        .at(-1);
      expect(body.explain!.recency).toEqual({ referenceDate: newest, halfLifeDays: 30 });
      for (const r of body.results) {
        expect(r.explain!.recencyFactor).toBeGreaterThanOrEqual(0);
        expect(r.score).toBeCloseTo(r.explain!.relevance * r.explain!.recencyFactor!, 6);
      }
      expect(body.results.map((r) => r.score)).toEqual(body.results.map((r) => r.score).sort((a, b) => b - a));
      // The 2024 rate story beats the 2023 one once age counts, though both match.
      const order = ids(body);
      expect(order.indexOf('bbc-rates-2024')).toBeLessThan(order.indexOf('ap-rates-2023'));
      const pinned = await get('/search', { q: 'interest rates inflation', mode: 'semantic', recency: '12h', recencyDate: '2023-07-26', explain: 'true' });
      expect(pinned.body.results.find((r) => r.article.id === 'ap-rates-2023')!.explain!.recencyFactor).toBe(1);
    });

    it('pages are slices of one ordered matching set: nothing repeated, nothing skipped; past the end is empty', async () => {
      const q = { q: 'economy China trade weather sport', mode: 'hybrid' };
      const all = await get('/search', { ...q, k: '12' });
      expect(all.body.total).toBeGreaterThanOrEqual(8);
      const pages: string[] = [];
      for (let offset = 0; offset < all.body.total; offset += 3) {
        const page = await get('/search', { ...q, k: '3', offset: String(offset) });
        expect(page.body.total).toBe(all.body.total);
        expect(page.body.offset).toBe(offset);
        pages.push(...ids(page.body));
      }
      expect(pages.slice(0, 12)).toEqual(ids(all.body));
      expect(new Set(pages).size).toBe(pages.length);
      expect(pages.length).toBe(all.body.total);
      const past = await get('/search', { ...q, k: '3', offset: String(all.body.total + 3) });
      expect(past.body.results).toEqual([]);
      expect(past.body.total).toBe(all.body.total);
    });

    it('facets count the matching set — one count per story, by its representative — the set total counts', async () => {
      const { body } = await get('/search', { q: 'China Belarus trade', mode: 'lexical', k: '50', facets: 'source,tag,year' });
      const f = body.facets!;
      expect(f.source!.reduce((n, c) => n + c.count, 0)).toBe(body.total);
      expect(body.results.length).toBe(body.total);
      const count = (pick: (id: string) => string[]) => {
        const m = new Map<string, number>();
        for (const id of ids(body)) for (const v of pick(id)) m.set(v.toLowerCase(), (m.get(v.toLowerCase()) ?? 0) + 1);
        return m;
      };
      const sources = count((id) => [byId.get(id)!.source]);
      for (const c of f.source!) expect(c.count).toBe(sources.get(c.value.toLowerCase()));
      const tags = count((id) => [...new Set(byId.get(id)!.tags.map((t) => t.toLowerCase()))]);
      for (const c of f.tag!) expect(c.count).toBe(tags.get(c.value.toLowerCase()));
      // "China" and "china" are one tag, shown in its most frequent spelling.
      expect(f.tag!.find((c) => c.value.toLowerCase() === 'china')?.value).toBe('China');
      const years = count((id) => (byId.get(id)!.date ? [byId.get(id)!.date!.slice(0, 4)] : []));
      for (const c of f.year!) expect(c.count).toBe(years.get(c.value));
      expect(f.year!.map((c) => c.count)).toEqual([...f.year!.map((c) => c.count)].sort((a, b) => b - a));
    });
  });

  describe('duplicates', () => {
    it('shows one story for the three copies, the others under duplicates; collapse=false shows all three', async () => {
      const q = { q: 'Great Stone industrial park near Minsk', mode: 'hybrid', k: '10' };
      const collapsed = await get('/search', q);
      const inGroup = ids(collapsed.body).filter((id) => PARK_GROUP.includes(id));
      expect(inGroup.length).toBe(1);
      const story = collapsed.body.results.find((r) => PARK_GROUP.includes(r.article.id))!;
      expect(story.duplicates!.map((d) => d.id).sort()).toEqual(PARK_GROUP.filter((id) => id !== story.article.id).sort());
      expect(story.duplicateCount).toBe(2);
      for (const d of story.duplicates!)
        expect(d).toEqual({ id: d.id, title: byId.get(d.id)!.title, source: byId.get(d.id)!.source, date: byId.get(d.id)!.date });
      const all = await get('/search', { ...q, collapse: 'false' });
      expect(
        ids(all.body)
          .filter((id) => PARK_GROUP.includes(id))
          .sort(),
      ).toEqual([...PARK_GROUP].sort());
      expect(all.body.results[0]!.duplicates).toBeUndefined();
      expect(all.body.total).toBe(collapsed.body.total + 2);
    });

    it('a filter picks the representative among the members it lets through', async () => {
      const { body } = await get('/search', { q: 'Great Stone industrial park near Minsk', source: "People's Daily" });
      expect(ids(body)).toEqual(['pd-park-2023']);
      expect(body.results[0]!.duplicates!.map((d) => d.id).sort()).toEqual(['tass-park-2023', 'xh-park-2023']);
    });
  });

  describe('related articles', () => {
    it('GET /articles/:id/similar: closest articles from stored vectors, without the article and its copies', async () => {
      const { status, body } = await get<SimilarResponse>('/articles/xh-park-2023/similar', { k: '5', explain: 'true' });
      expect(status).toBe(200);
      expect(body.article.id).toBe('xh-park-2023');
      expect(body.results.length).toBe(5);
      for (const id of ids(body)) expect(PARK_GROUP).not.toContain(id);
      // The other China-Belarus stories are the nearest.
      expect(ids(body).slice(0, 2)).toContain('xh-trade-2024');
      expect(body.results[0]!.evidence.length).toBeGreaterThan(0);
      expect(body.explain!.retrieval.matchingArticles).toBe(FIXTURE.length - PARK_GROUP.length);
      const filtered = await get<SimilarResponse>('/articles/xh-park-2023/similar', { source: 'Reuters', k: '10' });
      expect(filtered.body.results.every((r) => r.article.source === 'Reuters')).toBe(true);
      expect(filtered.body.results.length).toBe(FIXTURE.filter((a) => a.source === 'Reuters').length);
      expect((await get('/articles/no-such-article/similar')).status).toBe(404);
      const bad = await get('/articles/xh-park-2023/similar', { from: '2024-02-31' });
      expect(bad.status).toBe(400);
      expect(errorField(bad.body)).toBe('from');
    });
  });

  describe('highlights', () => {
    it('mark the words the lexical index matched (stemmed) and the best sentence, as offsets into the evidence text', async () => {
      const { body } = await get('/search', { q: 'industrial cooperation exports', mode: 'lexical', collapse: 'false' });
      let marked = 0;
      for (const r of body.results) {
        for (const e of r.evidence) {
          const words = e.highlights.terms.map((t) => e.text.slice(t.start, t.end).toLowerCase());
          marked += words.length;
          for (const w of words)
            expect(
              ['industri', 'cooper', 'export'].some((stem) => w.startsWith(stem)),
              w,
            ).toBe(true);
          if (words.length === 0) expect(e.highlights.sentence).toBeNull();
          else {
            const s = e.highlights.sentence!;
            expect(e.highlights.terms.some((t) => t.start >= s.start && t.end <= s.end)).toBe(true);
            expect(e.text.slice(s.start, s.end).trim()).toBe(e.text.slice(s.start, s.end));
          }
        }
      }
      expect(marked).toBeGreaterThan(3);
      // Semantic evidence is highlighted too (by what BM25 would match), or null when no word matches.
      const semantic = await get('/search', { q: 'solar energy desert', mode: 'semantic', k: '1' });
      expect(semantic.body.results[0]!.evidence[0]!.highlights.terms.length).toBeGreaterThan(0);
    });
  });

  describe('validation and metadata', () => {
    it.each([
      [{ from: '2024-02-30' }, 'from'],
      [{ from: '2024-02-01', to: '2024-01-01' }, 'from'],
      [{ facets: 'source,author' }, 'facets'],
      [{ offset: '995' }, 'offset'],
      [{ recency: 'soon' }, 'recency'],
      [{ sort: 'oldest' }, 'sort'],
    ])('GET and POST answer 400 naming the field for %j', async (params, field) => {
      const g = await get('/search', { q: 'x', ...params });
      expect(g.status).toBe(400);
      expect(errorField(g.body)).toBe(field);
      const p = await post({ q: 'x', ...params, ...('offset' in params ? { offset: 995 } : {}) });
      expect(p.status).toBe(400);
      expect(errorField(p.body)).toBe(field);
    });

    it('stores tags from the API and returns them; refuses bad ones naming the field', async () => {
      const res = await fetch(`${service.url}/articles`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ id: 'tagged', title: 'Tagged', text: 'A short story about tags.', tags: ['Desk A', 'desk a', 'Topic'] }),
      });
      expect(res.status).toBe(201);
      const a = (await (await fetch(`${service.url}/articles/tagged`, { headers: { accept: 'application/json' } })).json()) as { tags: string[] };
      expect(a.tags).toEqual(['Desk A', 'Topic']);
      const found = await get('/search', { q: 'story about tags', tag: 'DESK A' });
      expect(ids(found.body)).toEqual(['tagged']);
      const bad = await fetch(`${service.url}/articles`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
        body: JSON.stringify({ id: 'bad-tags', title: 'T', text: 'x', tags: ['ok', ''] }),
      });
      expect(bad.status).toBe(400);
      expect(errorField(await bad.json())).toBe('tags.1');
      await service.quarry.deleteArticle('tagged');
    });
  });

  describe('the CLI', () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['bin/quarry.js', 'search', ...args, '--index', service.config.indexDir, '--log-level', 'silent'], {
        cwd: ROOT,
        env: {
          ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUARRY_'))),
          QUARRY_MODELS_DIR: join(ROOT, 'models'),
          ...target.env,
        },
      });

    it('takes the same filters, sort, paging and facets as the API', async () => {
      const args = [
        'China Belarus',
        '--from',
        '2023-01-01',
        '--source',
        'Xinhua',
        '--source',
        'TASS',
        '--tag',
        'belarus',
        '--sort',
        'date',
        '--facets',
        'source,year',
      ];
      const { stdout } = await run([...args, '--json']);
      const cli = JSON.parse(stdout) as SearchResponse;
      const api = await get('/search', {
        q: 'China Belarus',
        from: '2023-01-01',
        source: ['Xinhua', 'TASS'],
        tag: 'belarus',
        sort: 'date',
        facets: 'source,year',
      });
      expect(ids(cli)).toEqual(ids(api.body));
      expect(cli.facets).toEqual(api.body.facets);
      expect(ids(cli).length).toBeGreaterThan(0);
      const text = (await run([...args, '--no-collapse', '--offset', '1', '-k', '2'])).stdout;
      expect(text).toMatch(/^2–3 of \d+ matching stories/);
      expect(text).toMatch(/source: /);
    });

    it('names the flag when a value is wrong, before loading the model', async () => {
      await expect(run(['x', '--from', '2024-13-01'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--from/) });
      await expect(run(['x', '--facets', 'author'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--facets: unknown facet `author`/) });
      await expect(run(['x', '--offset', '999'])).rejects.toMatchObject({ stderr: expect.stringMatching(/--offset/) });
    });
  });
}
