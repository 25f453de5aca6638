/**
 * `npm run bench -- postgres-scifact --from INDEX_DIR --database URL`
 *
 * Copies a SciFact index built by the SQLite backend (`npm run eval -- --dataset …/scifact --keep-index DIR`)
 * into a PostgreSQL database — the same articles, chunks and vectors, and the same manifest (model, chunker,
 * corpus fingerprint) — without re-embedding (SciFact takes ~20 min to embed on this machine). `npm run eval`
 * with QUARRY_DATABASE_URL then reuses it, so the two backends are compared on identical vectors and only
 * their retrieval differs (FTS5 BM25 vs BM25 in SQL; hnswlib vs pgvector HNSW). The SQLite folder is copied first:
 * opening it could bring its schema up to date, and it may belong to someone else.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgStore } from '../src/store/postgres/pg-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { PreparedArticle } from '../src/store/store.ts';
import { flag } from './lib/args.ts';

export async function run(args: string[]): Promise<void> {
  const from = flag(args, 'from', undefined);
  const url = flag(args, 'database', process.env.QUARRY_DATABASE_URL);
  if (!from || !url) throw new Error('--from INDEX_DIR and --database URL (or QUARRY_DATABASE_URL) are required');
  const copy = mkdtempSync(join(tmpdir(), 'quarry-scifact-copy-'));
  cpSync(from, copy, { recursive: true });
  try {
    const probe = await SqliteStore.open({
      root: copy,
      identity: {
        model: { id: 'x', dtype: 'x', pooling: 'mean', normalized: true, dims: 384, maxTokens: 256, queryPrefix: '', passagePrefix: '', files: {} },
        chunker: { version: 'x', minWords: 0, maxTokens: 0 },
      },
      access: 'read',
      hnsw: { M: 16, efConstruction: 200, efSearch: 160 },
      checkpointEvery: 1_000_000,
      compactDeletedRatio: 0.2,
    });
    const manifest = probe.manifest;
    await probe.close();
    const identity = { model: manifest.model, chunker: manifest.chunker };
    const hnsw = { M: manifest.hnsw.M, efConstruction: manifest.hnsw.efConstruction, efSearch: manifest.hnsw.efSearch };
    const sqlite = await SqliteStore.open({ root: copy, identity, access: 'read', hnsw, checkpointEvery: 1_000_000, compactDeletedRatio: 0.2 });
    const pg = await PgStore.open({ url, identity, access: 'write', hnsw });
    const t = performance.now();
    const builder = await pg.beginGeneration({ source: manifest.source });
    const reader = sqlite.reader();
    let batch: PreparedArticle[] = [];
    let articles = 0;
    for await (const a of sqlite.articles()) {
      const key = (await reader.articleKey(a.id))!;
      const vectors = await reader.articleVectors(key);
      const texts = await reader.chunkTexts(vectors.map((v) => v.chunkId));
      const { origin, contentHash: _h, updatedAt: _u, ...article } = a;
      batch.push({ article, origin, chunks: vectors.map((v) => ({ ...texts.get(v.chunkId)!, vector: v.vector })) });
      if (batch.length >= 64) {
        await builder.write(batch);
        articles += batch.length;
        batch = [];
        process.stderr.write(`\r${articles} articles copied`);
      }
    }
    await builder.write(batch);
    articles += batch.length;
    reader.release();
    const counts = await builder.publish({ folderFiles: await sqlite.folderFiles(), buildSeconds: manifest.buildSeconds });
    console.log(JSON.stringify({ ...counts, copySeconds: Math.round((performance.now() - t) / 100) / 10, fingerprint: manifest.source.fingerprint }));
    await pg.close();
    await sqlite.close();
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
