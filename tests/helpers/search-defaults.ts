import type { SearchDefaults } from '../../src/search/rank.ts';

/** The ranking defaults unit tests work their expected scores out with (RRF k = 60, weights 1 and 1). */
export const TEST_SEARCH_DEFAULTS: SearchDefaults = {
  candidates: 100,
  rrfK: 60,
  denseWeight: 1,
  lexicalWeight: 1,
  bm25TitleWeight: 2,
  bm25TextWeight: 1,
  fusion: 'rrf',
  fuseBy: 'chunk',
  lexicalStopwords: true,
};
