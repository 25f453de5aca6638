import type { RequestHandler } from 'express';

/** Several middlewares as one, run in order (a route that takes one handler for its auth gets the whole chain). */
export function compose(...handlers: RequestHandler[]): RequestHandler {
  if (handlers.length === 1) return handlers[0]!;
  return (req, res, next) => {
    let i = 0;
    const step = (err?: unknown): void => {
      if (err !== undefined && err !== null) {
        next(err);
        return;
      }
      const h = handlers[i++];
      if (!h) {
        next();
        return;
      }
      try {
        const r: unknown = h(req, res, step);
        if (r instanceof Promise) r.catch(step);
      } catch (e) {
        step(e);
      }
    };
    step();
  };
}
