import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SourcedArticle } from '../../src/core/prepare.ts';

/** Research-only data: read at run time by path, never copied into the repository. */
export const DATA_DIR = resolve(import.meta.dirname, '../../../shared/data');

export type Source = 'bbc-news' | 'reuters21578' | 'scifact';

export interface Paragraph {
  source: Source;
  docId: string;
  title: string;
  text: string;
}

interface Doc {
  id: string;
  title?: string;
  text: string;
}

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export function readDocs(source: Source): Doc[] {
  const dir = join(DATA_DIR, source);
  return readdirSync(dir)
    .filter((f) => /^corpus-\d+\.jsonl$/.test(f))
    .sort()
    .flatMap((f) => readJsonl<Doc>(join(dir, f)));
}

/**
 * A document's paragraphs: its text split on blank lines, whitespace collapsed, fragments shorter than
 * 20 characters dropped (datelines, bylines). SciFact abstracts have no blank lines, so each abstract is
 * one long paragraph: the long inputs of the suite.
 */
export function paragraphs(source: Source): Paragraph[] {
  return readDocs(source).flatMap((d) =>
    d.text
      .split(/\n\s*\n/)
      .map((p) => p.replace(/\s+/g, ' ').trim())
      .filter((p) => p.length >= 20)
      .map((text) => ({ source, docId: d.id, title: d.title ?? '', text })),
  );
}

/** SciFact test queries (held out: never indexed). */
export function scifactQueries(): string[] {
  return readJsonl<{ id: string; text: string }>(join(DATA_DIR, 'scifact/queries.jsonl')).map((q) => q.text);
}

/** bbc-news titles, for use as held-out natural-language queries (titles are not indexed as paragraphs). */
export function bbcTitles(): string[] {
  return readDocs('bbc-news')
    .map((d) => d.title ?? '')
    .filter((t) => t.length > 0);
}

/** Deterministic shuffle (mulberry32), so runs see the same sample. */
export function seededShuffle<T>(items: readonly T[], seed = 42): T[] {
  const out = items.slice();
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const safeId = (s: string) => s.replace(/[^A-Za-z0-9._:-]/g, '-');

/** Whole articles (paragraphs split on blank lines) until about `target` paragraphs: cached sources first. */
export function articlesFor(target: number): SourcedArticle[] {
  const out: SourcedArticle[] = [];
  let paragraphs = 0;
  for (const source of ['bbc-news', 'scifact', 'reuters21578'] as Source[]) {
    for (const d of readDocs(source)) {
      if (paragraphs >= target) return out;
      const paras = d.text
        .split(/\n\s*\n/)
        .map((p) => p.replace(/\s+/g, ' ').trim())
        .filter((p) => p.length >= 20);
      if (paras.length === 0) continue;
      paragraphs += paras.length;
      out.push({
        article: { id: `${source}-${safeId(d.id)}`, title: d.title?.trim() || `${source} ${d.id}`, date: null, source, url: null, paragraphs: paras },
        origin: 'bench',
      });
    }
  }
  return out;
}
