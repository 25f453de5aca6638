import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { yieldToEventLoop, yieldToForeground } from '../../src/util/event-loop.ts';

/*
 * Background work (a live rebuild's write slices) and searches share the main thread. A search's next piece is
 * queued by an I/O callback (its query vector arriving from the worker, here a message on a port) and waits with
 * yieldToEventLoop; a background slice waits with yieldToForeground. The search piece must run as soon as that
 * turn's callbacks are done, before the next background slice, however the two were queued.
 */
describe('background slices yield to the searches that I/O continues', () => {
  it('a search piece queued by a message during a slice runs before the next slice', async () => {
    const order: string[] = [];
    const { port1, port2 } = new MessageChannel();
    const searched = new Promise<void>((resolve) =>
      port1.once('message', async () => {
        order.push('vector');
        await yieldToEventLoop();
        order.push('search');
        resolve();
      }),
    );
    const background = (async () => {
      for (let slice = 0; slice < 4; slice++) {
        order.push(`slice ${slice}`);
        if (slice === 1) port2.postMessage('vector'); // arrives while this slice runs
        const until = performance.now() + 5;
        while (performance.now() < until) {} // a slice's synchronous work
        await yieldToForeground();
      }
    })();
    await Promise.all([searched, background]);
    port1.close();
    expect(order.indexOf('search')).toBe(order.indexOf('vector') + 1);
    expect(order.indexOf('search')).toBeLessThan(order.indexOf('slice 3'));
    expect(order.slice(0, 2)).toEqual(['slice 0', 'slice 1']);
  });
});
