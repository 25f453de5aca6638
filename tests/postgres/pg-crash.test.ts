import { describe } from 'vitest';
import { postgresBackend } from '../helpers/backends.ts';
import { postgresSkipReason } from '../helpers/postgres.ts';
import { crashSuite } from '../suites/crash.ts';

// kill -9 of a writing Quarry process at random moments and inside rebuilds (tests/suites/crash.ts) on the
// PostgreSQL backend. Fewer rounds than SQLite's 21: no checkpoint rounds here, and each round's restart and
// verification cost the same as there (PG_CRASH_ROUNDS sets it).
const unavailable = await postgresSkipReason('pg-crash.test.ts');

describe.skipIf(unavailable !== null)('crash safety (PostgreSQL)', () => crashSuite(postgresBackend(), Number(process.env.PG_CRASH_ROUNDS ?? 6)));
