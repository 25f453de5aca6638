// Types for scripts/postgres-lib.mjs, so TypeScript tests can import it.

export declare const PG_MAJOR: number;
export declare const PG_BIN: string;
export declare const PROJECT_ROOT: string;

/** PostgreSQL cannot be installed here (no apt-get, no root/sudo, no network to the Debian mirror). */
export declare class PostgresUnavailableError extends Error {}

export type Log = (line: string) => void;

export interface Cluster {
  /** postgres://quarry:PASSWORD@127.0.0.1:PORT/quarry */
  url: string;
  /** QUARRY_DATABASE_URL for a primary, QUARRY_DATABASE_READ_URL for a replica. */
  urlKey: 'QUARRY_DATABASE_URL' | 'QUARRY_DATABASE_READ_URL';
  dir: string;
  port: number;
  /** Fast shutdown (of a primary: its replica in DIR/replica first). */
  stop(): Promise<boolean>;
}

export interface ClusterStatus {
  running: boolean;
  dir: string;
  role: 'primary' | 'replica' | null;
  /** A replica's primary folder. */
  of: string | null;
  port: number | null;
  log: string;
  postgres: string | null;
  pgvector: string | null;
  /** Value of hnsw.iterative_scan when running; null when stopped or when the build lacks it. */
  iterativeScan: string | null;
  /** A running primary's streaming replicas (pg_stat_replication); null for a replica or a stopped cluster. */
  replication: ReplicationState[] | null;
  /** The replica in DIR/replica (which `stop` of DIR stops too), if one was ever created there. */
  replica: ClusterStatus | null;
}

export interface ReplicationState {
  /** The replica's application_name (`quarry_replica` for those of start-replica). */
  application: string;
  /** `streaming` once caught up with the primary. */
  state: string;
  /** PostgreSQL's measured lag for recent WAL (null when idle and caught up). */
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  /** WAL bytes the replica has not yet replayed. */
  replayBehindBytes: number;
}

export declare function defaultDir(projectRoot?: string): string;
export declare function installedVersions(): { postgres: string | null; pgvector: string | null };
export declare function installedPgvectorVersion(): string | null;
export declare function installedPostgresVersion(): string | null;
export declare function ensureInstalled(opts?: { log?: Log }): Promise<{ postgres: string | null; pgvector: string | null }>;
export declare function postgresUnavailableReason(opts?: { log?: Log }): Promise<string | null>;
export declare function startPrimary(opts?: { dir?: string; port?: number; log?: Log }): Promise<Cluster>;
export declare function startReplica(opts?: { of?: string; dir?: string; port?: number; log?: Log }): Promise<Cluster>;
export declare function stopCluster(dir?: string, opts?: { log?: Log }): Promise<boolean>;
export declare function clusterStatus(dir?: string): Promise<ClusterStatus>;
/** SQL as the cluster's superuser over its Unix socket; psql's unaligned tuples-only output, trimmed. */
export declare function adminQuery(dir: string, sql: string, opts?: { database?: string }): Promise<string>;
export declare function replicationStatus(dir?: string): Promise<ReplicationState[]>;
export declare function freePort(): Promise<number>;
