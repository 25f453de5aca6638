import type { RequestHandler } from 'express';
import { QuarryError } from '../errors.ts';

/** POST bodies must be JSON objects sent as application/json (a form post or text/plain is refused). */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  if (!req.is('application/json')) {
    return next(new QuarryError('unsupported_media_type', `Content-Type must be application/json (got ${req.get('content-type') ?? 'none'})`, { field: 'content-type' }));
  }
  if (req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
    return next(new QuarryError('invalid_request', 'request body must be a JSON object', { field: 'body' }));
  }
  next();
};
