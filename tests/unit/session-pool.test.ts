import { describe, expect, it } from 'vitest';
import { type Job, type JobResult, type ModelWorker, SessionPool } from '../../src/embed/worker-embedder.ts';
import { hashedEmbedderInfo } from '../helpers/hashed-embedder.ts';

/** A passage session that finishes its batches when the test says so, recording the order it got them in. */
function manualWorker(order: string[]): ModelWorker & { finish: () => void } {
  const running: Array<() => void> = [];
  return {
    info: hashedEmbedderInfo(),
    dead: false,
    run: (job: Job) =>
      new Promise<JobResult>((resolve) => {
        order.push(job.kind === 'query' ? job.text : '?');
        running.push(() => resolve({ vectors: new Float32Array(0), modelMs: 0, poolMs: 0 }));
      }),
    close: async () => {},
    finish: () => running.shift()?.(),
  };
}

const job = (name: string): Job => ({ kind: 'query', text: name });

describe('passage session pool', () => {
  it("runs a live write's batches before a rebuild's queued background batches, FIFO within each", async () => {
    const order: string[] = [];
    const worker = manualWorker(order);
    const pool = new SessionPool([worker]);
    const done: Array<Promise<JobResult>> = [];
    for (let i = 0; i < 5; i++) done.push(pool.run(job(`rebuild-${i}`), true));
    done.push(pool.run(job('write-0')));
    done.push(pool.run(job('write-1')));
    for (let i = 0; i < 7; i++) {
      worker.finish();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(done);
    // rebuild-0 was already running when the writes came; they go next, then the rest of the rebuild.
    expect(order).toEqual(['rebuild-0', 'write-0', 'write-1', 'rebuild-1', 'rebuild-2', 'rebuild-3', 'rebuild-4']);
  });
});
