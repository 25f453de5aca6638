import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SearchResponse } from '../../src/search/schema.ts';
import { FIXTURES_DIR, type RealService, ROOT, startRealService } from '../helpers/real-service.ts';

/*
 * The search page's newsroom controls in a real browser (Debian's Chromium through playwright-core): filters
 * with their facet counts, sorting by date, previous/next pages, "also published by" for collapsed copies,
 * highlights from the server, and related articles on the article page. The collection is the news fixture
 * written for the tests (tests/fixtures/news.jsonl).
 */

const CHROMIUM = process.env.QUARRY_TEST_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`[browser-news.test.ts] SKIPPED: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set QUARRY_TEST_CHROMIUM).`);

const ARTIFACTS = join(ROOT, 'tests/.artifacts');
const PARK_GROUP = ['xh-park-2023', 'pd-park-2023', 'tass-park-2023'];

let service: RealService;
let seeds: string;
let profile: string;
let context: BrowserContext;
let page: Page;
let problems: string[] = [];

const api = async (params: Record<string, string | string[]>): Promise<SearchResponse> => {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
  return (await (await fetch(`${service.url}/search?${qs}`)).json()) as SearchResponse;
};
const shownIds = () => page.locator('article.result').evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.articleId!));
/** Waits until the results on screen are those of the URL the page now shows. */
const settled = async () => {
  await page.waitForFunction(() => document.querySelector('#results')?.getAttribute('aria-busy') === 'false');
};

describe.skipIf(!haveChromium)('newsroom controls on the search page (Chromium via playwright-core)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    seeds = mkdtempSync(join(tmpdir(), 'quarry-news-browser-'));
    cpSync(join(FIXTURES_DIR, 'news.jsonl'), join(seeds, 'news.jsonl'));
    service = await startRealService({ seedsDir: seeds });
    profile = mkdtempSync(join(tmpdir(), 'quarry-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
  });

  afterEach(() => {
    const seen = problems;
    problems = [];
    expect(seen).toEqual([]);
  });

  afterAll(async () => {
    await context?.close();
    await service?.dispose();
    if (seeds) rmSync(seeds, { recursive: true, force: true });
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('lists sources and tags with their facet counts, and filters by them inside retrieval', async () => {
    await page.goto(`${service.url}/?q=${encodeURIComponent('China Belarus trade')}&mode=lexical&k=20`);
    await page.locator('article.result').first().waitFor();
    const facets = (await api({ q: 'China Belarus trade', mode: 'lexical', k: '20', facets: 'source,tag' })).facets!;
    for (const f of facets.source!) {
      const option = page.locator(`#source-options .facet-option[data-value="${f.value}"]`);
      expect(await option.locator('.facet-count').textContent()).toBe(String(f.count));
    }
    expect(await page.locator('#tag-options .facet-option').count()).toBe(facets.tag!.length);

    await page.locator('#source-options .facet-option[data-value="Xinhua"] input').check();
    await expect.poll(() => new URL(page.url()).searchParams.getAll('source')).toEqual(['Xinhua']);
    await settled();
    const sources = await page.locator('article.result .result-source').allTextContents();
    expect(new Set(sources)).toEqual(new Set(['Xinhua']));
    const filtered = await api({ q: 'China Belarus trade', mode: 'lexical', k: '20', source: 'Xinhua' });
    expect(sources.length).toBe(filtered.total);
    // The checked source stays listed and checked, with its count over the filtered results. (It can exceed
    // the unfiltered count: a collapsed story counts by its representative, and the filter makes the Xinhua
    // copy of the park story the representative.)
    const xinhua = page.locator('#source-options .facet-option[data-value="Xinhua"]');
    expect(await xinhua.locator('input').isChecked()).toBe(true);
    expect(await xinhua.locator('.facet-count').textContent()).toBe(String(filtered.total));

    // A tag as well: both apply.
    await page.locator('#tag-options .facet-option[data-value="trade"] input').check();
    await expect.poll(() => new URL(page.url()).searchParams.getAll('tag')).toEqual(['trade']);
    await settled();
    expect((await shownIds()).sort()).toEqual(['xh-rail-2022', 'xh-trade-2024']);
    await page.screenshot({ path: join(ARTIFACTS, 'news-filters.png'), fullPage: true });

    await page.locator('#clear-filters').click();
    await expect.poll(() => new URL(page.url()).searchParams.has('source')).toBe(false);
  });

  it('filters by a date range', async () => {
    await page.goto(`${service.url}/?q=${encodeURIComponent('economy trade rates')}&mode=semantic&k=20`);
    await page.locator('article.result').first().waitFor();
    await page.locator('#from').fill('2024-01-01');
    await page.locator('#to').fill('2024-04-30');
    await page.locator('#to').dispatchEvent('change');
    await expect.poll(() => new URL(page.url()).searchParams.get('to')).toBe('2024-04-30');
    await settled();
    const dates = await page.locator('article.result .result-date').allTextContents();
    expect(dates.length).toBeGreaterThan(0);
    for (const d of dates) expect(d >= '2024-01-01' && d <= '2024-04-30', d).toBe(true);
    expect(await page.locator('article.result').count()).toBe(dates.length);
  });

  it('sorts by date, newest first', async () => {
    await page.goto(`${service.url}/?q=${encodeURIComponent('China')}&mode=lexical&k=20`);
    await page.locator('article.result').first().waitFor();
    await page.locator('#sort').selectOption('date');
    await expect.poll(() => new URL(page.url()).searchParams.get('sort')).toBe('date');
    await settled();
    const dates = await page.locator('article.result .result-date').allTextContents();
    expect(dates.length).toBeGreaterThan(2);
    expect(dates).toEqual([...dates].sort().reverse());
  });

  it('pages forward and back through one ordered set, repeating nothing', async () => {
    const q = 'economy China trade weather sport harvest';
    const all = await api({ q, k: '20' });
    expect(all.total).toBeGreaterThan(5);
    await page.goto(`${service.url}/?q=${encodeURIComponent(q)}&k=5`);
    await page.locator('article.result').first().waitFor();
    const first = await shownIds();
    expect(first).toEqual(all.results.slice(0, 5).map((r) => r.article.id));
    expect(await page.locator('#prev-page').isDisabled()).toBe(true);
    await page.locator('#next-page').click();
    await expect.poll(() => new URL(page.url()).searchParams.get('offset')).toBe('5');
    await settled();
    const second = await shownIds();
    expect(second).toEqual(all.results.slice(5, 10).map((r) => r.article.id));
    expect(await page.locator('#page-info').textContent()).toBe(`6–${5 + second.length} of ${all.total}`);
    await page.locator('#prev-page').click();
    await expect.poll(() => new URL(page.url()).searchParams.has('offset')).toBe(false);
    await settled();
    expect(await shownIds()).toEqual(first);
  });

  it('shows a story once with "also published by" its other copies, and bolds the matched words the server marked', async () => {
    const q = 'Great Stone industrial park near Minsk';
    await page.goto(`${service.url}/?q=${encodeURIComponent(q)}`);
    await page.locator('article.result').first().waitFor();
    const ids = await shownIds();
    const shown = ids.filter((id) => PARK_GROUP.includes(id));
    expect(shown.length).toBe(1);
    const card = page.locator(`article.result[data-article-id="${shown[0]}"]`);
    const also = card.locator('.also-published');
    const others = PARK_GROUP.filter((id) => id !== shown[0]);
    expect((await also.locator('a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).pathname))).sort()).toEqual(
      others.map((id) => `/articles/${id}`).sort(),
    );
    expect(await also.textContent()).toMatch(/^Also published by /);

    const response = await api({ q });
    const ev = response.results.find((r) => r.article.id === shown[0])!.evidence[0]!;
    const expected = ev.highlights.terms.map((t) => ev.text.slice(t.start, t.end));
    expect(expected.length).toBeGreaterThan(0);
    expect(await card.locator('.evidence').first().locator('mark').allTextContents()).toEqual(expected);
    const sentence = ev.highlights.sentence!;
    expect(await card.locator('.evidence').first().locator('.best-sentence').textContent()).toBe(ev.text.slice(sentence.start, sentence.end));
    await page.screenshot({ path: join(ARTIFACTS, 'news-duplicates.png'), fullPage: true });
  });

  it('lists related articles on the article page, without the article and its copies', async () => {
    await page.goto(`${service.url}/articles/xh-park-2023`);
    await page.locator('#related-list li').first().waitFor();
    const related = await page.locator('#related-list li').evaluateAll((lis) => lis.map((li) => (li as HTMLElement).dataset.articleId!));
    expect(related.length).toBe(5);
    for (const id of related) expect(PARK_GROUP).not.toContain(id);
    expect(related).toContain('xh-trade-2024');
    await page.screenshot({ path: join(ARTIFACTS, 'news-related.png'), fullPage: true });
    await page.locator('#related-list li a').first().click();
    await page.waitForURL(`**/articles/${related[0]}`);
    await page.locator('#article').waitFor({ state: 'visible' });
  });

  it('stays usable on a phone-sized screen with the filters open', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${service.url}/?q=${encodeURIComponent('China Belarus')}&k=5`);
    await page.locator('article.result').first().waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'news-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 1000 });
  });
});
