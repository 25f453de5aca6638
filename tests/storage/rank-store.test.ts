import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrBuild } from '../../src/core/open-or-build.ts';
import type { Quarry } from '../../src/core/quarry.ts';
import { PARAGRAPH_SEPARATOR } from '../../src/corpus/article.ts';
import { silentLogger } from '../../src/logger.ts';
import { searchTerms } from '../../src/search/query-terms.ts';
import { rankArticles } from '../../src/search/rank.ts';
import { SearchRequestSchema } from '../../src/search/schema.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { seedsWithDistractors, testConfig } from '../helpers/service.ts';

/*
 * rankArticles over the real SQLite store (test embedder): candidates taken from a reader, then an article
 * deleted through the write path before they are grouped — as a write committed during a search would. The
 * SQLite reader sees that commit (store.ts allows either); the deleted article must simply be absent.
 */

const embedder = createHashedEmbedder();
let quarry: Quarry;
let seeds: string;

beforeAll(async () => {
  seeds = seedsWithDistractors();
  ({ quarry } = await openOrBuild({ config: testConfig({ seedsDir: seeds }), embedder, logger: silentLogger }));
});
afterAll(async () => {
  await quarry?.close();
  if (quarry) rmSync(quarry.config.indexDir, { recursive: true, force: true });
  if (seeds) rmSync(seeds, { recursive: true, force: true });
});

async function candidatesFor(q: string, reader: ReturnType<Quarry['store']['reader']>) {
  const terms = searchTerms(q, quarry.config.lexicalStopwords);
  const lexical = await reader
    .lexicalCandidates({ terms, limit: 100, titleWeight: quarry.config.bm25TitleWeight, textWeight: quarry.config.bm25TextWeight })
    .then((l) => l.chunks);
  const dense = await reader.vectorCandidates({ vector: await embedder.embedQuery(q), limit: 100 }).then((l) => l.chunks);
  return { dense, lexical, terms };
}

describe('rankArticles on the SQLite store', () => {
  it('groups real candidates into articles whose evidence offsets point into the stored text', async () => {
    const req = SearchRequestSchema.parse({ q: 'giant panda cubs', explain: true });
    const reader = quarry.store.reader();
    try {
      const ranked = await rankArticles(reader, { ...req, recency: undefined }, await candidatesFor(req.q, reader), quarry.config);
      expect(ranked.results[0]!.article.id).toBe('distractor-china-pandas');
      for (const r of ranked.results) {
        const stored = (await quarry.getArticle(r.article.id))!;
        const text = stored.paragraphs.join(PARAGRAPH_SEPARATOR);
        for (const e of r.evidence) expect(text.slice(e.start, e.end)).toBe(e.text);
      }
      expect(ranked.results[0]!.evidence[0]!.explain!.matchedTerms.length).toBeGreaterThan(0);
    } finally {
      reader.release();
    }
  });

  it('leaves out an article deleted between retrieval and grouping, and keeps the rest whole', async () => {
    const req = SearchRequestSchema.parse({ q: 'giant panda cubs', k: 10 });
    const reader = quarry.store.reader();
    try {
      const candidates = await candidatesFor(req.q, reader);
      const before = await rankArticles(reader, { ...req, recency: undefined }, candidates, quarry.config);
      expect(before.results.map((r) => r.article.id)).toContain('distractor-china-pandas');

      expect(await quarry.deleteArticle('distractor-china-pandas')).toBe(true);
      const after = await rankArticles(reader, { ...req, recency: undefined }, candidates, quarry.config);
      const ids = after.results.map((r) => r.article.id);
      expect(ids).not.toContain('distractor-china-pandas');
      expect(ids).toEqual(before.results.map((r) => r.article.id).filter((id) => id !== 'distractor-china-pandas'));
      expect(after.total).toBe(before.total - 1);
      for (const r of after.results) expect(r.evidence.length).toBeGreaterThan(0);
    } finally {
      reader.release();
    }
    expect((await quarry.integrity()).problems).toEqual([]);
  });
});
