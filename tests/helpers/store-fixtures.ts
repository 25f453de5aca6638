import type { Article } from '../../src/corpus/article.ts';
import type { SearchFilter, StoreReader, WriteOp } from '../../src/store/store.ts';
import { mulberry32 } from './prng.ts';

/*
 * Test data for the store tests of both backends (tests/storage, tests/postgres): a model identity with no
 * model behind it, vectors written by the test, and a small news collection with sources, tags and dates.
 */

/** Dimensions of the vectors the store tests write. */
export const DIMS = 16;

/** The identity of a model that is never loaded: the stores only compare and record it. */
export function testModel(dims = DIMS, id = 'test-vectors', dtype = 'fp32') {
  return {
    id,
    dtype,
    pooling: 'mean' as const,
    normalized: true as const,
    dims,
    maxTokens: 256,
    queryPrefix: '',
    passagePrefix: '',
    files: {},
  };
}
export const MODEL = testModel();
export const CHUNKER = { version: 'test', minWords: 0, maxTokens: 256 };

export const unit = (v: Float32Array): Float32Array => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
export const randomVector = (rand: () => number) => unit(Float32Array.from({ length: DIMS }, () => rand() * 2 - 1));
/** A vector at cosine ~0.99+ to `v`. */
export const nudge = (v: Float32Array, rand: () => number) => unit(v.map((x) => x + (rand() - 0.5) * 0.05));
export const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

export interface TestArticle {
  article: Article;
  vectors: Float32Array[];
}

/** Each article as an upsert, one chunk per paragraph with the test's vector. */
export const upsertOps = (items: TestArticle[]): WriteOp[] =>
  items.map(({ article, vectors }) => ({
    op: 'upsert' as const,
    article: {
      article,
      origin: 'test',
      chunks: article.paragraphs.map((text, i) => ({ paragraph: i, start: 0, end: text.length, text, vector: vectors[i]! })),
    },
  }));

export const SOURCES = ['Xinhua', 'Reuters', 'AP', 'AFP', 'BBC News', 'TASS', 'Kyodo', 'Yonhap'];
export const WORDS = ['trade', 'industrial', 'park', 'cooperation', 'election', 'harvest', 'market', 'rates', 'football', 'climate'];

/** `n` articles of 3 paragraphs: dates over 2020-2024 (every 50th none), 8 sources, tags, words for BM25. */
export function collection(seed = 1, n = 400): TestArticle[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const day = new Date(Date.UTC(2020, 0, 1) + Math.floor(rand() * 5 * 365) * 86_400_000).toISOString().slice(0, 10);
    const tags = [`desk-${i % 5}`, ...(i === 123 ? ['Rare Tag'] : [])];
    const paragraphs = [0, 1, 2].map((p) => `Paragraph ${p} of story ${i}: ${WORDS[(i + p) % WORDS.length]} ${WORDS[(i * 7 + p) % WORDS.length]} news.`);
    return {
      article: { id: `a${i}`, title: `Story ${i}`, date: i % 50 === 0 ? null : day, source: SOURCES[i % SOURCES.length]!, url: null, tags, paragraphs },
      vectors: paragraphs.map(() => randomVector(rand)),
    };
  });
}

/** What a filter should match, computed from the test's own data. */
export function matches(a: Article, f: SearchFilter): boolean {
  const low = (s: string) => s.toLowerCase();
  if (f.sources && !f.sources.some((s) => low(s) === low(a.source ?? ''))) return false;
  if (f.tags && !f.tags.some((t) => (a.tags ?? []).some((u) => low(u) === low(t)))) return false;
  const d = a.date?.slice(0, 10);
  if (f.from && (!d || d < f.from)) return false;
  if (f.to && (!d || d > f.to)) return false;
  return true;
}

export async function idsOfChunks(reader: StoreReader, chunkIds: number[]): Promise<string[]> {
  const articleOf = await reader.articlesOfChunks(chunkIds);
  const metas = await reader.articleMetas([...new Set(articleOf.values())]);
  return chunkIds.map((c) => metas.get(articleOf.get(c)!)!.id);
}

export const FILTERS: Array<[string, SearchFilter]> = [
  ['one source, other case', { sources: ['XINHUA'] }],
  ['two sources', { sources: ['ap', 'Kyodo'] }],
  ['a tag matching one article', { tags: ['rare tag'] }],
  ['a date window', { from: '2022-03-01', to: '2022-05-31' }],
  ['everything combined', { sources: ['Reuters', 'TASS'], tags: ['desk-1', 'desk-3'], from: '2021-01-01' }],
  ['an unknown source', { sources: ['Nobody'] }],
];
