import { sqliteBackend } from '../helpers/backends.ts';
import { searchE2eSuite } from '../suites/search-e2e.ts';

// Search end to end on the SQLite backend; the same suite runs on PostgreSQL in tests/postgres/pg-search.test.ts.
searchE2eSuite(sqliteBackend);
