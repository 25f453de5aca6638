import { dateKey, metadataKey } from '../corpus/article.ts';
import type { ArticleMeta } from '../store/store.ts';
import type { FusedChunk } from './fuse.ts';
import { type FacetName, MAX_DEPTH } from './schema.ts';

/*
 * From ranked articles to the stories a page shows: recency decay, collapsing duplicate groups, sorting,
 * paging and facet counts. Pure functions over what the store returned, shared by every backend.
 *
 * The matching set (what `total` and `facets` count, and what pages walk through) is defined once here:
 * the stories — articles, or duplicate groups with collapse — that own at least one candidate chunk of
 * either retriever (within the filters) and score at least minScore. The candidate pool does not depend on
 * `offset`, so consecutive pages slice one ordered list: page 2 repeats nothing of page 1 and skips nothing.
 */

export interface ScoredArticle {
  key: number;
  /** The retrieval score (cosine, BM25 or fused), before any recency decay. */
  relevance: number;
  /** relevance × recency factor: what stories rank by. */
  score: number;
  recencyFactor: number | null;
  /** Its best chunks, best first. */
  chunks: FusedChunk[];
}

export interface Story {
  /** The member shown: the best-scoring one in the pool (ties: earliest date, then id). */
  rep: ScoredArticle;
  /** Its duplicate group, or null for an article alone. */
  group: number | null;
}

export interface Recency {
  /** YYYY-MM-DD ages are counted from (null: no article has a date; every factor is then 1). */
  reference: string | null;
  halfLifeDays: number;
}

const DAY_MS = 86_400_000;
const dayNumber = (ymd: string): number => Date.UTC(Number(ymd.slice(0, 4)), Number(ymd.slice(5, 7)) - 1, Number(ymd.slice(8, 10))) / DAY_MS;

/**
 * 0.5^(age / half-life), the age in whole calendar days between the article's date as written and the
 * reference. An article dated after the reference is not boosted (factor 1); an undated article has no age
 * and gets 0: with recency it sinks below every dated one.
 */
export function recencyFactor(date: string | null, r: Recency): number {
  if (r.reference === null) return 1;
  const d = dateKey(date);
  if (d === null) return 0;
  const age = Math.max(0, dayNumber(r.reference) - dayNumber(d));
  return 0.5 ** (age / r.halfLifeDays);
}

/** Applies the decay and re-ranks (a stable sort: equal scores keep their retrieval order). */
export function applyRecency(articles: ScoredArticle[], metas: ReadonlyMap<number, ArticleMeta>, r: Recency): ScoredArticle[] {
  for (const a of articles) {
    a.recencyFactor = recencyFactor(metas.get(a.key)?.date ?? null, r);
    a.score = a.relevance * a.recencyFactor;
  }
  return articles.slice().sort((a, b) => b.score - a.score);
}

/**
 * Stories from articles ranked best first: with collapse, one per duplicate group (its best member;
 * equal scores go to the earlier date, then the smaller id), in the order of their best members; without,
 * one per article.
 */
export function collapseStories(
  ranked: readonly ScoredArticle[],
  groups: ReadonlyMap<number, number>,
  metas: ReadonlyMap<number, ArticleMeta>,
  collapse: boolean,
): Story[] {
  if (!collapse) return ranked.map((rep) => ({ rep, group: groups.get(rep.key) ?? null }));
  const out: Story[] = [];
  const byGroup = new Map<number, Story>();
  for (const a of ranked) {
    const g = groups.get(a.key);
    if (g === undefined) {
      out.push({ rep: a, group: null });
      continue;
    }
    const story = byGroup.get(g);
    if (!story) {
      const s = { rep: a, group: g };
      byGroup.set(g, s);
      out.push(s);
    } else if (a.score === story.rep.score && earlier(metas.get(a.key), metas.get(story.rep.key))) {
      story.rep = a;
    }
  }
  return out;
}

/** a before b: earlier date (undated last), then smaller id. */
function earlier(a: ArticleMeta | undefined, b: ArticleMeta | undefined): boolean {
  if (!a || !b) return false;
  const da = dateKey(a.date);
  const db = dateKey(b.date);
  if (da !== db) return db === null ? da !== null : da !== null && da < db;
  return a.id < b.id;
}

/** `date`: newest first (by the date as written), undated last, equal dates by score; otherwise unchanged. */
export function sortStories(stories: Story[], sort: 'relevance' | 'date', metas: ReadonlyMap<number, ArticleMeta>): Story[] {
  if (sort === 'relevance') return stories;
  const key = (s: Story) => dateKey(metas.get(s.rep.key)?.date ?? null);
  return stories.slice().sort((a, b) => {
    const da = key(a);
    const db = key(b);
    if (da !== db) return da === null ? 1 : db === null ? -1 : da < db ? 1 : -1;
    return b.rep.score - a.rep.score;
  });
}

export interface FacetCount {
  value: string;
  count: number;
}

const TOP_FACET_VALUES = 20;

/**
 * Counts over the matching set (the first MAX_DEPTH stories, as `total`), one count per story by its
 * representative's fields. Sources and tags are counted case-insensitively and shown in their most frequent
 * spelling in the set; an article without the field is not counted. The 20 most frequent values, by count
 * then value.
 */
export function countFacets(
  stories: readonly Story[],
  names: readonly FacetName[],
  metas: ReadonlyMap<number, ArticleMeta>,
): Partial<Record<FacetName, FacetCount[]>> {
  const out: Partial<Record<FacetName, FacetCount[]>> = {};
  const set = stories.slice(0, MAX_DEPTH);
  for (const name of names) {
    const counts = new Map<string, { count: number; spellings: Map<string, number> }>();
    const add = (raw: string) => {
      const key = name === 'year' ? raw : metadataKey(raw);
      let c = counts.get(key);
      if (!c) counts.set(key, (c = { count: 0, spellings: new Map() }));
      c.count++;
      c.spellings.set(raw, (c.spellings.get(raw) ?? 0) + 1);
    };
    for (const s of set) {
      const m = metas.get(s.rep.key);
      if (!m) continue;
      if (name === 'source' && m.source) add(m.source);
      if (name === 'year' && m.date) add(m.date.slice(0, 4));
      if (name === 'tag') {
        const seen = new Set<string>();
        for (const t of m.tags) {
          if (seen.has(metadataKey(t))) continue;
          seen.add(metadataKey(t));
          add(t);
        }
      }
    }
    out[name] = [...counts.values()]
      .map((c) => ({ value: [...c.spellings.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0], count: c.count }))
      .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0))
      .slice(0, TOP_FACET_VALUES);
  }
  return out;
}
