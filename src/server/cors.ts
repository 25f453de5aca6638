import cors, { type CorsOptions } from 'cors';
import type { Request, RequestHandler } from 'express';
import { QuarryError } from '../errors.ts';

/** QUARRY_CORS_ORIGINS as a list: origins (scheme://host[:port]) and possibly `*`. */
export function parseOrigins(setting: string): string[] {
  return setting
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter((o) => o !== '');
}

/** Reads: GET and HEAD anywhere, and POST /search (a search with a JSON body changes nothing). */
function isWrite(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  return !(method === 'POST' && path === '/search');
}

const BASE: CorsOptions = {
  allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
  // What a page may read from a response besides the simple headers: its id, and when to come back.
  exposedHeaders: ['X-Request-Id', 'Retry-After', 'RateLimit', 'RateLimit-Policy'],
  // Never: the API authenticates with a bearer key the page sends itself, not with cookies, so no
  // response needs to be readable by a page acting with the browser's ambient credentials.
  credentials: false,
  // Browsers cap this (Chromium at 2 h); 10 min keeps a settings change visible soon.
  maxAge: 600,
};

/**
 * CORS for web pages on other origins (the `cors` package), from QUARRY_CORS_ORIGINS: a listed origin may
 * call every route, writes included (they still need the write key); `*` lets any origin search and read,
 * never write. Nothing listed (the default): no CORS headers, so browsers keep other origins out. A
 * preflight the policy refuses is answered 403 with the reason (a browser reports only "CORS error").
 */
export function corsPolicy(setting: string): RequestHandler {
  const listed = parseOrigins(setting);
  const anyoneReads = listed.includes('*');
  const origins = new Set(listed.filter((o) => o !== '*'));

  const decide = (req: Request): CorsOptions | null => {
    const origin = req.get('origin');
    if (!origin) return null;
    const method = req.method === 'OPTIONS' ? (req.get('access-control-request-method') ?? '').toUpperCase() : req.method;
    if (origins.has(origin)) return { ...BASE, origin, methods: ['GET', 'HEAD', 'POST', 'DELETE'] };
    if (anyoneReads && !isWrite(method, req.path)) return { ...BASE, origin: '*', methods: ['GET', 'HEAD', 'POST'] };
    return null;
  };
  const apply = cors((req, cb) => cb(null, decide(req as Request) ?? { origin: false }));

  return (req, res, next) => {
    // The answer depends on the Origin (a listed one, `*`, or none), so caches must keep them apart.
    if (listed.length > 0) res.vary('Origin');
    const preflight = req.method === 'OPTIONS' && req.get('origin') !== undefined && req.get('access-control-request-method') !== undefined;
    if (preflight && decide(req) === null) {
      const method = req.get('access-control-request-method')!.toUpperCase();
      return next(
        new QuarryError(
          'forbidden',
          listed.length === 0
            ? 'cross-origin calls from web pages are off: list the page origin in QUARRY_CORS_ORIGINS'
            : `origin ${req.get('origin')} may not ${method} ${req.path} from a web page (QUARRY_CORS_ORIGINS${anyoneReads ? ': `*` allows reads only' : ''})`,
          { field: 'origin' },
        ),
      );
    }
    apply(req, res, next);
  };
}
