#!/usr/bin/env node
// `npm run postgres -- <command>`: a local development PostgreSQL 15 + pgvector 0.8 for Quarry.
// Only the connection line goes to stdout (so `eval "$(npm run -s postgres -- start)"` works); progress and
// errors go to stderr. See scripts/postgres-lib.mjs for how and where.
import { parseArgs } from 'node:util';
import { clusterStatus, defaultDir, ensureInstalled, PostgresUnavailableError, startPrimary, startReplica, stopCluster } from './postgres-lib.mjs';

const USAGE = `usage: npm run postgres -- <command> [options]

  install                               install PostgreSQL 15 and build pgvector 0.8 if missing
  start [--dir DIR] [--port N]          start (creating on first use) the primary; prints QUARRY_DATABASE_URL=...
  stop [--dir DIR]                      fast shutdown of the primary (and of its replica in DIR/replica)
  status [--dir DIR]                    running or not, port, versions, replication (and DIR/replica);
                                        exit 0 when running, 3 when not
  start-replica [--of DIR] [--dir RDIR] [--port N]
                                        start a streaming replica of the running primary in DIR (default
                                        RDIR: DIR/replica); prints QUARRY_DATABASE_READ_URL=...
  stop-replica [--of DIR] [--dir RDIR]  fast shutdown of the replica

DIR defaults to ${defaultDir()} (this checkout's cluster).`;

const EXIT_NOT_RUNNING = 3;
const EXIT_UNAVAILABLE = 2;

function parsePort(value) {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be a whole number from 1 to 65535, not "${value}"`);
  return port;
}

class UsageError extends Error {}

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      port: { type: 'string' },
      of: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw new UsageError('no command given');
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const port = parsePort(values.port);
  const allowed = {
    install: [],
    start: ['dir', 'port'],
    stop: ['dir'],
    status: ['dir'],
    'start-replica': ['of', 'dir', 'port'],
    'stop-replica': ['of', 'dir'],
  }[command];
  if (!allowed) throw new UsageError(`unknown command "${command}"`);
  for (const flag of ['dir', 'port', 'of']) {
    if (values[flag] !== undefined && !allowed.includes(flag)) throw new UsageError(`${command} does not take --${flag}`);
  }

  switch (command) {
    case 'install': {
      const v = await ensureInstalled();
      process.stderr.write(`postgres: PostgreSQL ${v.postgres}, pgvector ${v.pgvector} installed\n`);
      return 0;
    }
    case 'start': {
      const primary = await startPrimary({ dir: values.dir, port });
      process.stdout.write(`QUARRY_DATABASE_URL=${primary.url}\n`);
      return 0;
    }
    case 'start-replica': {
      const replica = await startReplica({ of: values.of, dir: values.dir, port });
      process.stdout.write(`QUARRY_DATABASE_READ_URL=${replica.url}\n`);
      return 0;
    }
    case 'stop':
    case 'stop-replica': {
      const dir = command === 'stop' ? (values.dir ?? defaultDir()) : (values.dir ?? `${values.of ?? defaultDir()}/replica`);
      const stopped = await stopCluster(dir, { log: (l) => process.stderr.write(`postgres: ${l}\n`) });
      if (!stopped) process.stderr.write(`postgres: nothing running in ${dir}\n`);
      return 0;
    }
    case 'status': {
      const s = await clusterStatus(values.dir);
      const lines = [
        `${s.role ?? 'cluster'} in ${s.dir}: ${s.running ? 'running' : 'not running'}`,
        ...(s.of ? [`replica of: ${s.of}`] : []),
        `port: ${s.port ?? '-'}`,
        `postgresql: ${s.postgres ?? 'not installed'}`,
        `pgvector: ${s.pgvector ?? 'not installed'}`,
      ];
      if (s.running) lines.push(`hnsw.iterative_scan: ${s.iterativeScan ?? 'missing (pgvector older than 0.8)'}`);
      lines.push(`log: ${s.log}`);
      for (const r of s.replication ?? []) {
        const lag = r.replayLagMs === null ? 'none measured (caught up)' : `${r.replayLagMs} ms`;
        lines.push(`streaming to: ${r.application} (${r.state}), replay lag ${lag}, ${r.replayBehindBytes} bytes behind`);
      }
      if (s.replica) lines.push(`replica in ${s.replica.dir}: ${s.replica.running ? `running, port ${s.replica.port}` : 'not running'}`);
      process.stdout.write(`${lines.join('\n')}\n`);
      return s.running ? 0 : EXIT_NOT_RUNNING;
    }
  }
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    if (e instanceof UsageError || e?.code?.startsWith?.('ERR_PARSE_ARGS')) {
      process.stderr.write(`postgres: ${e.message}\n\n${USAGE}\n`);
      process.exitCode = 1;
    } else if (e instanceof PostgresUnavailableError) {
      process.stderr.write(`postgres: cannot install here: ${e.message}\n`);
      process.exitCode = EXIT_UNAVAILABLE;
    } else {
      process.stderr.write(`postgres: ${e.message}\n`);
      process.exitCode = 1;
    }
  },
);
