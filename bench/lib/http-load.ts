import { Agent, request } from 'node:http';
import { REQUEST_ID_HEADER } from '../../src/server/request-log.ts';
import { mulberry32 } from './corpus.ts';
import { percentile, round } from './stats.ts';

export interface LoadRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** A label to split results by (search, write, …). */
  kind: string;
}

export interface Sample {
  kind: string;
  /** When the request was due, ms since the start of the run. */
  at: number;
  /** HTTP status, or 0 for a transport error or a client timeout. */
  status: number;
  /** From when it was due to its last byte (an open-loop request sent late is charged its lateness). */
  ms: number;
  /** How late the client sent it (open loop): a generator that falls behind measures itself, not the server. */
  late?: number;
  /** The request's X-Request-Id, when the caller tagged it (bench/lib/wire.ts finds it on the wire). */
  id?: string;
}

/** The request's id header, as a Sample field (absent when untagged). */
const idOf = (r: LoadRequest): { id?: string } => {
  const id = r.headers?.[REQUEST_ID_HEADER];
  return id === undefined ? {} : { id };
};

/**
 * Plain node:http with keep-alive and no socket cap: the client never queues a request itself, so what is
 * measured is the server's queueing, not the generator's. Timeouts are generous and counted as errors.
 */
const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/** What the client saw besides statuses: transport errors by code, and requests retried after a keep-alive race. */
export interface TransportLog {
  /** A request is sent again: a reused keep-alive connection was closed under it before any answer. */
  onKeepAliveRetry(): void;
  /** A transport error or client timeout (status 0), by error code. */
  onError(code: string): void;
}

/**
 * One request; its status, or 0 for a transport error or a client timeout (counted by code in `log`). A request
 * that fails with ECONNRESET on a reused keep-alive connection before any answer is sent once more: the server
 * closed that idle connection as the request went out (its keep-alive timeout), never read the request, and an
 * HTTP client retries then (browsers do; Node documents the pattern under `request.reusedSocket`). Requests here
 * are idempotent (searches, upserts by id).
 */
export function send(base: URL, r: LoadRequest, timeoutMs = 30_000, log?: TransportLog, retried = false): Promise<number> {
  return new Promise((resolve) => {
    let answered = false;
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        path: r.path,
        method: r.method,
        headers: r.body ? { 'content-type': 'application/json', ...r.headers } : r.headers,
        agent,
      },
      (res) => {
        answered = true;
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', (e: NodeJS.ErrnoException) => {
          log?.onError(e.code ?? e.message);
          resolve(0);
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (!answered && !retried && req.reusedSocket && e.code === 'ECONNRESET') {
        log?.onKeepAliveRetry();
        resolve(send(base, r, timeoutMs, log, true));
        return;
      }
      log?.onError(e.code ?? e.message);
      resolve(0);
    });
    req.end(r.body);
  });
}

/**
 * Open loop: requests arrive as a Poisson process of `rate` per second (seeded), whatever the server's
 * answers do, as independent users would; the way to measure behaviour past saturation. A closed loop (each
 * client waits for its answer) slows down with the server and never overloads it.
 */
export async function openLoop(opts: {
  url: string;
  rate: number;
  seconds: number;
  next: () => LoadRequest;
  seed?: number;
  timeoutMs?: number;
  onSample?: (s: Sample) => void;
  /**
   * Keep-alive connections to open (GET /health/live, all at once) before the first request is due, as wrk and
   * autocannon open theirs before they measure. Without them a row began with whatever connections the row before
   * had left, so a row heavier than the one before paid its new connections' setup in its first tenth of a second:
   * on 2026-12-02 the first 200 ms of 2x rows right after one client were slowest at 72-107 ms, 53-74 with 32
   * opened before (six pairs). After a 0.8x row, as in the overload bench, the difference was within the noise
   * (four pairs; docs/history/overload.md); opened here, no row depends on the one before it.
   */
  warmConnections?: number;
}): Promise<Sample[]> {
  const base = new URL(opts.url);
  if (opts.warmConnections) await warmConnections(base, opts.warmConnections);
  const rand = mulberry32(opts.seed ?? 7);
  const samples: Sample[] = [];
  let inFlight = 0;
  let drained: (() => void) | null = null;
  const start = performance.now();
  const end = opts.seconds * 1000;
  let due = 0;
  while (due < end) {
    const wait = start + due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const r = opts.next();
    const at = due;
    const late = performance.now() - start - at;
    inFlight++;
    void send(base, r, opts.timeoutMs ?? 30_000).then((status) => {
      const s = { kind: r.kind, at, status, ms: performance.now() - start - at, late, ...idOf(r) };
      samples.push(s);
      opts.onSample?.(s);
      if (--inFlight === 0) drained?.();
    });
    due += (-Math.log(1 - rand()) / opts.rate) * 1000;
  }
  if (inFlight > 0) await new Promise<void>((r) => (drained = r));
  return samples;
}

/** Opens `n` keep-alive connections to `base` (the shared agent keeps them for the requests that follow). */
export async function warmConnections(base: URL, n: number): Promise<void> {
  const statuses = await Promise.all(Array.from({ length: n }, () => send(base, { method: 'GET', path: '/health/live', kind: 'warm' })));
  const failed = statuses.filter((s) => s !== 200).length;
  if (failed) throw new Error(`warming ${n} connections to ${base.origin}: ${failed} answered other than 200`);
}

/** Closed loop: `connections` clients, each sending its next request when the last one is answered. */
export async function closedLoop(opts: {
  url: string;
  connections: number;
  seconds: number;
  next: () => LoadRequest;
  timeoutMs?: number;
  onSample?: (s: Sample) => void;
}): Promise<Sample[]> {
  const base = new URL(opts.url);
  const samples: Sample[] = [];
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const r = opts.next();
      const at = performance.now() - start;
      const status = await send(base, r, opts.timeoutMs ?? 30_000);
      const s = { kind: r.kind, at, status, ms: performance.now() - start - at, ...idOf(r) };
      samples.push(s);
      opts.onSample?.(s);
    }
  };
  await Promise.all(Array.from({ length: opts.connections }, client));
  return samples;
}

export interface LoadSummary {
  requests: number;
  /** From the first request due to the last answer. */
  seconds: number;
  /** Requests per second offered (sent). */
  offered: number;
  /** 2xx answers per second. */
  throughput: number;
  /** Latency of the 2xx answers, ms. */
  p50: number;
  p99: number;
  max: number;
  /** Shares of all requests. */
  share503: number;
  share429: number;
  shareOther: number;
  errors: number;
  byStatus: Record<string, number>;
  /** p99 of how late the open-loop generator sent its requests, ms (null for a closed loop). */
  lateP99: number | null;
}

export function summarise(samples: Sample[], plannedSeconds: number): LoadSummary {
  const ok = samples.filter((s) => s.status >= 200 && s.status < 300).map((s) => s.ms);
  // Answers still arriving after the planned time count: a backlog drained late is not throughput in time.
  // A loop, not Math.max(...spread): a 30-min soak has ~140k samples, past V8's argument limit (the first soak
  // at 80% of a faster write path died here after its run, before writing its results).
  const seconds = samples.reduce((m, s) => Math.max(m, (s.at + s.ms) / 1000), plannedSeconds);
  const late = samples.filter((s) => s.late !== undefined).map((s) => s.late!);
  const byStatus: Record<string, number> = {};
  for (const s of samples) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
  const n = Math.max(samples.length, 1);
  const count = (f: (st: number) => boolean) => samples.filter((s) => f(s.status)).length;
  return {
    requests: samples.length,
    seconds: round(seconds, 1),
    offered: round(samples.length / plannedSeconds, 1),
    throughput: round(ok.length / seconds, 1),
    p50: round(percentile(ok, 50), 1),
    p99: round(percentile(ok, 99), 1),
    max: round(ok.length ? ok.reduce((m, x) => Math.max(m, x), Number.NEGATIVE_INFINITY) : Number.NaN, 1),
    share503: round(count((st) => st === 503) / n, 4),
    share429: round(count((st) => st === 429) / n, 4),
    shareOther: round(count((st) => st !== 503 && st !== 429 && (st < 200 || st >= 300)) / n, 4),
    errors: count((st) => st === 0),
    byStatus,
    lateP99: late.length ? round(percentile(late, 99), 1) : null,
  };
}

/** p99 of the admitted requests due 1 s or more after the row began: the sustained overload, its onset left out. */
export function p99AfterOnset(samples: Sample[]): number {
  return round(
    percentile(
      samples.filter((x) => x.at >= 1000 && x.status >= 200 && x.status < 300).map((x) => x.ms),
      99,
    ),
    1,
  );
}
