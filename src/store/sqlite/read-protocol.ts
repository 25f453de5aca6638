import type { ErrorCode } from '../../errors.ts';
import type { ArticleDatabase } from './database.ts';

/** The ArticleDatabase reads a search may run in the read worker (each a pure look-up on a read-only connection). */
export const READ_METHODS = ['lexicalSearch', 'highlights', 'matchedTerms', 'articleOfChunks', 'chunkTexts', 'articleMetas', 'groupMembers'] as const;
export type ReadMethod = (typeof READ_METHODS)[number];

export type ReadRequest =
  | { kind: 'read'; id: number; dir: string; method: ReadMethod; args: unknown[] }
  /** The generation in `dir` was closed on the main thread: close its connection (no answer). */
  | { kind: 'forget'; dir: string }
  | { kind: 'close'; id: number };

export interface ReadResponse {
  id: number;
  result?: unknown;
  error?: { code?: ErrorCode; message: string; field?: string };
}

export type ReadArgs<M extends ReadMethod> = Parameters<ArticleDatabase[M]>;
export type ReadResult<M extends ReadMethod> = ReturnType<ArticleDatabase[M]>;

/** `db.method(...args)`: one read, wherever it runs (in the worker, or on the main thread without one). */
export function runRead<M extends ReadMethod>(db: ArticleDatabase, method: M, args: ReadArgs<M>): ReadResult<M> {
  return (db[method] as (...a: ReadArgs<M>) => ReadResult<M>).apply(db, args);
}
