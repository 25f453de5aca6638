import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { QuarryError } from '../errors.ts';

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
    // The errors an operator fixes with another port or host, named as such (the CLI prints the message).
    server.once('error', (e: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      if (e.code === 'EADDRINUSE')
        reject(new QuarryError('unavailable', `cannot listen on ${where}: the port is in use (set PORT or --port)`, { field: 'port', cause: e }));
      else if (e.code === 'EACCES')
        reject(new QuarryError('unavailable', `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`, { field: 'port', cause: e }));
      else if (e.code === 'EADDRNOTAVAIL')
        reject(new QuarryError('unavailable', `cannot listen on ${where}: no such address on this machine (set --host)`, { field: 'host', cause: e }));
      else reject(e);
    });
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
