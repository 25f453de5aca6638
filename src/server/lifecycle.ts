import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The server's own state, apart from the index's. Once shutdown begins (`beginDrain`), /health/ready answers
 * 503 so load balancers stop sending requests, and every response not yet started, in flight or new, says
 * `Connection: close`, so keep-alive clients reconnect elsewhere instead of holding the drain open.
 */
export class Lifecycle {
  readonly startedAt = Date.now();
  private drainingSince: number | null = null;
  private readonly inFlight = new Set<ServerResponse>();

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  /** Counts a response in until it is finished or abandoned (or its connection is gone: see overload.ts). */
  track(res: ServerResponse, socket: Socket): void {
    if (this.draining) res.setHeader('Connection', 'close');
    this.inFlight.add(res);
    const done = () => {
      this.inFlight.delete(res);
      res.off('close', done);
      socket.off('close', done);
    };
    res.once('close', done);
    socket.once('close', done);
  }

  beginDrain(): { inFlight: number } {
    this.drainingSince ??= Date.now();
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    return { inFlight: this.inFlight.size };
  }
}
