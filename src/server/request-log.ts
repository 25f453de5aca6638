import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type pino from 'pino';
import { type HttpLogger, pinoHttp } from 'pino-http';
import { isQuarryError } from '../errors.ts';

export const REQUEST_ID_HEADER = 'X-Request-Id';
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * A client's request id is echoed into logs and a response header, so only a bounded run of harmless
 * characters is kept (no newlines, quotes or control characters that could forge log lines or headers).
 * Anything that leaves nothing usable gets a fresh UUID instead.
 */
export function requestIdFrom(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  const clean = (given ?? '').replace(/[^A-Za-z0-9._:/+=@-]/g, '').slice(0, MAX_REQUEST_ID_LENGTH);
  return clean.length > 0 ? clean : randomUUID();
}

/** Paths whose successful responses are routine (scrapes, probes, page assets): logged at debug only. */
const ROUTINE = /^\/(metrics|health|static\/|docs\/assets\/)/;

const pathOf = (url: string | undefined) => (url ?? '').split('?', 1)[0]!;

/**
 * One JSON line per request with its id, method, path, status and time. The query string is left out
 * unless `logQueries` is on: search queries can be personal, and `/search?q=…` carries them.
 */
export function requestLogger(logger: pino.Logger, opts: { logQueries: boolean }): HttpLogger<Request, Response> {
  return pinoHttp<Request, Response>({
    logger,
    genReqId(req, res) {
      const id = requestIdFrom(req.headers['x-request-id']);
      res.setHeader(REQUEST_ID_HEADER, id);
      return id;
    },
    // Our own serializers see the raw request, so nothing pino-std-serializers adds (headers, cookies,
    // the full URL) can slip into a log line.
    wrapSerializers: false,
    serializers: {
      req: (req: Request) => ({ id: req.id, method: req.method, path: opts.logQueries ? req.originalUrl : pathOf(req.originalUrl ?? req.url) }),
      res: (res: Response) => ({ statusCode: res.statusCode }),
      // An error answered on purpose (a bad field, a refusal under overload) is logged as the client saw it: its
      // code and message, no stack (under overload that was a stack per refused search). Anything else keeps its stack.
      err: (err: Error) =>
        isQuarryError(err) && err.code !== 'internal' ? { type: err.code, message: err.message } : { type: err.name, message: err.message, stack: err.stack },
    },
    customProps(req) {
      if (!opts.logQueries) return {};
      const q = (req.body as { q?: unknown } | undefined)?.q;
      return typeof q === 'string' && pathOf(req.originalUrl) === '/search' ? { q } : {};
    },
    customLogLevel(req, res, err) {
      // Load shed on purpose (queue full, time limit) is counted in /metrics and logged as a warning: an
      // operator paging on error lines should not be woken by the overload protection doing its job.
      const code = res.locals.errorCode as string | undefined;
      if (!err && res.statusCode === 503 && (code === 'overloaded' || code === 'timeout')) return 'warn';
      if (err || res.statusCode >= 500) return 'error';
      if (res.statusCode >= 400) return 'warn';
      return ROUTINE.test(pathOf(req.url)) ? 'debug' : 'info';
    },
    customSuccessMessage: (req, res, ms) => `${req.method} ${pathOf(req.originalUrl ?? req.url)} ${res.statusCode} ${ms}ms`,
    customErrorMessage: (req, res, err) => `${req.method} ${pathOf(req.originalUrl ?? req.url)} ${res.statusCode} ${err.message}`,
  });
}
