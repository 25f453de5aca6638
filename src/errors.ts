/**
 * Errors are values with a code. The HTTP layer and the CLI each turn them into output in one place
 * (server/error-handler.ts, cli/main.ts); everything else only throws or returns them.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'not_found'
  | 'unauthorized'
  | 'forbidden'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'overloaded'
  | 'conflict'
  | 'index_missing'
  | 'index_incompatible'
  | 'model_unavailable'
  | 'parse_error'
  | 'internal';

const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  parse_error: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  overloaded: 503,
  index_missing: 503,
  index_incompatible: 503,
  model_unavailable: 503,
  internal: 500,
};

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

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}

export const isQuarryError = (e: unknown): e is QuarryError => e instanceof QuarryError;
