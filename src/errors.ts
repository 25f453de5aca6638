/**
 * Errors are values with a code. The HTTP layer (server/errors.ts) and the CLI (cli/main.ts) each turn them
 * into output in one place; everything else only throws or returns them.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'not_found'
  | 'unauthorized'
  | 'forbidden'
  | 'payload_too_large'
  | 'unsupported_media_type'
  /** Too much work queued: retry shortly (`details.retryAfterSeconds`). */
  | 'overloaded'
  /** The request ran past its time limit and was abandoned (nothing of a write stored): retry later. */
  | 'timeout'
  /** The client used up its request budget (a token bucket): retry after `details.retryAfterSeconds`. */
  | 'rate_limited'
  /** A dependency (the index, the database) cannot answer right now. */
  | 'unavailable'
  | 'conflict'
  | 'index_missing'
  | 'index_incompatible'
  | 'model_unavailable'
  | 'parse_error'
  | 'internal';

export class QuarryError extends Error {
  readonly code: ErrorCode;
  /** The request field (or file, or flag) the error is about, when there is one. */
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: { field?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'QuarryError';
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
  }
}

export const isQuarryError = (e: unknown): e is QuarryError => e instanceof QuarryError;
