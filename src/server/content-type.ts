import express, { type RequestHandler } from 'express';
import { QuarryError } from '../errors.ts';

/**
 * A POST body must be a JSON object sent as application/json (a form post or text/plain is refused).
 * Parsing is per route and comes after authentication, so an unauthenticated client cannot make the
 * server read and parse a body up to the size limit.
 */
export function jsonBody(limit: string): RequestHandler[] {
  const requireJsonType: RequestHandler = (req, _res, next) => {
    if (!req.is('application/json')) {
      return next(
        new QuarryError('unsupported_media_type', `Content-Type must be application/json (got ${req.get('content-type') ?? 'none'})`, {
          field: 'content-type',
        }),
      );
    }
    next();
  };
  const requireObject: RequestHandler = (req, _res, next) => {
    if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      return next(new QuarryError('invalid_request', 'request body must be a JSON object', { field: 'body' }));
    }
    next();
  };
  return [requireJsonType, express.json({ limit, strict: false }), requireObject];
}
