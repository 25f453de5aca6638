import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { WorkerRpc } from '../../src/util/worker-rpc.ts';

type Request =
  | { id: number; op: 'echo'; value: number; delayMs?: number }
  | { id: number; op: 'crash' }
  | { id: number; op: 'close' }
  | { id: number; op: 'quit' };
type Answer = { id: number; value?: number; ready?: boolean; error?: string };

/**
 * A worker in plain JavaScript (eval: no loader needed): says whether it started, echoes values after an optional
 * delay (so answers can come out of order), throws on 'crash' (the thread dies), answers 'close' and stops, and on
 * 'quit' exits at once without answering.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
parentPort.postMessage(workerData.ready ? { id: 0, ready: true } : { id: 0, error: 'no model here' });
parentPort.on('message', (m) => {
  if (m.op === 'crash') setImmediate(() => { throw new Error('boom'); });
  else if (m.op === 'close') { parentPort.postMessage({ id: m.id }); parentPort.close(); }
  else if (m.op === 'quit') process.exit(0);
  else setTimeout(() => parentPort.postMessage({ id: m.id, value: m.value * 2 }), m.delayMs ?? 0);
});`;

const started: Worker[] = [];
const rpcOf = (ready = true) => {
  const worker = new Worker(WORKER, { eval: true, workerData: { ready } });
  started.push(worker);
  return new WorkerRpc<Request, Answer, string>(worker, 'test worker', (first) => (first.ready ? 'up' : new Error(`test worker: ${first.error}`)));
};

afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

describe('WorkerRpc', () => {
  it('resolves started with what the first message means, and each call with the answer to its own id', async () => {
    const rpc = rpcOf();
    expect(await rpc.started).toBe('up');
    // The first is answered last: answers are matched by id, not by order.
    const [slow, fast] = await Promise.all([rpc.call({ op: 'echo', value: 1, delayMs: 50 }), rpc.call({ op: 'echo', value: 2 })]);
    expect(slow.value).toBe(2);
    expect(fast.value).toBe(4);
    expect(slow.id).not.toBe(fast.id);
    expect(rpc.failed).toBeNull();
  });

  it('rejects started when the worker says it could not start', async () => {
    await expect(rpcOf(false).started).rejects.toThrow('test worker: no model here');
  });

  it('rejects every pending and later call with the first cause once the worker dies', async () => {
    const rpc = rpcOf();
    await rpc.started;
    const pending = rpc.call({ op: 'echo', value: 1, delayMs: 10_000 });
    void rpc.call({ op: 'crash' }).catch(() => undefined);
    await expect(pending).rejects.toThrow('boom');
    // The exit that follows the crash does not replace the cause.
    await new Promise<void>((r) => started[0]!.once('exit', () => r()));
    expect(rpc.failed?.message).toBe('boom');
    await expect(rpc.call({ op: 'echo', value: 3 })).rejects.toThrow('boom');
  });

  // 'close': the worker answers, then stops. 'quit': it exits before any answer, as a close's answer and the exit can
  // race; an exit once close() has begun is the close, not a crash, so the reason is the close's either way.
  it.each(['close', 'quit'] as const)('close (%s) asks the worker to stop, then refuses further calls with the reason given', async (op) => {
    const rpc = rpcOf();
    await rpc.started;
    await rpc.close({ op }, 'test worker closed');
    expect(rpc.failed?.message).toBe('test worker closed');
    await expect(rpc.call({ op: 'echo', value: 1 })).rejects.toThrow('test worker closed');
  });
});
