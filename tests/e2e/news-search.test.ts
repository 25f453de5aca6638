import { sqliteBackend } from '../helpers/backends.ts';
import { newsSearchSuite } from '../suites/news-search.ts';

// Newsroom search (filters, facets, paging, duplicates, the CLI) on the SQLite backend; the same suite runs on
// PostgreSQL in tests/postgres/pg-search.test.ts.
newsSearchSuite(sqliteBackend);
