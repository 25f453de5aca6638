import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { QuarryError } from '../errors.ts';

/** Constant-time comparison; hashing first makes the inputs equal length so their length does not leak. */
export function keysMatch(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function bearer(header: string | undefined): string | null {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1]! : null;
}

/** Write endpoints: disabled (403) without a configured key, never open. */
export function requireWriteKey(apiKey: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!apiKey) {
      return next(
        new QuarryError('forbidden', 'write endpoints are disabled: set QUARRY_API_KEY (at least 16 characters) and send it as "Authorization: Bearer <key>"'),
      );
    }
    const given = bearer(req.get('authorization'));
    if (given === null) return next(new QuarryError('unauthorized', 'missing API key: send "Authorization: Bearer <key>"', { field: 'authorization' }));
    if (!keysMatch(given, apiKey)) return next(new QuarryError('unauthorized', 'wrong API key', { field: 'authorization' }));
    next();
  };
}

/** Read endpoints: open unless QUARRY_READ_KEY is set; the write key is accepted for reads too. */
export function requireReadKey(readKey: string | undefined, apiKey: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (!readKey) return next();
    const given = bearer(req.get('authorization'));
    if (given === null)
      return next(new QuarryError('unauthorized', 'this server requires a read key: send "Authorization: Bearer <key>"', { field: 'authorization' }));
    if (keysMatch(given, readKey) || (apiKey !== undefined && keysMatch(given, apiKey))) return next();
    next(new QuarryError('unauthorized', 'wrong API key', { field: 'authorization' }));
  };
}
