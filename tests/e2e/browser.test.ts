import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SearchResponse } from '../../src/search/schema.ts';
import { createApp } from '../../src/server/app.ts';
import { listen } from '../../src/server/listen.ts';
import { CHILD_HANG_GUARD_MS } from '../helpers/poll.ts';
import { type RealService, ROOT, seedsWithDistractors, startRealService } from '../helpers/real-service.ts';

/** Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it when missing). */
const CHROMIUM = process.env.QUARRY_TEST_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `[browser.test.ts] SKIPPED: no Chromium at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` (.ci/run does this), or set QUARRY_TEST_CHROMIUM to a Chromium binary.`,
  );
}

const SEED_ID = '1a76b68b4bef4123';
const QUERY = 'China-Belarus industrial cooperation';
const ARTIFACTS = join(ROOT, 'tests/.artifacts');
const SCRIPT = '<script>window.__xss=1</script>';
const IMG = '<img src=x onerror="window.__xss=1">';

let service: RealService;
let seeds: string;
let profile: string;
let context: BrowserContext;
let page: Page;
/** Uncaught exceptions and console errors (a CSP violation shows up here too); every test expects none. */
let problems: string[] = [];

describe.skipIf(!haveChromium)('search page in a real browser (Chromium via playwright-core)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    seeds = seedsWithDistractors();
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
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    // Playwright's waits give up after 30 s by default: a deadline on a loaded machine. Make them hang guards.
    context.setDefaultTimeout(CHILD_HANG_GUARD_MS);
    context.setDefaultNavigationTimeout(CHILD_HANG_GUARD_MS);
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

  it('types the example query, presses Enter, and shows the seed article with its Industrial Park paragraph', async () => {
    await page.goto(`${service.url}/`);
    await expect.poll(() => page.locator('#stats').textContent()).toMatch(/7 articles/);
    expect(await page.locator('#q').getAttribute('placeholder')).toBe(QUERY);

    await page.locator('#q').click();
    await page.keyboard.type(QUERY);
    await page.keyboard.press('Enter');

    const card = page.locator(`article.result[data-article-id="${SEED_ID}"]`);
    await card.waitFor({ state: 'visible' });
    expect(await card.locator('.result-title').textContent()).toBe('Chinese, Belarusian presidents pledge to enhance ties');
    expect(await card.locator('.result-date').textContent()).toBe('2023-12-04');
    expect(await card.locator('.result-source').textContent()).toBe('Xinhua');
    const park = card.locator('.evidence', { hasText: 'China-Belarus Industrial Park' });
    expect(await park.count()).toBeGreaterThanOrEqual(1);
    // The best paragraph is shown open; the query's words are highlighted in it.
    expect(await card.locator('.evidence').first().isVisible()).toBe(true);
    const marks = (await card.locator('.evidence').first().locator('mark').allTextContents()).map((t) => t.toLowerCase());
    expect(marks.length).toBeGreaterThan(0);
    for (const m of marks)
      expect(
        ['china', 'belarus', 'industrial', 'cooperation'].some((term) => m.startsWith(term)),
        m,
      ).toBe(true);
    // The seed article ranks first.
    expect(await page.locator('article.result').first().getAttribute('data-article-id')).toBe(SEED_ID);

    const url = new URL(page.url());
    expect(url.pathname).toBe('/');
    expect(url.searchParams.get('q')).toBe(QUERY);
    await page.screenshot({ path: join(ARTIFACTS, 'search.png'), fullPage: true });
  });

  it('reloads a shared URL into the same search, with the options it carries', async () => {
    await page.goto(`${service.url}/?q=${encodeURIComponent('industrial park')}&mode=lexical&k=5`);
    await page.locator('article.result').first().waitFor();
    expect(await page.locator('#q').inputValue()).toBe('industrial park');
    expect(await page.locator('#mode').inputValue()).toBe('lexical');
    expect(await page.locator('#k').inputValue()).toBe('5');
    expect(await page.locator('article.result').first().getAttribute('data-article-id')).toBe(SEED_ID);

    // Explain adds per-paragraph scoring details and per-stage timings.
    await page.locator('#explain').check();
    await page.locator('#search-submit').click();
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/embed [\d.]+ · knn [\d.]+ · lexical [\d.]+/);
    expect(new URL(page.url()).searchParams.get('explain')).toBe('true');
    expect(await page.locator('.evidence details.explain').count()).toBeGreaterThan(0);
  });

  it('is usable from the keyboard and on a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${service.url}/`);
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('q');
    await page.keyboard.type(QUERY);
    await page.keyboard.press('Enter');
    await page.locator(`article.result[data-article-id="${SEED_ID}"]`).waitFor();
    // Nothing wider than the screen: no sideways scrolling on a phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'search-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('says why there are no results, and asks for words when the box is empty', async () => {
    await page.goto(`${service.url}/?q=qwxzvbnm&mode=lexical`);
    await page.locator('#no-results').waitFor({ state: 'visible' });
    expect(await page.locator('#no-results-reason').textContent()).toContain('qwxzvbnm');
    expect(await page.locator('article.result').count()).toBe(0);

    await page.goto(`${service.url}/`);
    await page.locator('#search-submit').click();
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error').textContent()).toMatch(/Type a few words/);
  });

  it('asks for the read key when the server requires one, keeps it for the tab, and reports a cancelled prompt', async () => {
    const READ_KEY = 'read-key-for-browser-test';
    const locked = await listen(createApp({ quarry: service.quarry, config: { ...service.config, readKey: READ_KEY } }), 0, '127.0.0.1');
    const dialog = page.locator('#read-key-dialog');
    try {
      // Cancelled: the refusal is reported in plain words, nothing is shown.
      await page.goto(`${locked.url}/?q=${encodeURIComponent(QUERY)}`);
      await dialog.waitFor({ state: 'visible' });
      expect(await page.locator('#read-key-message').textContent()).toMatch(/requires a read key/);
      await page.locator('#read-key-cancel').click();
      await page.locator('#error').waitFor({ state: 'visible' });
      expect(await page.locator('#error').textContent()).toMatch(/^Search failed\. This server requires a read key/);
      await expect.poll(() => page.locator('#stats').textContent()).toBe('Index stats unavailable.');
      expect(await page.locator('article.result').count()).toBe(0);

      // A wrong key is refused and asked for again; the right one shows the results and the stats.
      await page.reload();
      await dialog.waitFor({ state: 'visible' });
      await page.locator('#read-key-input').fill('not-the-read-key-at-all');
      await page.locator('#read-key-submit').click();
      await expect.poll(() => page.locator('#read-key-message').textContent()).toMatch(/refused/);
      await page.locator('#read-key-input').fill(READ_KEY);
      await page.locator('#read-key-submit').click();
      await page.locator('article.result').first().waitFor();
      expect(await page.locator('article.result').first().getAttribute('data-article-id')).toBe(SEED_ID);
      await expect.poll(() => page.locator('#stats').textContent()).toMatch(/articles? · /);
      expect(await dialog.count()).toBe(0);

      // The tab keeps the key: the article page opens without asking again.
      await page.goto(`${locked.url}/articles/${SEED_ID}`);
      await page.locator('#paragraphs p').first().waitFor();
      expect(await dialog.count()).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, 'read-key.png') });
    } finally {
      await page.evaluate(() => sessionStorage.clear());
      await locked.close();
    }
    problems = problems.filter((p) => !/401/.test(p)); // the browser logs the refused fetches
  });

  it('opens the whole article from a result, at the evidence paragraph, and comes back to the search', async () => {
    const api = (await (await fetch(`${service.url}/search?q=${encodeURIComponent(QUERY)}&k=1`)).json()) as SearchResponse;
    const best = api.results[0]!.evidence[0]!;
    await page.goto(`${service.url}/?q=${encodeURIComponent(QUERY)}`);
    const card = page.locator(`article.result[data-article-id="${SEED_ID}"]`);
    await card.locator('.evidence-link').first().click();
    await page.waitForURL(`**/articles/${SEED_ID}#p${best.paragraph}`);
    await page.locator('#article').waitFor({ state: 'visible' });
    expect(await page.locator('#article-title').textContent()).toBe('Chinese, Belarusian presidents pledge to enhance ties');
    const target = page.locator(`#p${best.paragraph}`);
    expect(await target.getAttribute('class')).toContain('is-target');
    expect(await target.textContent()).toContain(best.text.slice(0, 60));
    await page.screenshot({ path: join(ARTIFACTS, 'article.png'), fullPage: true });

    // Back goes to the search page (HTML, not the article's JSON from cache), results shown again.
    await page.goBack();
    await card.waitFor({ state: 'visible' });
    expect(new URL(page.url()).searchParams.get('q')).toBe(QUERY);
  });

  it('renders /articles/:id as a page for a browser, and a clear error for an unknown id', async () => {
    const json = (await (await fetch(`${service.url}/articles/${SEED_ID}`, { headers: { accept: 'application/json' } })).json()) as { paragraphs: string[] };
    const res = await page.goto(`${service.url}/articles/${SEED_ID}`);
    expect(res?.headers()['content-type']).toMatch(/text\/html/);
    await page.locator('#article').waitFor({ state: 'visible' });
    expect(await page.locator('#paragraphs .paragraph').count()).toBe(json.paragraphs.length);
    expect(await page.locator('#article-meta').textContent()).toContain('Xinhua');
    expect(await page.title()).toContain('Chinese, Belarusian presidents');

    await page.goto(`${service.url}/articles/no-such-article`);
    await page.locator('#error').waitFor({ state: 'visible' });
    expect(await page.locator('#error').textContent()).toContain('Article not found.');
    problems = problems.filter((p) => !/404/.test(p)); // the page's own fetch logs the 404
  });

  it('shows markup in indexed articles as text and never runs it', async () => {
    await service.quarry.upsertArticles(
      [
        {
          id: 'xss-probe',
          title: `Zanzibar clove harvest ${SCRIPT} ${IMG}`,
          date: '2024-05-01',
          source: `Wire ${IMG}`,
          url: 'javascript:window.__xss=1',
          paragraphs: [
            `Clove farmers in Zanzibar report a record harvest this season ${SCRIPT} as prices at the spice market rise.`,
            `Exporters expect the Zanzibar clove harvest to reach new markets ${IMG} in the coming months.`,
          ],
        },
      ],
      'test',
    );
    await page.goto(`${service.url}/?q=${encodeURIComponent('Zanzibar clove harvest')}`);
    const card = page.locator('article.result[data-article-id="xss-probe"]');
    await card.waitFor({ state: 'visible' });
    expect(await card.locator('.result-title').textContent()).toBe(`Zanzibar clove harvest ${SCRIPT} ${IMG}`);
    expect(await card.locator('.result-source').textContent()).toBe(`Wire ${IMG}`);
    const evidence = (await card.locator('.evidence-text').allTextContents()).join('\n');
    expect(evidence).toMatch(/<script>window.__xss=1<\/script>|<img src=x onerror="window.__xss=1">/);
    expect(await card.locator('script, img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
    await page.screenshot({ path: join(ARTIFACTS, 'xss.png'), fullPage: true });

    await page.goto(`${service.url}/articles/xss-probe`);
    await page.locator('#article').waitFor({ state: 'visible' });
    expect(await page.locator('#article-title').textContent()).toBe(`Zanzibar clove harvest ${SCRIPT} ${IMG}`);
    expect(await page.locator('#paragraphs').textContent()).toContain(IMG);
    expect(await page.locator('#article script, #article img').count()).toBe(0);
    // A javascript: URL is shown as text, never made a link.
    expect(await page.locator('#article a[href^="javascript:"]').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
  });

  it('serves the API docs page, rendered by Swagger UI from this server only', async () => {
    await page.goto(`${service.url}/docs`);
    await page.locator('.opblock').first().waitFor({ state: 'visible' });
    expect(await page.locator('.opblock').count()).toBeGreaterThanOrEqual(13);
    expect(await page.locator('.swagger-ui .title').first().textContent()).toContain('Quarry');
    await page.screenshot({ path: join(ARTIFACTS, 'docs.png') });
  });
});
