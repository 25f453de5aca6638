import { describe } from 'vitest';
import { sqliteBackend } from '../helpers/backends.ts';
import { ingestApiSuite } from '../suites/ingest-api.ts';

// The live write API end to end on the SQLite backend; the same suite runs on PostgreSQL in
// tests/postgres/pg-ingest-api.test.ts.
describe('ingest API (SQLite)', () => ingestApiSuite(sqliteBackend));
