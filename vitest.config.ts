import { defineConfig } from 'vitest/config';

/*
 * Test tiers, one folder each (npm test runs them all; npm run test:fast all but e2e):
 * - unit:     pure logic, no index and no server (fusion, ranking, chunking, parsing, config, metrics maths).
 * - contract: the HTTP API and the CLI surface over a real SQLite index, on the test embedder
 *             (tests/helpers/hashed-embedder.ts): validation, auth, OpenAPI, metrics, logging, FTS5 safety.
 * - storage:  the store and its generations on the test embedder: persistence, replay, compaction, swaps.
 * - install:  that installing Quarry reaches nothing outside the npm registry.
 * - e2e:      the real model, real SQLite and real HTTP (and child processes, a browser): what depends on the
 *             model's ranking, and the crash test.
 * - postgres: against a real PostgreSQL server started by scripts/postgres-lib.mjs (skipped with the reason where
 *             PostgreSQL cannot be installed), including the PostgreSQL runs of the suites shared with the other
 *             tiers (tests/suites/: API validation, ingest, search, news search, the crash test).
 * Shared suites are functions of a backend (tests/helpers/backends.ts), not test files: the SQLite run stays
 * in its tier, the PostgreSQL run of the same body is in tests/postgres/.
 * The first four are the `fast` project: they never load the model (tests/helpers/no-model.ts refuses it).
 *
 * Timeouts are hang guards, not deadlines: a test passes or fails on what it checks, so they are generous
 * enough that a slow or loaded machine only makes the run longer. Work inside tests is bounded by counts.
 */
const HANG_GUARD_MS = 10 * 60_000;

export default defineConfig({
  test: {
    testTimeout: HANG_GUARD_MS,
    hookTimeout: HANG_GUARD_MS,
    // expect.poll's default gives up after 1 s: a deadline, not a hang guard (the page tests poll the browser).
    expect: { poll: { timeout: 5 * 60_000 } },
    // e2e files each load their own ONNX session; two at a time keeps the 2 cores busy without thrashing.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'fast',
          include: ['tests/{unit,contract,storage,install}/**/*.test.ts'],
          setupFiles: ['tests/helpers/no-model.ts'],
        },
      },
      {
        extends: true,
        test: { name: 'e2e', include: ['tests/{e2e,postgres}/**/*.test.ts'] },
      },
    ],
  },
});
