// A local development PostgreSQL 15 with pgvector 0.8 for Quarry's PostgreSQL backend, its tests and CI.
// Used by scripts/postgres.mjs (the `npm run postgres` CLI) and imported by tests.
//
// What it does, and why it does it this way:
// - PostgreSQL comes from Debian (postgresql-15, postgresql-server-dev-15), installed only when missing.
// - pgvector 0.8 (iterative index scans) is not in bookworm, so it is built from Debian trixie's own source
//   package. The trixie deb-src entry lives in a private, throw-away apt configuration (its own sources file,
//   lists and cache), so the machine's apt sources, lists and binary installs are never changed by it.
// - Each cluster lives in a folder of its own: DIR/data (PGDATA), DIR/run (Unix socket + server.log) and
//   DIR/cluster.json (port and the Quarry role's password, mode 0600). As root the server runs as the
//   `postgres` user (PostgreSQL refuses to run as root); as any other user it runs as that user.
// - The server listens on 127.0.0.1 only. The Quarry role logs in over TCP with a password (scram-sha-256);
//   administration goes through the Unix socket with peer authentication, so no superuser password exists.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PG_MAJOR = 15;
export const PG_BIN = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const PG_SHARE = `/usr/share/postgresql/${PG_MAJOR}`;
const PG_LIB = `/usr/lib/postgresql/${PG_MAJOR}/lib`;
const VECTOR_CONTROL = `${PG_SHARE}/extension/vector.control`;
const VECTOR_SO = `${PG_LIB}/vector.so`;
/** The pgvector series we need: 0.8 brought iterative index scans (hnsw.iterative_scan). */
const PGVECTOR_SERIES = '0.8.';
/** What the build needs from Debian; only the missing ones are installed. */
const PACKAGES = [`postgresql-${PG_MAJOR}`, `postgresql-server-dev-${PG_MAJOR}`, 'make', 'gcc', 'dpkg-dev'];
const SOURCE_SUITE = 'trixie';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const ROLE = 'quarry';
const DATABASE = 'quarry';
/** Unix socket paths are limited to 107 bytes; ".s.PGSQL.65535" takes 15 of them. */
const MAX_SOCKET_DIR = 90;

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** PostgreSQL cannot be installed here (no apt-get, no root/sudo, no network to the Debian mirror). */
export class PostgresUnavailableError extends Error {
  constructor(message) {
    super(message);
    this.name = 'PostgresUnavailableError';
  }
}

/**
 * The default cluster folder for a checkout: under /var/tmp (reachable by the `postgres` user even when the
 * project lives under /root, and not wiped by a /tmp cleaner), keyed by the project path so two checkouts
 * get two clusters.
 */
export function defaultDir(projectRoot = PROJECT_ROOT) {
  const key = createHash('sha256').update(path.resolve(projectRoot)).digest('hex').slice(0, 12);
  return path.join('/var/tmp', `quarry-postgres-${key}`);
}

/** Progress to stderr, stamped with seconds since the process started (CI logs show where time goes). */
const stderrLog = (line) => process.stderr.write(`postgres: [${(performance.now() / 1000).toFixed(1)}s] ${line}\n`);

// ---------------------------------------------------------------------------------------------------------
// Processes

/**
 * Runs a command, capturing its output. Rejects with the command and the tail of its output on a non-zero
 * exit, unless `allowFail` (then resolves with the code).
 */
function run(cmd, args, { input, cwd = '/', env, allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0 || allowFail) return resolve({ code, out, err });
      const tail = (err || out).trim().split('\n').slice(-15).join('\n');
      reject(new Error(`${[cmd, ...args].join(' ')} exited with ${code}:\n${tail}`));
    });
    child.stdin.on('error', () => {}); // a command that exits without reading its input
    child.stdin.end(input ?? '');
  });
}

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

const isRoot = () => process.getuid?.() === 0;

/** How to run a command as root: [] when root, ['sudo', '-n'] with passwordless sudo, null otherwise. */
function rootPrefix() {
  if (isRoot()) return [];
  if (hasCommand('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n'];
  return null;
}

function asRoot(prefix, cmd, args, opts) {
  const full = [...prefix, cmd, ...args];
  return run(full[0], full.slice(1), opts);
}

/** The OS user that owns and runs clusters: `postgres` when we are root (the server refuses root), else us. */
function clusterOwner() {
  return isRoot() ? 'postgres' : os.userInfo().username;
}

/** Runs a command as the cluster owner. */
function asOwner(cmd, args, opts) {
  if (isRoot()) return run('runuser', ['-u', 'postgres', '--', cmd, ...args], opts);
  return run(cmd, args, opts);
}

// ---------------------------------------------------------------------------------------------------------
// Installation

/** The installed pgvector version (from its control file), or null. */
export function installedPgvectorVersion() {
  if (!existsSync(VECTOR_CONTROL) || !existsSync(VECTOR_SO)) return null;
  const m = /default_version\s*=\s*'([^']+)'/.exec(readFileSync(VECTOR_CONTROL, 'utf8'));
  return m ? m[1] : null;
}

/** The installed PostgreSQL server version ("15.20"), or null. */
export function installedPostgresVersion() {
  if (!existsSync(`${PG_BIN}/postgres`)) return null;
  const r = spawnSync(`${PG_BIN}/postgres`, ['--version'], { encoding: 'utf8' });
  const m = /PostgreSQL\)\s+(\S+)/.exec(r.stdout ?? '');
  return m ? m[1] : null;
}

function isReady() {
  const v = installedPgvectorVersion();
  return existsSync(`${PG_BIN}/postgres`) && existsSync(`${PG_BIN}/initdb`) && existsSync(`${PG_BIN}/pg_basebackup`) && v?.startsWith(PGVECTOR_SERIES);
}

function missingPackages() {
  return PACKAGES.filter((pkg) => {
    const r = spawnSync('dpkg-query', ['-W', `-f=\${db:Status-Status}`, pkg], { encoding: 'utf8' });
    return r.status !== 0 || r.stdout.trim() !== 'installed';
  });
}

/**
 * Makes sure PostgreSQL 15 and pgvector 0.8 are installed, installing and building what is missing.
 * Fast (no root needed) when everything is already there. Throws PostgresUnavailableError when it cannot
 * install here; other errors (a failed compile) are real failures.
 */
export async function ensureInstalled({ log = stderrLog } = {}) {
  if (isReady()) return installedVersions();
  if (process.platform !== 'linux' || !hasCommand('apt-get') || !hasCommand('dpkg-query')) {
    throw new PostgresUnavailableError('PostgreSQL 15 with pgvector 0.8 is not installed and there is no apt-get to install it');
  }
  const prefix = rootPrefix();
  if (prefix === null) {
    throw new PostgresUnavailableError('PostgreSQL 15 with pgvector 0.8 is not installed and installing it needs root or passwordless sudo');
  }
  await withLock(path.join(os.tmpdir(), 'quarry-postgres-install.lock'), 'install', log, async () => {
    if (isReady()) return; // another process finished it while we waited
    const missing = missingPackages();
    if (missing.length > 0) await installPackages(prefix, missing, log);
    const v = installedPgvectorVersion();
    if (v === null || !v.startsWith(PGVECTOR_SERIES)) await buildPgvector(prefix, log);
  });
  if (!isReady()) throw new Error('installation finished but PostgreSQL 15 with pgvector 0.8 is still not complete');
  return installedVersions();
}

export function installedVersions() {
  return { postgres: installedPostgresVersion(), pgvector: installedPgvectorVersion() };
}

async function installPackages(prefix, missing, log) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => asRoot(prefix, 'env', ['DEBIAN_FRONTEND=noninteractive', 'apt-get', ...args], { env });
  try {
    log(`apt-get update (to install ${missing.join(', ')})`);
    await apt(['update', '-q']);
    log(`apt-get install ${missing.join(' ')}`);
    await apt(['install', '-y', '-q', '--no-install-recommends', '-o', 'DPkg::Lock::Timeout=300', ...missing]);
  } catch (e) {
    throw new PostgresUnavailableError(`could not install ${missing.join(', ')} from Debian: ${e.message}`);
  }
}

/**
 * Builds pgvector from Debian trixie's source package against PostgreSQL 15 and installs it.
 * The trixie deb-src entry is in a private apt configuration inside a temporary folder (Dir::Etc::SourceList,
 * Dir::State::Lists, Dir::Cache all pointing there), so nothing about the system's apt changes.
 */
async function buildPgvector(prefix, log) {
  const work = await mkdtemp(path.join(os.tmpdir(), 'quarry-pgvector-'));
  try {
    const aptDir = path.join(work, 'apt');
    for (const d of ['lists/partial', 'cache/archives/partial', 'parts']) await mkdir(path.join(aptDir, d), { recursive: true });
    const sources = path.join(aptDir, 'trixie-src.sources');
    await writeFile(
      sources,
      ['Types: deb-src', `URIs: ${DEBIAN_MIRROR}`, `Suites: ${SOURCE_SUITE}`, 'Components: main', `Signed-By: ${DEBIAN_KEYRING}`, ''].join('\n'),
    );
    const aptOpts = [
      '-o',
      `Dir::Etc::SourceList=${sources}`,
      '-o',
      `Dir::Etc::SourceParts=${path.join(aptDir, 'parts')}`,
      '-o',
      `Dir::State::Lists=${path.join(aptDir, 'lists')}`,
      '-o',
      `Dir::Cache=${path.join(aptDir, 'cache')}`,
      // The temporary folder is not readable by apt's _apt sandbox user; download as root (hashes are still
      // checked against the signed trixie index).
      '-o',
      'APT::Sandbox::User=root',
    ];
    const src = path.join(work, 'src');
    await mkdir(src);
    try {
      log(`fetching the pgvector source package from Debian ${SOURCE_SUITE}`);
      await asRoot(prefix, 'apt-get', [...aptOpts, '-q', '--error-on=any', 'update']);
      await asRoot(prefix, 'apt-get', [...aptOpts, '-q', 'source', `pgvector/${SOURCE_SUITE}`], { cwd: src });
    } catch (e) {
      throw new PostgresUnavailableError(`could not fetch pgvector's source package from Debian ${SOURCE_SUITE}: ${e.message}`);
    }
    const dsc = (await readdir(src)).find((f) => /^pgvector_.*\.dsc$/.test(f));
    const version = dsc ? /^pgvector_([^-]+)-/.exec(dsc)?.[1] : undefined;
    if (!version?.startsWith(PGVECTOR_SERIES)) {
      throw new Error(`Debian ${SOURCE_SUITE} gave pgvector ${version ?? '(no .dsc)'}; this script needs ${PGVECTOR_SERIES}x`);
    }
    const tree = path.join(src, `pgvector-${version}`);
    if (!existsSync(path.join(tree, 'Makefile'))) throw new Error(`apt-get source did not unpack ${tree}`);
    const jobs = String(Math.max(1, Math.min(4, os.availableParallelism?.() ?? 2)));
    log(`building pgvector ${version} (Debian ${SOURCE_SUITE} source) against PostgreSQL ${PG_MAJOR}`);
    await asRoot(prefix, 'make', ['-C', tree, `-j${jobs}`, `PG_CONFIG=${PG_BIN}/pg_config`]);
    log(`installing pgvector ${version}`);
    await asRoot(prefix, 'make', ['-C', tree, 'install', `PG_CONFIG=${PG_BIN}/pg_config`]);
  } finally {
    // The build tree belongs to root when we went through sudo.
    await asRoot(prefix, 'rm', ['-rf', work], { allowFail: true });
  }
}

/**
 * Serialises work across processes (two test files, or a test and the CLI, installing or starting the same
 * cluster) with an atomic mkdir. A lock left by a dead process is taken over; waiting is bounded by a count
 * of polls.
 */
async function withLock(lock, what, log, fn) {
  const pidFile = path.join(lock, 'pid');
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(lock);
      await writeFile(pidFile, String(process.pid));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      const holder = Number(await readFile(pidFile, 'utf8').catch(() => ''));
      if (holder && !processAlive(holder)) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (attempt === 0) log(`waiting for another ${what} (pid ${holder || '?'}) to finish`);
      if (attempt > 1200) throw new Error(`gave up waiting for the install lock ${lock}`);
      await delay(500);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------------------
// Clusters

const dataDir = (dir) => path.join(dir, 'data');
const runDir = (dir) => path.join(dir, 'run');
const metaFile = (dir) => path.join(dir, 'cluster.json');
const logFile = (dir) => path.join(runDir(dir), 'server.log');

async function readMeta(dir) {
  try {
    return JSON.parse(await readFile(metaFile(dir), 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
}

async function writeMeta(dir, meta) {
  await writeFile(metaFile(dir), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  await chmod(metaFile(dir), 0o600);
}

function urlOf(meta) {
  return `postgres://${meta.user}:${encodeURIComponent(meta.password)}@127.0.0.1:${meta.port}/${meta.database}`;
}

/** Creates DIR (ours), DIR/data and DIR/run (the cluster owner's), and checks the owner can reach them. */
async function prepareDir(dir) {
  if (runDir(dir).length > MAX_SOCKET_DIR) {
    throw new Error(`${dir} is too long for a Unix socket path (${runDir(dir).length} > ${MAX_SOCKET_DIR} bytes); pick a shorter --dir`);
  }
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755); // mkdtemp makes 0700 folders; the postgres user must be able to enter
  for (const d of [dataDir(dir), runDir(dir)]) await mkdir(d, { recursive: true, mode: 0o700 });
  await chmod(dataDir(dir), 0o700); // PostgreSQL insists on it
  if (isRoot()) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (pw.status !== 0) throw new Error('there is no `postgres` user to run the server as (it comes with postgresql-common)');
    for (const d of [dataDir(dir), runDir(dir)]) await chown(d, Number(pw.stdout), Number(gid.stdout));
    const canEnter = async (p) => (await run('runuser', ['-u', 'postgres', '--', 'test', '-x', p], { allowFail: true })).code === 0;
    if (!(await canEnter(runDir(dir)))) {
      // Name the folder that shuts it out (typically /root, or a 0700 folder from mkdtemp).
      let closed = runDir(dir);
      for (let p = path.dirname(closed); p !== path.dirname(p); p = path.dirname(p)) if (!(await canEnter(p))) closed = p;
      throw new Error(
        `the postgres user cannot enter ${closed}, so it cannot reach ${dir}; pick a --dir under /tmp or /var/tmp, or open ${closed} to it (chmod o+x)`,
      );
    }
  }
}

/** Writes DIR/data/quarry.conf (included from postgresql.conf): address, port, socket folder. */
async function writeServerConf(dir, port, extra = []) {
  const lines = [
    '# Written by scripts/postgres-lib.mjs on every start.',
    "listen_addresses = '127.0.0.1'",
    `port = ${port}`,
    `unix_socket_directories = '${runDir(dir)}'`,
    ...extra,
    '',
  ];
  await asOwner('sh', ['-c', 'cat > "$1"', 'sh', path.join(dataDir(dir), 'quarry.conf')], { input: lines.join('\n') });
}

/**
 * Settings only the primary needs for `start-replica`: WAL detailed enough for a standby (15's default, named
 * so that an edited postgresql.conf cannot silently break replicas) and kept for one that falls behind during
 * a bulk load. Replication connections need no pg_hba change: the replica streams over the primary's Unix
 * socket as the cluster owner (initdb's `local replication all peer`); from 127.0.0.1 initdb's
 * `host replication all 127.0.0.1/32 scram-sha-256` already admits a role with REPLICATION and a password.
 */
const PRIMARY_CONF = ['wal_level = replica', "wal_keep_size = '256MB'"];

async function isRunning(dir) {
  if (!existsSync(path.join(dataDir(dir), 'PG_VERSION'))) return false;
  const r = await asOwner(`${PG_BIN}/pg_ctl`, ['status', '-D', dataDir(dir)], { allowFail: true });
  return r.code === 0;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function tail(file, lines = 15) {
  const text = await asOwner('tail', ['-n', String(lines), file], { allowFail: true });
  return text.out.trim();
}

/**
 * Starts the server in DIR on the wanted port (or the one it used last, or a free one). When no port was
 * asked for and the chosen one is taken before the server binds it, retries with another free port.
 */
async function startServer(dir, meta, { port, extraConf, log }) {
  for (let attempt = 1; ; attempt++) {
    let chosen = port;
    if (chosen === undefined) {
      chosen = meta.port && (await portFree(meta.port)) ? meta.port : await freePort();
      if (meta.port && chosen !== meta.port) log(`port ${meta.port} is taken now; moving to ${chosen} (the URL changes)`);
    }
    await writeServerConf(dir, chosen, extraConf);
    log(`starting the ${meta.role} in ${dir} on 127.0.0.1:${chosen}`);
    const r = await asOwner(`${PG_BIN}/pg_ctl`, ['start', '-D', dataDir(dir), '-l', logFile(dir), '-w', '-t', '120', '-s'], { allowFail: true });
    if (r.code === 0) {
      meta.port = chosen;
      await writeMeta(dir, meta);
      return;
    }
    const logTail = await tail(logFile(dir));
    if (port === undefined && attempt < 3 && /Address already in use|could not bind/.test(logTail)) {
      meta.port = undefined;
      continue;
    }
    throw new Error(`the server in ${dir} did not start (pg_ctl exit ${r.code}); ${logFile(dir)} ends with:\n${logTail}`);
  }
}

/** Runs SQL as the cluster's superuser over the Unix socket (peer authentication). */
function adminSql(dir, port, sql, database = 'postgres') {
  return asOwner(`${PG_BIN}/psql`, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', runDir(dir), '-p', String(port), '-d', database, '-f', '-'], {
    input: sql,
  });
}

/**
 * The Quarry role (password login, CREATEDB so tests can make databases of their own), its database, and
 * the vector extension in it and in template1 (so databases created later have it without a superuser).
 * Idempotent; runs on every start.
 */
async function bootstrap(dir, meta) {
  await adminSql(
    dir,
    meta.port,
    [
      `\\set pw '${meta.password}'`,
      `SELECT 'CREATE ROLE ${ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${ROLE}')\\gexec`,
      `ALTER ROLE ${ROLE} WITH LOGIN CREATEDB PASSWORD :'pw';`,
      '\\c template1',
      'CREATE EXTENSION IF NOT EXISTS vector;',
      '\\c postgres',
      `SELECT 'CREATE DATABASE ${DATABASE} OWNER ${ROLE}' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${DATABASE}')\\gexec`,
      `\\c ${DATABASE}`,
      'CREATE EXTENSION IF NOT EXISTS vector;',
      '',
    ].join('\n'),
  );
}

function clusterHandle(dir, meta, urlKey) {
  return { url: urlOf(meta), urlKey, dir, port: meta.port, stop: () => stopCluster(dir) };
}

/**
 * Starts (creating on first use) the primary in DIR. Idempotent: on a running cluster it only checks the
 * role, database and extension, and returns the same URL.
 * @returns {Promise<{url: string, dir: string, port: number, stop: () => Promise<void>}>}
 */
export async function startPrimary({ dir = defaultDir(), port, log = stderrLog } = {}) {
  dir = path.resolve(dir);
  await ensureInstalled({ log });
  await mkdir(dir, { recursive: true });
  return withLock(path.join(dir, 'start.lock'), 'start', log, () => startPrimaryLocked(dir, port, log));
}

async function startPrimaryLocked(dir, port, log) {
  let meta = await readMeta(dir);
  if (meta?.role === 'replica') throw new Error(`${dir} holds a replica; start it with start-replica`);
  if (await isRunning(dir)) {
    if (port !== undefined && port !== meta.port) log(`already running on port ${meta.port}; --port ${port} ignored (stop it first to change)`);
  } else {
    await prepareDir(dir);
    if (!existsSync(path.join(dataDir(dir), 'PG_VERSION'))) {
      log(`creating a cluster in ${dir} (owner: ${clusterOwner()})`);
      await asOwner(`${PG_BIN}/initdb`, ['-D', dataDir(dir), '-E', 'UTF8', '--locale=C.UTF-8', '--auth-local=peer', '--auth-host=scram-sha-256']);
      await asOwner('sh', ['-c', `echo "include_if_exists = 'quarry.conf'" >> "$1"`, 'sh', path.join(dataDir(dir), 'postgresql.conf')]);
      meta = { role: 'primary', user: ROLE, password: randomBytes(18).toString('base64url'), database: DATABASE };
      await writeMeta(dir, meta);
    }
    if (!meta) throw new Error(`${dir} has a data folder but no cluster.json; remove ${dir} to start afresh`);
    await startServer(dir, meta, { port, extraConf: PRIMARY_CONF, log });
  }
  await bootstrap(dir, meta);
  return clusterHandle(dir, meta, 'QUARRY_DATABASE_URL');
}

/**
 * Starts (creating on first use, with pg_basebackup -R) a streaming replica of the running primary in OF.
 * Defaults to OF/replica, which `stop` of the primary also stops.
 * @returns {Promise<{url: string, dir: string, port: number, stop: () => Promise<void>}>}
 */
export async function startReplica({ of = defaultDir(), dir, port, log = stderrLog } = {}) {
  of = path.resolve(of);
  dir = path.resolve(dir ?? path.join(of, 'replica'));
  await ensureInstalled({ log });
  await mkdir(dir, { recursive: true });
  return withLock(path.join(dir, 'start.lock'), 'start', log, () => startReplicaLocked(of, dir, port, log));
}

async function startReplicaLocked(of, dir, port, log) {
  const primary = await readMeta(of);
  if (primary?.role !== 'primary') throw new Error(`${of} holds no primary; run start first`);
  if (!(await isRunning(of))) throw new Error(`the primary in ${of} is not running; run start first`);
  let meta = await readMeta(dir);
  if (await isRunning(dir)) {
    if (port !== undefined && port !== meta.port) log(`already running on port ${meta.port}; --port ${port} ignored`);
    return clusterHandle(dir, meta, 'QUARRY_DATABASE_READ_URL');
  }
  await prepareDir(dir);
  if (!existsSync(path.join(dataDir(dir), 'PG_VERSION'))) {
    log(`copying the primary in ${of} to ${dir} (pg_basebackup -R)`);
    await asOwner(`${PG_BIN}/pg_basebackup`, ['-h', runDir(of), '-p', String(primary.port), '-D', dataDir(dir), '-R', '-X', 'stream', '-c', 'fast']);
    // -R wrote standby.signal and a primary_conninfo naming today's port into postgresql.auto.conf, which
    // would win over quarry.conf. Drop that line: quarry.conf names the primary's port at every start, so
    // the replica follows a primary that had to move to another port.
    const auto = path.join(dataDir(dir), 'postgresql.auto.conf');
    await asOwner('sed', ['-i', '/^primary_conninfo/d', auto]);
    meta = { role: 'replica', of, user: primary.user, password: primary.password, database: primary.database };
    await writeMeta(dir, meta);
  }
  if (!meta) throw new Error(`${dir} has a data folder but no cluster.json; remove ${dir} to start afresh`);
  // Peer authentication over the primary's Unix socket, as the same OS user: no replication password.
  const conninfo = `host=${runDir(of)} port=${primary.port} user=${clusterOwner()} application_name=quarry_replica`;
  await startServer(dir, meta, { port, extraConf: [`primary_conninfo = '${conninfo}'`], log });
  return clusterHandle(dir, meta, 'QUARRY_DATABASE_READ_URL');
}

/**
 * Runs SQL as the cluster's superuser over its Unix socket (peer authentication: no password exists) and
 * returns psql's unaligned, tuples-only output (fields split by "|"). For what the Quarry role may not do:
 * pausing a replica's replay (pg_wal_replay_pause), reading pg_stat_replication's lag columns.
 */
export async function adminQuery(dir, sql, { database = 'postgres' } = {}) {
  dir = path.resolve(dir);
  const meta = await readMeta(dir);
  if (!meta || !(await isRunning(dir))) throw new Error(`no cluster is running in ${dir}`);
  return (await adminSql(dir, meta.port, sql.trim().endsWith(';') ? `${sql}\n` : `${sql};\n`, database)).out.trim();
}

/** An interval from pg_stat_replication (seconds, as extract(epoch) gives it) in milliseconds; null when unknown. */
const intervalMs = (v) => (v === '' || v === undefined ? null : Math.round(Number(v) * 1e6) / 1e3);

/**
 * The primary's view of its streaming replicas (pg_stat_replication): state, and the write/flush/replay lag
 * PostgreSQL measured for recent WAL (null once the replica has caught up and nothing new was sent).
 */
export async function replicationStatus(dir = defaultDir()) {
  const out = await adminQuery(
    dir,
    `SELECT application_name, state, coalesce(extract(epoch FROM write_lag)::text, ''), coalesce(extract(epoch FROM flush_lag)::text, ''),
            coalesce(extract(epoch FROM replay_lag)::text, ''), pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)
     FROM pg_stat_replication ORDER BY application_name`,
  );
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [application, state, write, flush, replay, behind] = l.split('|');
      return {
        application,
        state,
        writeLagMs: intervalMs(write),
        flushLagMs: intervalMs(flush),
        replayLagMs: intervalMs(replay),
        replayBehindBytes: Number(behind),
      };
    });
}

/** Fast shutdown of the cluster in DIR (and first of its replica in DIR/replica, if running). No-op if stopped. */
export async function stopCluster(dir = defaultDir(), { log = () => {} } = {}) {
  dir = path.resolve(dir);
  const nested = path.join(dir, 'replica');
  if (existsSync(metaFile(nested))) await stopCluster(nested, { log });
  if (!(await isRunning(dir))) return false;
  log(`stopping the server in ${dir}`);
  await asOwner(`${PG_BIN}/pg_ctl`, ['stop', '-D', dataDir(dir), '-m', 'fast', '-w', '-t', '120', '-s']);
  return true;
}

/**
 * What `status` reports. When running, versions come from the server itself, and `iterativeScan` is the
 * value of pgvector's hnsw.iterative_scan setting (null when the build has no such setting).
 */
export async function clusterStatus(dir = defaultDir()) {
  dir = path.resolve(dir);
  const meta = await readMeta(dir);
  const running = meta !== null && (await isRunning(dir));
  const status = {
    running,
    dir,
    role: meta?.role ?? null,
    of: meta?.of ?? null,
    port: meta?.port ?? null,
    log: logFile(dir),
    postgres: installedPostgresVersion(),
    pgvector: installedPgvectorVersion(),
    iterativeScan: null,
    replication: null,
    replica: null,
  };
  if (running && meta.role === 'primary') status.replication = await replicationStatus(dir);
  // `stop` of a primary stops the replica in DIR/replica too, so `status` reports it as well.
  if (existsSync(metaFile(path.join(dir, 'replica')))) status.replica = await clusterStatus(path.join(dir, 'replica'));
  if (running) {
    const r = await adminSql(
      dir,
      meta.port,
      [
        "LOAD 'vector';",
        "SELECT current_setting('server_version') || '|' || coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '') || '|' || coalesce(current_setting('hnsw.iterative_scan', true), '');",
        '',
      ].join('\n'),
      meta.database,
    );
    const [server, ext, iterative] = r.out.trim().split('|');
    status.postgres = server;
    status.pgvector = ext || null;
    status.iterativeScan = iterative || null;
  }
  return status;
}

/** The reason PostgreSQL cannot be used here (for tests to print when they skip), or null when it can. */
export async function postgresUnavailableReason({ log = stderrLog } = {}) {
  try {
    await ensureInstalled({ log });
    return null;
  } catch (e) {
    if (e instanceof PostgresUnavailableError) return e.message;
    throw e;
  }
}
