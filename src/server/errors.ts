import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { z } from 'zod';
import { type ErrorCode, isQuarryError, QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { formatZodIssue, issuePath } from '../validation.ts';

/** The HTTP status of each error code: the one place core errors meet HTTP. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  invalid_request: 400,
  parse_error: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  overloaded: 503,
  timeout: 503,
  unavailable: 503,
  index_missing: 503,
  index_incompatible: 503,
  model_unavailable: 503,
};

/** Codes a client should retry after a pause: answered with Retry-After. */
const RETRY_LATER: ReadonlySet<ErrorCode> = new Set(['overloaded', 'timeout', 'rate_limited', 'unavailable', 'index_missing']);

/** Parses with a zod schema or throws a 400 naming the first bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, where: 'query' | 'body' | 'path'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.code === 'unrecognized_keys' ? issue.keys[0] : issuePath(issue);
  throw new QuarryError('invalid_request', `${where === 'body' ? 'request body' : where === 'query' ? 'query string' : 'path'}: ${formatZodIssue(issue)}`, {
    field,
  });
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new QuarryError('not_found', `no route for ${req.method} ${req.path}; see /openapi.json`));
};

/** Body-parser errors carry a `type`; they become the same JSON error shape as everything else. */
function fromBodyParser(err: { type?: string; message?: string; limit?: number }): QuarryError | null {
  switch (err.type) {
    case 'entity.parse.failed':
      return new QuarryError('invalid_request', `request body is not valid JSON: ${err.message ?? ''}`.trim(), { field: 'body' });
    case 'entity.too.large':
      return new QuarryError('payload_too_large', `request body is larger than the limit of ${err.limit ?? '?'} bytes`, { field: 'body' });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new QuarryError('unsupported_media_type', err.message ?? 'unsupported encoding', { field: 'content-type' });
    case 'request.aborted':
      return new QuarryError('invalid_request', 'request aborted by the client', { field: 'body' });
    default:
      return null;
  }
}

/** Other client errors Express and its router raise with a 4xx status (a path that is not valid percent-encoding). */
function fromHttpError(err: { status?: unknown; message?: string }): QuarryError | null {
  if (typeof err.status !== 'number' || err.status < 400 || err.status > 499) return null;
  if (err instanceof URIError) return new QuarryError('invalid_request', 'the path is not valid percent-encoded UTF-8', { field: 'path' });
  return new QuarryError(err.status === 413 ? 'payload_too_large' : 'invalid_request', err.message ?? 'bad request');
}

/** The JSON body of an error response (the error handler's, and the front door's pre-serialised refusals). */
export function errorBody(e: QuarryError): { error: { code: ErrorCode; message: string; field?: string } } {
  return { error: { code: e.code, message: e.message, ...(e.field !== undefined ? { field: e.field } : {}) } };
}

/** The status and headers of an error response: Retry-After for the codes a client should retry after a pause. */
export function errorHead(e: QuarryError): { status: number; retryAfter: string | null } {
  return { status: HTTP_STATUS[e.code], retryAfter: RETRY_LATER.has(e.code) ? String(e.details?.retryAfterSeconds ?? 5) : null };
}

/** The one place errors become HTTP responses. Internal errors are logged with their stack and answered
 * without it. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const e: QuarryError = isQuarryError(err)
      ? err
      : (fromBodyParser(err) ??
        fromHttpError(err) ??
        new QuarryError('internal', 'internal error; the server log has the details (request id in X-Request-Id)'));
    if (e.code === 'internal') logger.error({ err, path: req.path, reqId: res.getHeader('x-request-id') }, 'internal error');
    if (res.headersSent) return;
    // For the request log: a refusal to protect latency is not a server fault (see request-log.ts), and the line
    // names the error the client got, not a generic "failed with status code 503" with a stack of its own.
    res.locals.errorCode = e.code;
    if (e.code !== 'internal') (res as typeof res & { err?: unknown }).err = e;
    const head = errorHead(e);
    if (head.retryAfter !== null) res.setHeader('Retry-After', head.retryAfter);
    res.status(head.status).json(errorBody(e));
  };
}
