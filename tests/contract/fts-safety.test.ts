import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchTerms } from '../../src/search/query-terms.ts';
import { SearchResponseSchema } from '../../src/search/schema.ts';
import { ftsMatchExpression } from '../../src/store/sqlite/fts-query.ts';
import { SEEDS_DIR, type Service, startHashedService, testConfig } from '../helpers/service.ts';

const SEED_ID = '1a76b68b4bef4123';

/**
 * User text that means something to FTS5's query language. Each must be searched as plain words: a 200 with a
 * valid response, never a 500 (an FTS5 syntax error) and never a crash. `finds` says whether the words left
 * over name something in the seed article, so lexical mode must find it.
 */
const HOSTILE: Array<{ name: string; q: string; finds: boolean }> = [
  { name: 'double quotes', q: '"Belarus" "industrial park"', finds: true },
  { name: 'unbalanced quote', q: '"China-Belarus industrial', finds: true },
  { name: 'lone quote', q: '"', finds: false },
  { name: 'AND operator', q: 'China AND Belarus', finds: true },
  { name: 'OR operator', q: 'Lukashenko OR', finds: true },
  { name: 'NOT operator', q: 'NOT Belarus', finds: true },
  // All stop words, so they are kept, as plain words: the seed article says "and" and "not".
  { name: 'operators only', q: 'AND OR NOT', finds: true },
  { name: 'NEAR group', q: 'NEAR(Xi Lukashenko, 5)', finds: true },
  { name: 'star after a word', q: 'Belarus* cooperation*', finds: true },
  // The star is dropped, not honoured as a prefix: "belar" is searched as a whole word and is nowhere.
  { name: 'prefix star', q: 'Belar*', finds: false },
  { name: 'lone star', q: '*', finds: false },
  { name: 'caret', q: '^Xi ^Jinping', finds: true },
  { name: 'parentheses', q: '((China) OR (Belarus', finds: true },
  { name: 'column filter', q: 'title: Belarusian text:presidents', finds: true },
  { name: 'colon only', q: ':', finds: false },
  { name: 'minus and plus', q: '-China +Belarus', finds: true },
  { name: 'braces', q: '{title text}: Belarus', finds: true },
  { name: 'emoji', q: '🇨🇳🤝🇧🇾 🏭', finds: false },
  { name: 'emoji next to a word', q: 'Belarus🤝China', finds: true },
  { name: 'only punctuation', q: '?!.,;:-()"\'*^{}[]', finds: false },
  { name: 'sql-looking', q: "Belarus'; DROP TABLE chunks; --", finds: true },
];

describe('FTS5 query building', () => {
  it('quotes every term and joins them with OR', () => {
    expect(ftsMatchExpression(searchTerms('China AND "Belarus', false))).toBe('"china" OR "and" OR "belarus"');
    expect(ftsMatchExpression(searchTerms('NEAR(a* b^)', false))).toBe('"near" OR "a" OR "b"');
  });

  it('has no term for punctuation or emoji only', () => {
    expect(ftsMatchExpression(searchTerms('?!"*^():', false))).toBeNull();
    expect(ftsMatchExpression(searchTerms('🇨🇳🤝', false))).toBeNull();
  });

  it('drops stop words when asked, unless the query has nothing else', () => {
    expect(searchTerms('joint factory zone between Beijing and Minsk', true)).toEqual(['joint', 'factory', 'zone', 'beijing', 'minsk']);
    expect(searchTerms('joint factory zone between Beijing and Minsk', false)).toContain('and');
    expect(searchTerms('to be or not to be', true)).toEqual(['to', 'be', 'or', 'not']);
  });
});

describe('FTS5 safety over HTTP (test embedder, real index)', () => {
  let svc: Service;
  beforeAll(async () => {
    // Hundreds of searches from one address: the per-address rate limit (its own test's subject) is off.
    svc = await startHashedService({ seedsDir: SEEDS_DIR, config: testConfig({ seedsDir: SEEDS_DIR, searchRate: 0 }) });
  });
  afterAll(async () => {
    await svc?.dispose();
  });

  for (const mode of ['lexical', 'hybrid'] as const) {
    for (const { name, q, finds } of HOSTILE) {
      it(`${mode}: ${name} (${q})`, async () => {
        const res = await fetch(`${svc.url}/search?${new URLSearchParams({ q, mode, k: '5' })}`);
        expect(res.status).toBe(200);
        const body = SearchResponseSchema.parse(await res.json());
        expect(body.mode).toBe(mode);
        if (finds) {
          expect(body.results[0]?.article.id).toBe(SEED_ID);
        } else if (mode === 'lexical') {
          // Nothing searchable is left: an empty answer, said as such, not an error.
          expect(body.results).toEqual([]);
          expect(body.total).toBe(0);
        } else {
          // Hybrid still has the dense retriever, which embeds any text.
          expect(body.results.length).toBeGreaterThan(0);
        }
      });
    }
  }

  it('answers POST bodies with the same characters, with explain', async () => {
    for (const { q } of HOSTILE) {
      const res = await fetch(`${svc.url}/search`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ q, mode: 'hybrid', explain: true }),
      });
      expect(res.status).toBe(200);
      SearchResponseSchema.parse(await res.json());
    }
  });

  it('is still healthy and its index intact afterwards', async () => {
    const health = await fetch(`${svc.url}/health`);
    expect(health.status).toBe(200);
    expect((await svc.quarry.integrity()).sqlite).toBe('ok');
  });
});
