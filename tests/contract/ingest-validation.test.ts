import { sqliteBackend } from '../helpers/backends.ts';
import { ingestValidationSuite } from '../suites/ingest-validation.ts';

// The write API's validation contract on the SQLite backend; the same suite runs on PostgreSQL in
// tests/postgres/pg-contract.test.ts.
ingestValidationSuite(sqliteBackend);
