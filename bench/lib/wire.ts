import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REQUEST_ID_HEADER } from '../../src/server/request-log.ts';
import type { LoadRequest, Sample } from './http-load.ts';

/**
 * Latency at the wire: when the client's request and the server's answer crossed the loopback interface, from
 * the kernel's packet timestamps (tcpdump). The load generator shares the 2 cores with the server, so the latency it
 * measures itself includes the time it waited for a core to read an answer the server had already sent — a client
 * on another machine would not. The wire latency is the server's alone (HTTP parsing and the main thread's backlog
 * included, the generator's lateness and its reading left out); beside the client's it says whose the tail is.
 */

/** `next` with each request tagged `${prefix}-${n}` in its X-Request-Id (the server echoes it), so the wire capture can find it. */
export function tagged(next: () => LoadRequest, prefix: string): () => LoadRequest {
  let n = 0;
  return () => {
    const r = next();
    return { ...r, headers: { ...r.headers, [REQUEST_ID_HEADER]: `${prefix}-${n++}` } };
  };
}

export interface WireCapture {
  /** Stops tcpdump and reads what it caught: for each request id, ms from the request's first packet to the answer's. */
  stop(): Promise<Map<string, number>>;
}

/** Whether tcpdump is installed (`apt-get install tcpdump`); the capture needs it, and root. */
export function tcpdumpAvailable(): boolean {
  try {
    execFileSync('tcpdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Captures the loopback traffic to and from `port` until stop(). Resolves once tcpdump is listening. */
export async function captureWire(port: number): Promise<WireCapture> {
  const dir = mkdtempSync(join(tmpdir(), 'quarry-wire-'));
  const file = join(dir, 'capture.pcap');
  // 2 KB of each packet holds the request line with its query and the answer's headers. Only packets with a payload
  // (PSH) are kept: the handshakes and bare ACKs say nothing about latency. -U writes each packet as it comes.
  const child: ChildProcess = spawn(
    'tcpdump',
    ['-i', 'lo', '-n', '-s', '2048', '-U', '-B', '16384', '-w', file, `tcp port ${port} and (tcp[tcpflags] & tcp-push != 0)`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${stderr.trim()}`)));
  });
  return {
    async stop() {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGINT');
      await exited;
      if (/(\d+) packets dropped by kernel/.exec(stderr)?.[1] !== '0') process.stderr.write(`wire capture: ${stderr.trim()}\n`);
      try {
        return wireLatencies(readFileSync(file));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * Reads a pcap of loopback HTTP/1.1 (Ethernet framing, IPv4 or IPv6, TCP): the first packet carrying each request id
 * in a request, and the first answer carrying it back; their difference in ms, by id.
 */
export function wireLatencies(pcap: Buffer): Map<string, number> {
  const magic = pcap.readUInt32LE(0);
  const nano = magic === 0xa1b23c4d;
  if (!nano && magic !== 0xa1b2c3d4) throw new Error('wire capture: not a little-endian pcap file');
  const linkType = pcap.readUInt32LE(20);
  if (linkType !== 1) throw new Error(`wire capture: link type ${linkType}, expected Ethernet (1)`);
  const sent = new Map<string, number>();
  const answered = new Map<string, number>();
  const idPattern = new RegExp(`^${REQUEST_ID_HEADER}: ?([^\\r\\n]+)`, 'im');
  let at = 24;
  while (at + 16 <= pcap.length) {
    const ms = pcap.readUInt32LE(at) * 1000 + pcap.readUInt32LE(at + 4) / (nano ? 1e6 : 1e3);
    const caught = pcap.readUInt32LE(at + 8);
    const packet = pcap.subarray(at + 16, at + 16 + caught);
    at += 16 + caught;
    const etherType = packet.readUInt16BE(12);
    let ip = 14;
    let protocol: number;
    if (etherType === 0x0800) {
      protocol = packet[ip + 9]!;
      ip += (packet[ip]! & 0x0f) * 4;
    } else if (etherType === 0x86dd) {
      protocol = packet[ip + 6]!;
      ip += 40;
    } else continue;
    if (protocol !== 6) continue;
    const payload = packet.subarray(ip + (packet[ip + 12]! >> 4) * 4).toString('latin1');
    const id = idPattern.exec(payload)?.[1];
    if (!id) continue;
    if (payload.startsWith('HTTP/')) {
      if (!answered.has(id)) answered.set(id, ms);
    } else if (!sent.has(id)) sent.set(id, ms);
  }
  const latency = new Map<string, number>();
  for (const [id, t] of sent) {
    const back = answered.get(id);
    if (back !== undefined) latency.set(id, back - t);
  }
  return latency;
}

/** The samples whose requests were seen on the wire, with their wire latency (ms). */
export function onTheWire(samples: Sample[], wire: Map<string, number>): Array<Sample & { wireMs: number }> {
  return samples.flatMap((s) => {
    const w = s.id === undefined ? undefined : wire.get(s.id);
    return w === undefined ? [] : [{ ...s, wireMs: w }];
  });
}
