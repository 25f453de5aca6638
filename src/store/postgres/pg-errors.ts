import { QuarryError } from '../../errors.ts';

/** How long a client is told to wait before retrying when the database cannot be reached. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/**
 * SQLSTATE classes and codes that mean "the database cannot answer right now" rather than "this request is
 * wrong": connection exceptions (08), operator intervention (57: admin shutdown, crash shutdown, cannot
 * connect now), insufficient resources (53: too many connections, out of memory/disk), and a standby that
 * refuses a write (25006 read_only_sql_transaction, e.g. a replica promoted or a URL pointing at a replica), and
 * 3D000 invalid_catalog_name: the database in the URL does not exist (dropped, or being re-created by a restore) —
 * a request cannot be answered until an operator acts, which is a 503 with the reason, not an internal error.
 */
const UNAVAILABLE_SQLSTATE = /^(08|57|53)|^25006$|^40001$|^40P01$|^3D000$/;
/** Node socket errors and the messages pg throws when a connection drops or cannot be made in time. */
const UNAVAILABLE_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down|in recovery)/i;

/** Whether a pg/driver error means the database is unreachable or restarting (retry later). */
export function isUnavailable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE.has(code))) return true;
  if (e instanceof AggregateError) return e.errors.some(isUnavailable);
  return UNAVAILABLE_MESSAGE.test(e.message);
}

/**
 * Turns a driver error into a QuarryError: unreachable/restarting → `unavailable` (HTTP 503 + Retry-After),
 * anything else passes through (a QuarryError as it is; a bug stays a bug, reported as internal upstream).
 */
export function databaseError(e: unknown): unknown {
  if (e instanceof QuarryError) return e;
  if (isUnavailable(e)) {
    const reason = (e as Error).message || (e as { code?: string }).code || 'connection failed';
    return new QuarryError('unavailable', `the database is unavailable (${reason}); retry shortly`, {
      details: { retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
      cause: e,
    });
  }
  return e;
}

/** Runs a database call, mapping its failure with {@link databaseError}. */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw databaseError(e);
  }
}
