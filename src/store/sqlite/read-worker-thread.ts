/**
 * Runs in a worker thread: a read-only SQLite connection per generation, answering the text look-ups of searches
 * (BM25, highlights, chunk texts, article fields) off the main thread. Those are synchronous native calls, about
 * half of a search's main-thread time; on the main thread they hold every other request for their length, so
 * under overload the event loop, not the admission queue, became where requests waited (docs/history/overload.md).
 * WAL mode lets this connection read what the main thread's connection has committed.
 */
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { isQuarryError } from '../../errors.ts';
import { ArticleDatabase, DATABASE_FILE } from './database.ts';
import { READ_METHODS, type ReadArgs, type ReadRequest, type ReadResponse, runRead } from './read-protocol.ts';

const port = parentPort!;
const connections = new Map<string, ArticleDatabase>();

const connectionOf = (dir: string): ArticleDatabase => {
  let db = connections.get(dir);
  if (!db) {
    db = new ArticleDatabase(join(dir, DATABASE_FILE), { readonly: true });
    connections.set(dir, db);
  }
  return db;
};

port.on('message', (msg: ReadRequest) => {
  if (msg.kind === 'forget') {
    connections.get(msg.dir)?.close();
    connections.delete(msg.dir);
    return;
  }
  if (msg.kind === 'close') {
    for (const db of connections.values()) db.close();
    connections.clear();
    port.postMessage({ id: msg.id, result: null } satisfies ReadResponse);
    port.close();
    return;
  }
  try {
    if (!READ_METHODS.includes(msg.method)) throw new Error(`not a read method: ${msg.method}`);
    const db = connectionOf(msg.dir);
    const result = runRead(db, msg.method, msg.args as ReadArgs<typeof msg.method>);
    port.postMessage({ id: msg.id, result } satisfies ReadResponse);
  } catch (e) {
    const error = isQuarryError(e) ? { code: e.code, message: e.message, field: e.field } : { message: (e as Error).message ?? String(e) };
    port.postMessage({ id: msg.id, error } satisfies ReadResponse);
  }
});
port.postMessage({ id: 0, result: 'ready' } satisfies ReadResponse);
