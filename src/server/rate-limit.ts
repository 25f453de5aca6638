import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/config.ts';
import { QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { keysMatch } from './auth.ts';
import { TokenBucketStore } from './token-bucket.ts';

export type LimitedClass = 'search' | 'write';
type ClientKind = 'anonymous' | 'key';

/**
 * Who a request is, for rate limits: a configured API key (by a hash of it, never the key itself: the key
 * leaves the process only as the hashed `pk` of the RateLimit-Policy header), or the client's address for
 * requests without one. Runs after authentication, so a made-up key cannot buy a fresh bucket: only the
 * configured keys count as keys.
 */
function clientOf(req: Request, keys: string[]): { kind: ClientKind; id: string } {
  const token = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1];
  if (token !== undefined && keys.some((k) => keysMatch(token, k))) {
    return { kind: 'key', id: `key:${createHash('sha256').update(token).digest('hex').slice(0, 32)}` };
  }
  // IPv6 clients are grouped by /56, as one subscriber usually holds a whole prefix.
  return { kind: 'anonymous', id: `ip:${ipKeyGenerator(req.ip ?? 'unknown')}` };
}

export interface RateLimits {
  /** Token buckets for searches: anonymous clients by address, then keyed clients by key. */
  search: RequestHandler[];
  /** Token bucket for writes, by key (writes always carry the write key). */
  write: RequestHandler[];
}

/**
 * Token-bucket rate limits (express-rate-limit with the TokenBucketStore), answered with 429, Retry-After and
 * the IETF draft-8 `RateLimit` / `RateLimit-Policy` headers, counted in `quarry_rate_limited_total`.
 * A rate of 0 turns a bucket off (no headers either).
 */
export function rateLimits(config: Config, registry: Registry, logger: Logger): RateLimits {
  const keys = [config.apiKey, config.readKey].filter((k): k is string => k !== undefined);
  const limited = new Counter({
    name: 'quarry_rate_limited_total',
    help: 'Requests refused with 429 by a rate limit, by request class and client kind (anonymous: per address; key: per API key)',
    labelNames: ['class', 'client'],
    registers: [registry],
  });
  for (const [cls, client] of [
    ['search', 'anonymous'],
    ['search', 'key'],
    ['write', 'key'],
  ] as const)
    limited.inc({ class: cls, client }, 0);

  const bucket = (cls: LimitedClass, kind: ClientKind, rate: number, burst: number): RequestHandler | null => {
    if (rate <= 0) return null;
    const store = new TokenBucketStore(rate, burst);
    return rateLimit({
      store,
      limit: burst,
      windowMs: store.windowMs,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      identifier: `${cls}-${kind === 'key' ? 'per-key' : 'per-address'}`,
      skip: (req) => clientOf(req, keys).kind !== kind,
      keyGenerator: (req) => `${cls}:${clientOf(req, keys).id}`,
      handler: (req, _res, next) => {
        limited.inc({ class: cls, client: kind });
        const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
        const retryAfterSeconds = Math.max(1, Math.ceil(((info?.resetTime?.getTime() ?? Date.now() + 1000) - Date.now()) / 1000));
        next(
          new QuarryError(
            'rate_limited',
            `too many ${cls === 'search' ? 'searches' : 'writes'} from this ${kind === 'key' ? 'API key' : 'address'}: ${rate}/s with bursts of ${burst}; retry after ${retryAfterSeconds} s`,
            { details: { retryAfterSeconds } },
          ),
        );
      },
      logger: {
        warn: (e, message) => logger.warn({ err: e }, message ?? 'rate limiter warning'),
        error: (e, message) => logger.error({ err: e }, message ?? 'rate limiter error'),
      },
    });
  };
  const present = (...hs: Array<RequestHandler | null>) => hs.filter((h): h is RequestHandler => h !== null);
  return {
    search: present(bucket('search', 'anonymous', config.searchRate, config.searchBurst), bucket('search', 'key', config.keySearchRate, config.keySearchBurst)),
    write: present(bucket('write', 'key', config.writeRate, config.writeBurst)),
  };
}
