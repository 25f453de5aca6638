import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

export interface RunningServer {
  server: Server;
  url: string;
  port: number;
  /** Stops accepting connections, lets in-flight requests finish (up to `graceMs`), then resolves. */
  close(graceMs?: number): Promise<void>;
}

export function listen(app: Express, port: number, host: string): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('error', reject);
    server.once('listening', () => {
      const addr = server.address() as AddressInfo;
      const shownHost = addr.address === '::' || addr.address === '0.0.0.0' ? 'localhost' : addr.address.includes(':') ? `[${addr.address}]` : addr.address;
      // Bounded header and request time: a slow client cannot hold a connection forever.
      server.headersTimeout = 30_000;
      server.requestTimeout = 120_000;
      resolve({
        server,
        url: `http://${shownHost}:${addr.port}`,
        port: addr.port,
        close: (graceMs = 10_000) =>
          new Promise<void>((res) => {
            const force = setTimeout(() => server.closeAllConnections(), graceMs);
            force.unref();
            server.close(() => {
              clearTimeout(force);
              res();
            });
            server.closeIdleConnections();
          }),
      });
    });
  });
}
