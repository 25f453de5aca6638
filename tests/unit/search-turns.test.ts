import { describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { SearchRequestSchema } from '../../src/search/schema.ts';
import { runSearch } from '../../src/search/search.ts';
import type { Manifest } from '../../src/store/manifest.ts';
import type { CandidateList, DensePath, IndexStore, LexicalPath } from '../../src/store/store.ts';
import { yieldToEventLoop } from '../../src/util/event-loop.ts';
import { MemoryReader } from '../helpers/memory-reader.ts';
import { TEST_SEARCH_DEFAULTS } from '../helpers/search-defaults.ts';

/*
 * Where a search computes, in turns of the event loop. The loop reads requests (and accepts one new connection)
 * only between callbacks; with searchYieldTurns a search does not run BM25 inside the callback that started it, nor
 * the k-NN and ranking inside the one that delivered its query vector, so those turns stay short and what arrived
 * meanwhile is read (and counted by the search queue) before the search goes on (the default since 2026-12-02). Off,
 * each runs on at once. The retrievers here only record when they run.
 */

class RecordingReader extends MemoryReader {
  readonly ran: string[] = [];
  override get manifest(): Manifest {
    return { model: { id: 'test-model', dims: 3 }, built: '2026-12-01T00:00:00.000Z' } as unknown as Manifest;
  }
  override lexicalCandidates(): Promise<CandidateList<LexicalPath>> {
    this.ran.push('lexical');
    return Promise.resolve({ chunks: [{ chunkId: 1, rank: 1, score: 2 }], path: 'fts5' });
  }
  override vectorCandidates(): Promise<CandidateList<DensePath>> {
    this.ran.push('knn');
    return Promise.resolve({ chunks: [{ chunkId: 2, rank: 1, score: 0.9 }], path: 'hnsw' });
  }
}

/** Every continuation already queued runs, and those it queues, without the loop taking a turn. */
async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < 200; i++) await Promise.resolve();
}

function setup() {
  const reader = new RecordingReader([{ id: 'A', paragraphs: ['Harbours and tides.', 'Ferries at dawn.'] }]);
  const store = { reader: () => reader } as unknown as IndexStore;
  let deliver: (v: Float32Array) => void = () => {};
  const vector = new Promise<Float32Array>((r) => (deliver = r));
  const embedder = { embedQuery: () => vector } as unknown as Embedder;
  const search = (searchYieldTurns: boolean) =>
    runSearch(store, embedder, SearchRequestSchema.parse({ q: 'harbours tides' }), { ...TEST_SEARCH_DEFAULTS, searchYieldTurns });
  return { reader, search, deliver: () => deliver(new Float32Array([1, 0, 0])) };
}

describe('where a search computes, in turns of the event loop', () => {
  it('with searchYieldTurns: BM25 after the turn that started it, k-NN after the turn that delivered its vector', async () => {
    const { reader, search, deliver } = setup();
    const pending = search(true);
    await drainMicrotasks();
    expect(reader.ran).toEqual([]);
    await yieldToEventLoop();
    expect(reader.ran).toEqual(['lexical']);

    deliver();
    await drainMicrotasks();
    expect(reader.ran).toEqual(['lexical']);

    const { response } = await pending;
    expect(reader.ran).toEqual(['lexical', 'knn']);
    expect(response.results.map((r) => r.article.id)).toEqual(['A']);
    expect(reader.released).toBe(1);
  });

  it('without it (the default): BM25 in the turn that started it, k-NN in the turn that delivered its vector', async () => {
    const { reader, search, deliver } = setup();
    const pending = search(false);
    expect(reader.ran).toEqual(['lexical']);
    deliver();
    await drainMicrotasks();
    expect(reader.ran).toEqual(['lexical', 'knn']);
    expect((await pending).response.results.map((r) => r.article.id)).toEqual(['A']);
  });
});
