import { describe } from 'vitest';
import { postgresBackend } from '../helpers/backends.ts';
import { postgresSkipReason } from '../helpers/postgres.ts';
import { newsSearchSuite } from '../suites/news-search.ts';
import { searchE2eSuite } from '../suites/search-e2e.ts';

// Search end to end and newsroom search (tests/suites/) on the PostgreSQL backend: one cluster, a database for
// each suite.
const unavailable = await postgresSkipReason('pg-search.test.ts');

describe.skipIf(unavailable !== null)('search (PostgreSQL)', () => {
  const backend = postgresBackend();
  describe('search end to end', () => searchE2eSuite(backend));
  describe('newsroom search', () => newsSearchSuite(backend));
});
