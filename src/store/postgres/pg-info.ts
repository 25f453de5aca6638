import pg from 'pg';
import { databaseError } from './pg-errors.ts';

export interface DatabaseInfo {
  backend: 'postgres';
  server: string | null;
  pgvector: string | null;
  /** Why the versions could not be read (the database unreachable…), or null. */
  error: string | null;
}

/** The server and pgvector versions behind a database URL, for `quarry config` (one short connection). */
export async function databaseInfo(url: string, timeoutMs = 3000): Promise<DatabaseInfo> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ server: string; pgvector: string | null }>(
      "SELECT current_setting('server_version') AS server, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector",
    );
    return { backend: 'postgres', server: rows[0]?.server ?? null, pgvector: rows[0]?.pgvector ?? null, error: null };
  } catch (e) {
    return { backend: 'postgres', server: null, pgvector: null, error: (databaseError(e) as Error).message };
  } finally {
    await client.end().catch(() => undefined);
  }
}
