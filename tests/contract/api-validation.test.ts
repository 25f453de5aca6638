import { sqliteBackend } from '../helpers/backends.ts';
import { apiValidationSuite } from '../suites/api-validation.ts';

// The search API's validation contract on the SQLite backend; the same suite runs on PostgreSQL in
// tests/postgres/pg-contract.test.ts.
apiValidationSuite(sqliteBackend, async (service) => {
  // Close the SQLite database under the running server: the next search fails inside the store.
  (service.quarry.store as unknown as { gen: { db: { close(): void } } }).gen.db.close();
});
