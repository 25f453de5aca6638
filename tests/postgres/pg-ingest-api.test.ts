import { describe } from 'vitest';
import { postgresBackend } from '../helpers/backends.ts';
import { postgresSkipReason } from '../helpers/postgres.ts';
import { ingestApiSuite } from '../suites/ingest-api.ts';

// The live write API end to end (tests/suites/ingest-api.ts) on the PostgreSQL backend, a database of its own.
const unavailable = await postgresSkipReason('pg-ingest-api.test.ts');

describe.skipIf(unavailable !== null)('ingest API (PostgreSQL)', () => ingestApiSuite(postgresBackend()));
