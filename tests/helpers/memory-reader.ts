import { PARAGRAPH_SEPARATOR } from '../../src/corpus/article.ts';
import type { Manifest } from '../../src/store/manifest.ts';
import type {
  ArticleMeta,
  CandidateList,
  ChunkText,
  DensePath,
  DuplicateMember,
  FilterScope,
  LexicalPath,
  LexicalQuery,
  SearchFilter,
  StoreReader,
  TextRange,
  VectorQuery,
} from '../../src/store/store.ts';

/*
 * A StoreReader over a few articles held in memory, for unit tests of what sits above the store (fusion,
 * grouping, evidence): one chunk per paragraph, chunk ids and article keys numbered from 1 in the order given.
 * Candidate lists are written by the test, so the retrievers themselves are not part of it. Every article is its
 * own duplicate group (nothing collapses), none is dated or tagged.
 */

export interface MemoryArticle {
  id: string;
  paragraphs: string[];
}

interface StoredChunk extends ChunkText {
  articleKey: number;
}

export class MemoryReader implements StoreReader {
  readonly generation = 'memory';
  private readonly chunks = new Map<number, StoredChunk>();
  private readonly metas = new Map<number, ArticleMeta>();
  private readonly keys = new Map<string, number>();
  /** The ids each look-up was asked for, in call order (to check what is read, and when). */
  readonly calls: { articlesOfChunks: number[][]; chunkTexts: number[][]; articleMetas: number[][]; matchedTerms: number[][] } = {
    articlesOfChunks: [],
    chunkTexts: [],
    articleMetas: [],
    matchedTerms: [],
  };
  /** Runs once the grouping pass has read its article keys: lets a test delete something "meanwhile". */
  afterGrouping: (() => void) | null = null;
  released = 0;

  constructor(articles: MemoryArticle[]) {
    let chunkId = 0;
    articles.forEach((a, i) => {
      const articleKey = i + 1;
      this.keys.set(a.id, articleKey);
      this.metas.set(articleKey, { id: a.id, title: `Title of ${a.id}`, date: null, source: null, url: null, tags: [] });
      let start = 0;
      a.paragraphs.forEach((text, paragraph) => {
        this.chunks.set(++chunkId, { articleKey, paragraph, start, end: start + text.length, text });
        start += text.length + PARAGRAPH_SEPARATOR.length;
      });
    });
  }

  /** The chunk id of an article's paragraph. */
  chunk(articleId: string, paragraph: number): number {
    const key = this.keys.get(articleId);
    for (const [id, c] of this.chunks) if (c.articleKey === key && c.paragraph === paragraph) return id;
    throw new Error(`no paragraph ${paragraph} in ${articleId}`);
  }

  /** Deletes an article with its chunks, as a write committed while a search holds this reader would. */
  deleteArticle(articleId: string): void {
    const key = this.keys.get(articleId)!;
    for (const [id, c] of this.chunks) if (c.articleKey === key) this.chunks.delete(id);
    this.metas.delete(key);
  }

  /** Deletes one chunk (an article replaced meanwhile loses its old paragraphs' chunks). */
  deleteChunk(chunkId: number): void {
    this.chunks.delete(chunkId);
  }

  get manifest(): Manifest {
    throw new Error('rankArticles does not read the manifest');
  }

  counts(): { articles: number; chunks: number } {
    return { articles: this.metas.size, chunks: this.chunks.size };
  }

  scope(_filter: SearchFilter): Promise<FilterScope> {
    throw new Error('the test gives rankArticles its candidates');
  }

  lexicalCandidates(_q: LexicalQuery): Promise<CandidateList<LexicalPath>> {
    throw new Error('the test gives rankArticles its candidates');
  }

  vectorCandidates(_q: VectorQuery): Promise<CandidateList<DensePath>> {
    throw new Error('the test gives rankArticles its candidates');
  }

  async articlesOfChunks(chunkIds: number[]): Promise<Map<number, number>> {
    this.calls.articlesOfChunks.push(chunkIds);
    const out = new Map<number, number>();
    for (const id of chunkIds) {
      const c = this.chunks.get(id);
      if (c) out.set(id, c.articleKey);
    }
    this.afterGrouping?.();
    return out;
  }

  async chunkTexts(chunkIds: number[]): Promise<Map<number, ChunkText>> {
    this.calls.chunkTexts.push(chunkIds);
    const out = new Map<number, ChunkText>();
    for (const id of chunkIds) {
      const c = this.chunks.get(id);
      if (c) out.set(id, { paragraph: c.paragraph, start: c.start, end: c.end, text: c.text });
    }
    return out;
  }

  async articleMetas(articleKeys: number[]): Promise<Map<number, ArticleMeta>> {
    this.calls.articleMetas.push(articleKeys);
    const out = new Map<number, ArticleMeta>();
    for (const key of articleKeys) {
      const m = this.metas.get(key);
      if (m) out.set(key, m);
    }
    return out;
  }

  /** Exact, lower-cased word matches (the SQLite store stems; that is its own test's business). */
  async matchedTerms(terms: string[], chunkIds: number[]): Promise<Map<number, string[]>> {
    this.calls.matchedTerms.push(chunkIds);
    const out = new Map<number, string[]>();
    for (const id of chunkIds) {
      const c = this.chunks.get(id);
      if (!c) continue;
      const words = new Set(c.text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);
      out.set(
        id,
        terms.filter((t) => words.has(t)),
      );
    }
    return out;
  }

  async highlights(_terms: string[], chunkIds: number[]): Promise<Map<number, TextRange[]>> {
    return new Map(chunkIds.map((id) => [id, []]));
  }

  /** No article has a copy: each is alone in its group, so none is in the map. */
  async duplicateGroups(_articleKeys: number[]): Promise<Map<number, number>> {
    return new Map();
  }

  async groupMembers(groupIds: number[]): Promise<Map<number, DuplicateMember[]>> {
    const out = new Map<number, DuplicateMember[]>();
    for (const key of groupIds) {
      const m = this.metas.get(key);
      if (m) out.set(key, [{ key, id: m.id, title: m.title, source: m.source, date: m.date }]);
    }
    return out;
  }

  async articleKey(id: string): Promise<number | null> {
    return this.keys.get(id) ?? null;
  }

  articleVectors(_articleKey: number): Promise<Array<{ chunkId: number; vector: Float32Array }>> {
    throw new Error('rankArticles does not read vectors');
  }

  async newestDate(): Promise<string | null> {
    return null;
  }

  release(): void {
    this.released++;
  }
}
