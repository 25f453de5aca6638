import pg from 'pg';
import { maskUrlPassword } from '../../config/config.ts';
import { QuarryError } from '../../errors.ts';
import { type Logger, silentLogger } from '../../logger.ts';
import { Serial } from '../../util/serial.ts';
import { slicesByChunks } from '../build-slices.ts';
import { type HnswParams, type IndexIdentity, incompatibility, type Manifest, ManifestSchema, newManifest } from '../manifest.ts';
import type {
  ArticleRecord,
  ArticleSummary,
  BuildCounts,
  GenerationBuilder,
  GenerationOrigin,
  IndexStore,
  IntegrityReport,
  PreparedArticle,
  SnapshotReport,
  StoreReader,
  StoreStats,
  WriteOp,
  WriteOutcome,
} from '../store.ts';
import { createGenerationTables, dropGenerationTables, type GenerationTables, tablesOf } from './generation-schema.ts';
import { CHANGES_LOCK, MIGRATION_LOCK, migrate } from './migrations.ts';
import { groupDuplicates } from './pg-duplicates.ts';
import { databaseError, guarded } from './pg-errors.ts';
import { pgReader } from './pg-reader.ts';
import { applyWrites } from './pg-writes.ts';

export interface PgStoreOptions {
  /** postgres://… of the primary (writes, and reads unless `readUrl`). */
  url: string;
  /** postgres://… of a streaming replica that searches read from. */
  readUrl?: string;
  identity: IndexIdentity;
  /** 'read': search and look-ups only (CLI search, check); 'write': this process may change the index. */
  access: 'read' | 'write';
  hnsw: Omit<HnswParams, 'space'>;
  logger?: Logger;
  /** A filtered k-NN over at most this many chunks scans them exactly (default: sqrt(128 · chunks), as SQLite). */
  exactScanMaxChunks?: number;
  /** hnsw.max_scan_tuples of a filtered iterative scan (pgvector's default is 20,000). */
  maxScanTuples?: number;
  /** Connections per pool. */
  poolSize?: number;
}

/** Chunks stored per transaction of a generation being built. */
const BUILD_WRITE_CHUNKS = 256;
/** Unchecked articles (left by a crash between a write and its grouping) picked up by each grouping pass. */
const GROUP_BACKLOG = 50;
/** How stale this process's idea of the current generation may get before a search looks again. */
const REFRESH_MS = 1000;
const EXACT_SCAN_FACTOR = 128;
const DEFAULT_MAX_SCAN_TUPLES = 40_000;
/** Write batches between two prunings of the change log by one process. */
const PRUNE_EVERY_WRITES = 500;
/**
 * First key of the session advisory lock a generation's builder holds (second key: the generation id) from the
 * transaction that creates its tables until it publishes or discards them. A crashed builder's session is gone
 * and so is its lock: that is how a starting writer tells a dead build's tables from a live one's.
 */
export const BUILD_LOCK_CLASS = 0x71627569; // "qbui"
/**
 * Session advisory lock ("quarry-f") a first build holds from its start to its end: processes that start on an
 * empty database together build the index once; the others wait, then find it built.
 */
const FIRST_BUILD_LOCK = 0x71756172_72792d66n;

interface Current {
  id: number;
  manifest: Manifest;
  counts: { articles: number; chunks: number };
}

const redactUrl = (url: string): string => maskUrlPassword(url) ?? '';

/** Runs `fn` in a transaction on one connection of `pool`; a connection that failed mid-way is not reused. */
async function transaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    broken = e as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release(broken);
  }
}

/**
 * The PostgreSQL + pgvector backend: any number of Quarry processes share one database, with no lock file.
 * Each generation is a set of tables (generation-schema.ts); the `quarry_state` row names the current one and
 * `quarry_generations` holds its manifest — the model fingerprint every writer checks inside its transaction.
 * A write is one transaction (acknowledged after COMMIT, synchronous_commit on), duplicates are grouped in a
 * second one before the write resolves. Every driver failure that means "the database is not there" becomes
 * QuarryError('unavailable') (HTTP 503 + Retry-After); the pool reconnects by itself on the next request.
 */
export class PgStore implements IndexStore {
  readonly backend = 'postgres' as const;
  private current: Current | null = null;
  private why: string | null = null;
  private refreshedAt = 0;
  private refreshing: Promise<void> | null = null;
  private readonly writes = new Serial();
  private readonly log: Logger;
  private closed = false;
  private writesSincePrune = 0;

  private constructor(
    private readonly opts: PgStoreOptions,
    private readonly pool: pg.Pool,
    private readonly readPool: pg.Pool,
  ) {
    this.log = opts.logger ?? silentLogger;
  }

  static async open(opts: PgStoreOptions): Promise<PgStore> {
    const log = opts.logger ?? silentLogger;
    const make = (url: string, role: string) => {
      const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 8, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000 });
      // An idle connection dropped by a server restart is reported here; without a listener Node would crash
      // the process. The pool discards it and opens a fresh one for the next request.
      pool.on('error', (e) => log.warn({ err: e, pool: role }, 'database connection lost; the pool reconnects on the next request'));
      return pool;
    };
    const pool = make(opts.url, 'primary');
    const readPool = opts.readUrl ? make(opts.readUrl, 'replica') : pool;
    const store = new PgStore(opts, pool, readPool);
    try {
      await guarded(() => migrate(pool));
      if (opts.access === 'write') {
        await guarded(() => dropDeadBuilds(pool, log));
        await guarded(() => pruneChanges(pool));
      }
      await guarded(() => store.refresh());
      if (opts.access === 'write' && store.current && !store.why) await guarded(() => store.groupBacklog(store.current!.id));
      return store;
    } catch (e) {
      await pool.end().catch(() => undefined);
      if (readPool !== pool) await readPool.end().catch(() => undefined);
      throw e;
    }
  }

  /** Reads the current generation, its manifest and counts. */
  private async refresh(): Promise<void> {
    const { rows } = await this.pool.query<{ id: number | null; manifest: unknown; articles: string | null; chunks: string | null }>(
      'SELECT s.current_generation AS id, g.manifest, g.articles, g.chunks FROM quarry_state s LEFT JOIN quarry_generations g ON g.id = s.current_generation',
    );
    this.adopt(rows[0]?.id ?? null, rows[0]?.manifest, Number(rows[0]?.articles ?? 0), Number(rows[0]?.chunks ?? 0));
    this.refreshedAt = Date.now();
  }

  private adopt(id: number | null, rawManifest: unknown, articles: number, chunks: number): void {
    if (id === null) {
      this.current = null;
      this.why = null;
      return;
    }
    const sameGeneration = this.current?.id === id;
    const manifest = sameGeneration ? this.current!.manifest : ManifestSchema.parse(rawManifest);
    this.current = { id, manifest, counts: { articles, chunks } };
    if (!sameGeneration) {
      const why = incompatibility(manifest, this.opts.identity.model, this.opts.identity.chunker);
      this.why = why ? `the index in the database (generation ${id}) cannot be used by this process: ${why}` : null;
    }
  }

  /** A refresh in the background when the cached state is older than REFRESH_MS (reader() cannot wait). */
  private refreshSoon(): void {
    if (this.closed || this.refreshing || Date.now() - this.refreshedAt < REFRESH_MS) return;
    this.refreshing = this.refresh()
      .catch((e) => this.log.debug({ err: e }, 'refreshing the current generation failed'))
      .finally(() => {
        this.refreshing = null;
      });
  }

  get hasIndex(): boolean {
    return this.current !== null;
  }

  get manifest(): Manifest {
    if (!this.current) throw this.missing();
    return this.current.manifest;
  }

  get incompatibility(): string | null {
    return this.why;
  }

  private missing(): QuarryError {
    return new QuarryError('index_missing', `there is no index in the database ${redactUrl(this.opts.url)}: build one with \`quarry rebuild-index\``);
  }

  /**
   * The current generation, read again when the cached one is older than REFRESH_MS: another process may
   * have switched generations (a rebuild), and look-ups and stats must follow it as searches do.
   */
  private async fresh(): Promise<Current> {
    if (!this.closed && Date.now() - this.refreshedAt >= REFRESH_MS) await guarded(() => this.refresh());
    return this.usable();
  }

  private usable(): Current {
    if (this.closed) throw new QuarryError('unavailable', 'the index is closed');
    if (!this.current) throw this.missing();
    if (this.why) throw new QuarryError('index_incompatible', this.why);
    return this.current;
  }

  private assertWriter(): void {
    if (this.closed) throw new QuarryError('unavailable', 'the index is closed');
    if (this.opts.access !== 'write') throw new QuarryError('forbidden', 'this index was opened read-only');
  }

  reader(): StoreReader {
    this.refreshSoon();
    const cur = this.usable();
    return pgReader({
      pool: this.readPool,
      generation: cur.id,
      manifest: cur.manifest,
      counts: cur.counts,
      efSearch: this.opts.hnsw.efSearch,
      exactScanMaxChunks: this.opts.exactScanMaxChunks ?? Math.ceil(Math.sqrt(EXACT_SCAN_FACTOR * cur.counts.chunks)),
      maxScanTuples: this.opts.maxScanTuples ?? DEFAULT_MAX_SCAN_TUPLES,
    });
  }

  /**
   * One transaction: the state row read FOR SHARE (a rebuild's switch waits for it, and it for the switch),
   * the model check against the generation that is current now — a process started with another model, or
   * left behind by another process's rebuild, is refused here, naming the mismatch — then the batch and the
   * generation's live counts. Acknowledged after COMMIT; duplicates grouped in a second transaction.
   */
  async write(ops: WriteOp[]): Promise<WriteOutcome[]> {
    this.assertWriter();
    return this.writes.run(() =>
      guarded(async () => {
        const { outcomes, generation, inserted } = await transaction(this.pool, async (c) => {
          const { rows } = await c.query<{ id: number | null; manifest: unknown; articles: string; chunks: string }>(
            `SELECT s.current_generation AS id, g.manifest, g.articles, g.chunks FROM quarry_state s
             LEFT JOIN quarry_generations g ON g.id = s.current_generation FOR SHARE OF s`,
          );
          const row = rows[0];
          this.adopt(row?.id ?? null, row?.manifest, Number(row?.articles ?? 0), Number(row?.chunks ?? 0));
          const cur = this.usable();
          const t = tablesOf(cur.id);
          const applied = await applyWrites(c, t, ops, true);
          const counts = await c.query<{ articles: string; chunks: string }>(
            'UPDATE quarry_generations SET articles = articles + $2, chunks = chunks + $3 WHERE id = $1 RETURNING articles, chunks',
            [cur.id, applied.articleDelta, applied.chunkDelta],
          );
          return { outcomes: applied.outcomes, generation: cur.id, inserted: applied.inserted, counts: counts.rows[0]! };
        }).then((r) => {
          if (this.current?.id === r.generation) this.current.counts = { articles: Number(r.counts.articles), chunks: Number(r.counts.chunks) };
          return r;
        });
        await this.group(generation, inserted);
        if (++this.writesSincePrune >= PRUNE_EVERY_WRITES) {
          this.writesSincePrune = 0;
          // Housekeeping after an acknowledged write: a failure here must not turn the write into an error.
          await pruneChanges(this.pool).catch((e) => this.log.warn({ err: e }, 'could not prune the change log'));
        }
        return outcomes;
      }),
    );
  }

  /** Groups these articles and a slice of any backlog of unchecked ones, in one transaction. */
  private async group(generation: number, keys: readonly number[]): Promise<void> {
    const t = tablesOf(generation);
    await transaction(this.pool, async (c) => {
      const { rows } = await c.query<{ key: string }>(
        `SELECT key FROM ${t.articles} WHERE NOT dup_checked AND (key = ANY($1::bigint[]) OR key IN (SELECT key FROM ${t.articles} WHERE NOT dup_checked ORDER BY key LIMIT $2)) ORDER BY key`,
        [keys, keys.length === 0 ? GROUP_BACKLOG : Math.min(GROUP_BACKLOG, keys.length)],
      );
      await groupDuplicates(
        c,
        t,
        rows.map((r) => Number(r.key)),
      );
    });
  }

  /** Articles a crash left ungrouped (written, but not yet grouped), grouped when a writer opens the index. */
  private async groupBacklog(generation: number): Promise<void> {
    const t = tablesOf(generation);
    for (;;) {
      const { rows } = await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t.articles} WHERE NOT dup_checked`);
      if (Number(rows[0]?.n ?? 0) === 0) return;
      await this.group(generation, []);
    }
  }

  async getArticle(id: string): Promise<ArticleRecord | null> {
    const cur = await this.fresh();
    return guarded(async () => {
      const { rows } = await this.pool.query(
        `SELECT id, title, date, source, url, tags, paragraphs, origin, content_hash, updated_at FROM ${tablesOf(cur.id).articles} WHERE id = $1`,
        [id],
      );
      return rows[0] ? recordOf(rows[0]) : null;
    });
  }

  async listArticles(): Promise<ArticleSummary[]> {
    const cur = await this.fresh();
    return guarded(async () => {
      const { rows } = await this.pool.query<{ id: string; origin: string; content_hash: string }>(
        `SELECT id, origin, content_hash FROM ${tablesOf(cur.id).articles} ORDER BY key`,
      );
      return rows.map((r) => ({ id: r.id, origin: r.origin, contentHash: r.content_hash }));
    });
  }

  /** Every stored article, a page at a time (readable even when incompatible: a rebuild re-embeds them). */
  async *articles(): AsyncIterable<ArticleRecord> {
    if (!this.current) throw this.missing();
    const t = tablesOf(this.current.id);
    let after = 0;
    for (;;) {
      const { rows } = await guarded(() =>
        this.pool.query(
          `SELECT key, id, title, date, source, url, tags, paragraphs, origin, content_hash, updated_at FROM ${t.articles} WHERE key > $1 ORDER BY key LIMIT 500`,
          [after],
        ),
      );
      for (const r of rows) yield recordOf(r);
      if (rows.length < 500) return;
      after = Number(rows[rows.length - 1].key);
    }
  }

  async folderFiles(): Promise<Map<string, string>> {
    if (!this.closed && Date.now() - this.refreshedAt >= REFRESH_MS) await guarded(() => this.refresh());
    if (!this.current) throw this.missing();
    const t = tablesOf(this.current.id);
    return guarded(async () => {
      const { rows } = await this.pool.query<{ id: string; content_hash: string }>(`SELECT id, content_hash FROM ${t.folderFiles}`);
      return new Map(rows.map((r) => [r.id, r.content_hash]));
    });
  }

  async setFolderFiles(files: ReadonlyMap<string, string>): Promise<void> {
    this.assertWriter();
    const t = tablesOf((await this.fresh()).id);
    return this.writes.run(() => guarded(() => transaction(this.pool, (c) => replaceFolderFiles(c, t, files))));
  }

  async stats(): Promise<StoreStats> {
    const cur = await this.fresh();
    const t = tablesOf(cur.id);
    return guarded(async () => {
      const { rows } = await this.pool.query<{ server: string; pgvector: string | null; total: string; hnsw: string; articles: string; chunks: string }>(
        `SELECT current_setting('server_version') AS server, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,
                pg_total_relation_size('${t.articles}') + pg_total_relation_size('${t.chunks}') AS total,
                pg_relation_size('${t.chunks}_hnsw') AS hnsw, g.articles, g.chunks
         FROM quarry_generations g WHERE g.id = $1`,
        [cur.id],
      );
      const r = rows[0]!;
      cur.counts = { articles: Number(r.articles), chunks: Number(r.chunks) };
      const total = Number(r.total);
      const hnswBytes = Number(r.hnsw);
      return {
        backend: 'postgres',
        articles: cur.counts.articles,
        chunks: cur.counts.chunks,
        deleted: 0,
        hnsw: { M: cur.manifest.hnsw.M, efConstruction: cur.manifest.hnsw.efConstruction, efSearch: this.opts.hnsw.efSearch, points: cur.counts.chunks },
        // For this backend `sqliteBytes` is the tables and their other indexes; `hnswBytes` the HNSW index.
        disk: { sqliteBytes: total - hnswBytes, hnswBytes, totalBytes: total },
        lastCheckpoint: null,
        changesSinceCheckpoint: 0,
        dir: `${redactUrl(this.opts.url)} (generation ${cur.id})`,
        database: {
          server: r.server,
          pgvector: r.pgvector ?? 'not installed',
          generation: cur.id,
          readReplica: this.opts.readUrl ? redactUrl(this.opts.readUrl) : null,
        },
      };
    });
  }

  async checkIntegrity(): Promise<IntegrityReport> {
    const cur = await this.fresh();
    const t = tablesOf(cur.id);
    return guarded(async () => {
      const one = async (sql: string) => Number((await this.pool.query<{ n: string }>(sql)).rows[0]?.n ?? 0);
      const articles = await one(`SELECT count(*) AS n FROM ${t.articles}`);
      const chunks = await one(`SELECT count(*) AS n FROM ${t.chunks}`);
      const withoutChunks = await one(`SELECT count(*) AS n FROM ${t.articles} a WHERE NOT EXISTS (SELECT 1 FROM ${t.chunks} c WHERE c.article_key = a.key)`);
      const countMismatch = await one(
        `SELECT count(*) AS n FROM ${t.articles} a WHERE a.chunk_count <> (SELECT count(*) FROM ${t.chunks} c WHERE c.article_key = a.key)`,
      );
      const invalid = await one(
        `SELECT count(*) AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname IN ('${t.articles}', '${t.chunks}') AND NOT (i.indisvalid AND i.indisready)`,
      );
      const counters = (await this.pool.query<{ articles: string; chunks: string }>('SELECT articles, chunks FROM quarry_generations WHERE id = $1', [cur.id]))
        .rows[0]!;
      const problems: string[] = [];
      if (invalid > 0) problems.push(`${invalid} index(es) invalid or not ready`);
      if (countMismatch > 0) problems.push(`${countMismatch} article(s) whose chunk_count differs from their chunks`);
      if (Number(counters.articles) !== articles || Number(counters.chunks) !== chunks)
        problems.push(`live counters ${counters.articles}/${counters.chunks} differ from the tables ${articles}/${chunks}`);
      return {
        ok: problems.length === 0,
        sqlite: invalid === 0 ? 'ok' : `${invalid} invalid index(es)`,
        foreignKeyViolations: 0,
        articles,
        chunks,
        ftsRows: chunks,
        articlesWithoutChunks: withoutChunks,
        // The HNSW index is maintained by PostgreSQL in the same transaction as the rows: it holds exactly them.
        hnsw: { points: chunks, live: chunks, missing: 0, extra: 0, mismatched: 0 },
        problems,
      };
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new QuarryError('unavailable', 'the index is closed');
    await guarded(async () => {
      await this.pool.query('SELECT 1');
      if (this.readPool !== this.pool) await this.readPool.query('SELECT 1');
    });
  }

  async snapshot(_dir: string): Promise<SnapshotReport> {
    throw new QuarryError(
      'conflict',
      'this index lives in PostgreSQL: back it up with the database tools (pg_dump of the quarry_* tables, or base backups with WAL archiving), not `quarry snapshot`; see docs/deployment.md',
    );
  }

  async beginGeneration(origin: GenerationOrigin): Promise<GenerationBuilder> {
    this.assertWriter();
    const { identity, hnsw } = this.opts;
    const manifest = newManifest(identity, hnsw, origin.source);
    // The builder's own connection holds its lock, taken before the generation's row is visible to anyone.
    const holder = await guarded(() => this.pool.connect());
    let started: { id: number; base: number | null; fromSeq: number };
    try {
      started = await guarded(async () => {
        const first = (await holder.query<{ id: number | null }>('SELECT current_generation AS id FROM quarry_state')).rows[0]?.id === null;
        if (first) await holder.query('SELECT pg_advisory_lock($1)', [FIRST_BUILD_LOCK.toString()]);
        await holder.query('BEGIN');
        try {
          // Where this build starts reading the change log, recorded before a pruning can remove what it needs.
          await holder.query('SELECT pg_advisory_xact_lock($1)', [CHANGES_LOCK.toString()]);
          const base = await holder.query<{ id: number | null; seq: string | null }>(
            'SELECT current_generation AS id, (SELECT max(seq) FROM quarry_changes) AS seq FROM quarry_state',
          );
          if (first && base.rows[0]?.id !== null) {
            throw new QuarryError('conflict', 'another process built the index while this one waited to build it; nothing was changed', {
              details: { indexBuiltElsewhere: true },
            });
          }
          const fromSeq = Number(base.rows[0]?.seq ?? 0);
          const { rows } = await holder.query<{ id: number }>(
            "INSERT INTO quarry_generations (state, manifest, from_seq) VALUES ('building', $1, $2) RETURNING id",
            [manifest, fromSeq],
          );
          const id = rows[0]!.id;
          await holder.query('SELECT pg_advisory_lock($1, $2)', [BUILD_LOCK_CLASS, id]);
          await createGenerationTables(holder, id, identity.model.dims, hnsw);
          await holder.query('COMMIT');
          return { id, base: base.rows[0]?.id ?? null, fromSeq };
        } catch (e) {
          await holder.query('ROLLBACK').catch(() => undefined);
          throw e;
        }
      });
    } catch (e) {
      // The session (and any lock taken in it) ends with the connection.
      holder.release(true);
      throw e;
    }
    return new PgGenerationBuilder(this, this.pool, tablesOf(started.id), started.base, started.fromSeq, manifest, holder);
  }

  /** After a publish (by this process): adopt the new generation and drop the ones two behind. */
  async published(): Promise<void> {
    await this.refresh();
    const { rows } = await this.pool.query<{ id: number }>(
      `SELECT id FROM quarry_generations WHERE state = 'retired' AND id < (SELECT max(id) FROM quarry_generations WHERE state = 'retired')`,
    );
    for (const { id } of rows) {
      // Best effort: a failure leaves tables behind for the next publish to drop.
      await transaction(this.pool, async (c) => {
        await dropGenerationTables(c, id);
        await c.query('DELETE FROM quarry_changes WHERE generation = $1', [id]);
        await c.query("DELETE FROM quarry_generations WHERE id = $1 AND state = 'retired'", [id]);
      }).catch((e) => this.log.warn({ err: e, generation: id }, 'could not drop an old generation'));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.writes.run(async () => {
      this.closed = true;
    });
    await this.refreshing;
    await this.pool.end();
    if (this.readPool !== this.pool) await this.readPool.end();
  }
}

/**
 * Deletes the change-log rows no build can need: a build replays only rows after the `from_seq` it recorded
 * when it began, so everything up to the oldest such point (or all rows when nothing is being built) goes.
 * Without this every write of a process that never rebuilds would stay in quarry_changes for good.
 */
export async function pruneChanges(pool: pg.Pool): Promise<number> {
  return transaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [CHANGES_LOCK.toString()]);
    const { rowCount } = await c.query(
      `DELETE FROM quarry_changes WHERE seq <= coalesce(
         (SELECT min(coalesce(from_seq, 0)) FROM quarry_generations WHERE state = 'building'),
         (SELECT max(seq) FROM quarry_changes))`,
    );
    return rowCount ?? 0;
  });
}

/**
 * Drops the tables of builds whose process died (a crash or kill during a rebuild leaves a 'building'
 * generation behind): those whose build lock (BUILD_LOCK_CLASS, id) nobody holds. Under the migrations'
 * advisory lock, so processes starting together clean up once; a live build elsewhere keeps its lock and its tables.
 */
async function dropDeadBuilds(pool: pg.Pool, log: Logger): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      const { rows } = await c.query<{ id: number }>("SELECT id FROM quarry_generations WHERE state = 'building' ORDER BY id");
      for (const { id } of rows) {
        const free = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [BUILD_LOCK_CLASS, id]);
        if (!free.rows[0]?.ok) continue;
        try {
          await c.query('BEGIN');
          await dropGenerationTables(c, id);
          await c.query('DELETE FROM quarry_changes WHERE generation = $1', [id]);
          await c.query("DELETE FROM quarry_generations WHERE id = $1 AND state = 'building'", [id]);
          await c.query('COMMIT');
          log.warn({ generation: id }, 'dropped the tables of a rebuild whose process is gone');
        } catch (e) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw e;
        } finally {
          await c.query('SELECT pg_advisory_unlock($1, $2)', [BUILD_LOCK_CLASS, id]);
        }
      }
    } finally {
      await c.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]);
    }
  } finally {
    c.release();
  }
}

/** Replaces the record of applied seeds-folder articles (in the caller's transaction). */
async function replaceFolderFiles(c: pg.ClientBase, t: GenerationTables, files: ReadonlyMap<string, string>): Promise<void> {
  await c.query(`DELETE FROM ${t.folderFiles}`);
  if (files.size > 0) {
    await c.query(`INSERT INTO ${t.folderFiles} (id, content_hash) SELECT * FROM unnest($1::text[], $2::text[])`, [[...files.keys()], [...files.values()]]);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a pg row
function recordOf(r: any): ArticleRecord {
  return {
    id: r.id,
    title: r.title,
    date: r.date,
    source: r.source,
    url: r.url,
    tags: r.tags,
    paragraphs: r.paragraphs,
    origin: r.origin,
    contentHash: r.content_hash,
    updatedAt: r.updated_at,
  };
}

/**
 * A generation being built: its own tables, invisible to readers (nothing names them) until `publish`
 * switches the state row to it in one transaction — which also checks that nobody else published meanwhile
 * and that no write reached the old generation after the last `changedSince` (else the new one would miss it).
 */
class PgGenerationBuilder implements GenerationBuilder {
  private seenSeq: number;
  private done = false;

  constructor(
    private readonly store: PgStore,
    private readonly pool: pg.Pool,
    private readonly t: GenerationTables,
    private readonly base: number | null,
    fromSeq: number,
    private readonly manifest: Manifest,
    /** The connection holding this build's advisory lock (BUILD_LOCK_CLASS, id), closed when the build ends. */
    private readonly holder: pg.PoolClient,
  ) {
    this.seenSeq = fromSeq;
  }

  /** Ends the session that holds the build lock (closing it releases the lock, whatever state it is in). */
  private releaseLock(): void {
    this.holder.release(true);
  }

  private async apply(ops: WriteOp[]): Promise<void> {
    const inserted = await guarded(() =>
      transaction(this.pool, async (c) => {
        const applied = await applyWrites(c, this.t, ops, false);
        await c.query('UPDATE quarry_generations SET articles = articles + $2, chunks = chunks + $3 WHERE id = $1', [
          this.t.id,
          applied.articleDelta,
          applied.chunkDelta,
        ]);
        return applied.inserted;
      }),
    );
    if (inserted.length > 0) await guarded(() => transaction(this.pool, (c) => groupDuplicates(c, this.t, inserted)));
  }

  async write(articles: PreparedArticle[], opts?: { pace?: () => Promise<void> }): Promise<void> {
    for (const slice of slicesByChunks(articles, BUILD_WRITE_CHUNKS)) {
      await this.apply(slice.map((article) => ({ op: 'upsert', article })));
      await opts?.pace?.();
    }
  }

  async delete(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.apply(ids.map((id) => ({ op: 'delete', id })));
  }

  async changedSince(): Promise<string[]> {
    if (this.base === null) return [];
    return guarded(() =>
      transaction(this.pool, async (c) => {
        // Writes of every process take their change-log seq inside a transaction that holds the state row FOR
        // SHARE, and commit in any order. Reading the log past a seq whose write has not committed yet would move
        // the mark beyond it for good (the publish's late check counts only seqs past the mark): that write would
        // be acknowledged and missing from the new generation. FOR UPDATE waits for the writes in flight to commit
        // and holds new ones for this one read, so the log read has no gaps below its highest seq.
        await c.query('SELECT 1 FROM quarry_state FOR UPDATE');
        const { rows } = await c.query<{ article_id: string; seq: string }>(
          'SELECT article_id, max(seq) AS seq FROM quarry_changes WHERE generation = $1 AND seq > $2 GROUP BY article_id',
          [this.base, this.seenSeq],
        );
        for (const r of rows) this.seenSeq = Math.max(this.seenSeq, Number(r.seq));
        return rows.map((r) => r.article_id);
      }),
    );
  }

  async publish(opts: { folderFiles: ReadonlyMap<string, string>; buildSeconds: number }): Promise<BuildCounts> {
    // Planner statistics before the generation serves: the lexical search takes its document frequencies from
    // them (pg-lexical.ts), and autovacuum would gather them only a while after the switch.
    await guarded(() => this.pool.query(`ANALYZE ${this.t.chunks}, ${this.t.articles}`));
    const counts = await guarded(() =>
      transaction(this.pool, async (c) => {
        const state = await c.query<{ id: number | null }>('SELECT current_generation AS id FROM quarry_state FOR UPDATE');
        const current = state.rows[0]?.id ?? null;
        if (current !== this.base) {
          throw new QuarryError('conflict', `another process switched the index to generation ${current} while this one was built; nothing was changed`);
        }
        if (this.base !== null) {
          const late = await c.query<{ n: string }>('SELECT count(*) AS n FROM quarry_changes WHERE generation = $1 AND seq > $2', [this.base, this.seenSeq]);
          if (Number(late.rows[0]?.n ?? 0) > 0) {
            // Nothing changed: the caller replays changedSince() again and publishes again (core/rebuild.ts).
            throw new QuarryError('conflict', 'another process wrote to the index after the rebuild caught up with its writes; retry the rebuild', {
              details: { retryAfterSeconds: 5, lateWrites: true },
            });
          }
        }
        await replaceFolderFiles(c, this.t, opts.folderFiles);
        const { rows } = await c.query<{ articles: string; chunks: string }>('SELECT articles, chunks FROM quarry_generations WHERE id = $1', [this.t.id]);
        const counts = { articles: Number(rows[0]!.articles), chunks: Number(rows[0]!.chunks) };
        const manifest: Manifest = { ...this.manifest, counts, built: new Date().toISOString(), buildSeconds: Math.round(opts.buildSeconds * 1000) / 1000 };
        await c.query("UPDATE quarry_generations SET state = 'current', manifest = $2, published_at = now() WHERE id = $1", [this.t.id, manifest]);
        if (current !== null) await c.query("UPDATE quarry_generations SET state = 'retired' WHERE id = $1", [current]);
        await c.query('UPDATE quarry_state SET current_generation = $1', [this.t.id]);
        return counts;
      }),
    );
    this.done = true;
    this.releaseLock();
    await this.store.published().catch((e) => {
      throw databaseError(e);
    });
    return counts;
  }

  async discard(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await guarded(() =>
        transaction(this.pool, async (c) => {
          await dropGenerationTables(c, this.t.id);
          await c.query("DELETE FROM quarry_generations WHERE id = $1 AND state = 'building'", [this.t.id]);
        }),
      );
    } finally {
      this.releaseLock();
    }
  }
}
