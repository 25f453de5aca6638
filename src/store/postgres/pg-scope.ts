import { metadataKey } from '../../corpus/article.ts';
import type { FilterScope, SearchFilter } from '../store.ts';

/** A WHERE fragment and its parameters, numbered from a given position. */
export interface SqlCondition {
  sql: string;
  params: unknown[];
}

/**
 * The SQL form of a filter over a table holding the filter columns (date_key, source_key, tag_keys: the
 * articles table, and the chunks table which carries its article's copy). Values compare as metadataKeys,
 * dates as YYYY-MM-DD strings (an article without a date never matches a bound), as the SQLite backend does.
 */
export function filterCondition(filter: SearchFilter, exclude: readonly number[], keyColumn: string, firstParam: number): SqlCondition {
  const parts: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${firstParam + params.length - 1}`;
  };
  if (filter.sources?.length) parts.push(`source_key = ANY(${p(filter.sources.map(metadataKey))}::text[])`);
  if (filter.tags?.length) parts.push(`tag_keys && ${p(filter.tags.map(metadataKey))}::text[]`);
  if (filter.from) parts.push(`date_key >= ${p(filter.from)}`);
  if (filter.to) parts.push(`date_key <= ${p(filter.to)}`);
  if (exclude.length > 0) parts.push(`NOT (${keyColumn} = ANY(${p(exclude)}::bigint[]))`);
  return { sql: parts.length > 0 ? parts.join(' AND ') : 'true', params };
}

/** A resolved filter: its article keys (for `has`) and the filter itself (for the candidate queries' SQL). */
export class PgScope implements FilterScope {
  constructor(
    readonly generation: number,
    readonly filter: SearchFilter,
    readonly exclude: readonly number[],
    private readonly keys: Set<number>,
    readonly articles: number,
    readonly chunks: number,
    readonly selectivity: number,
  ) {}

  has(articleKey: number): boolean {
    return this.keys.has(articleKey);
  }

  articleKeys(): number[] {
    return [...this.keys];
  }

  /** The condition on the chunks table. */
  chunkCondition(firstParam: number): SqlCondition {
    return filterCondition(this.filter, this.exclude, 'article_key', firstParam);
  }
}
