import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../../src/embed/embedder.ts';
import { createHashedEmbedder } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';
import { SEEDS_DIR, type Service, startHashedService, testConfig } from '../helpers/service.ts';

describe('a full write queue over HTTP', () => {
  const KEY = 'queue-test-key-0123456789';
  let service: Service;
  /** Passages wait here while it is closed: a write stays in progress until the test lets it finish. */
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  let embedding = 0;
  const hashed = createHashedEmbedder();
  const gated: Embedder = {
    ...hashed,
    embedPassages: async (texts, onProgress) => {
      embedding++;
      await gate;
      return hashed.embedPassages(texts, onProgress);
    },
  };

  beforeAll(async () => {
    service = await startHashedService({
      seedsDir: SEEDS_DIR,
      config: testConfig({ seedsDir: SEEDS_DIR, apiKey: KEY, writeQueueLimit: 1 }),
      embedder: gated,
    });
  });
  afterAll(async () => {
    open();
    await service?.dispose();
  });

  it('answers 503 with Retry-After while a write is in progress, writes nothing for it, and searches still answer', async () => {
    const batch = (n: number) => ({
      articles: Array.from({ length: 5 }, (_, i) => ({
        id: `queued-${n}-${i}`,
        title: `Queued article ${n}-${i}`,
        paragraphs: Array.from(
          { length: 8 },
          (_, p) => `Paragraph ${p} of queued article ${n}-${i} talks about harbours, tides and the weather over the northern isles in spring.`,
        ),
      })),
    });
    const send = (n: number) =>
      fetch(`${service.url}/articles`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(batch(n)),
      });
    // The first write is held while embedding, so the later requests find the queue full.
    gate = new Promise((r) => (open = r));
    const first = send(0);
    await pollUntil(() => embedding > 0, { what: 'the first write to start embedding' });
    const [searchDuring, ...rest] = await Promise.all([fetch(`${service.url}/search?q=harbour&mode=lexical`), send(1), send(2)]);
    open();
    const responses = [await first, ...rest];
    const statuses = responses.map((r) => r.status);
    expect(statuses[0]).toBe(201);
    expect(statuses).toContain(503);
    expect(searchDuring.status).toBe(200);
    for (const [n, res] of responses.entries()) {
      if (res.status !== 503) continue;
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(await res.json()).toMatchObject({ error: { code: 'overloaded' } });
      expect((await fetch(`${service.url}/articles/queued-${n}-0`, { headers: { accept: 'application/json' } })).status).toBe(404);
    }
    // Once the queue is free again, writes are accepted.
    expect((await send(3)).status).toBe(201);
  });
});
