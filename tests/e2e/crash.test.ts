import { sqliteBackend } from '../helpers/backends.ts';
import { crashSuite } from '../suites/crash.ts';

// kill -9 at random moments, inside HNSW checkpoints and rebuilds (tests/suites/crash.ts) on the SQLite backend;
// the same suite runs on PostgreSQL in tests/postgres/pg-crash.test.ts.
crashSuite(sqliteBackend, Number(process.env.CRASH_ROUNDS ?? 21));
