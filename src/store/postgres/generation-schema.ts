import type { ClientBase } from 'pg';
import type { HnswParams } from '../manifest.ts';

/** Table names of one generation: `quarry_g<id>_…`, so a rebuild fills new tables beside the current ones. */
export interface GenerationTables {
  id: number;
  articles: string;
  chunks: string;
  folderFiles: string;
}

export function tablesOf(id: number): GenerationTables {
  if (!Number.isInteger(id) || id <= 0) throw new Error(`bad generation id ${id}`);
  return { id, articles: `quarry_g${id}_articles`, chunks: `quarry_g${id}_chunks`, folderFiles: `quarry_g${id}_folder_files` };
}

/** The text search configuration of the weighted tsvector (title A, text B) and of every query against it. */
export const TS_CONFIG = 'english';

/**
 * Creates a generation's tables and indexes. The chunks carry their article's filter fields (date, source,
 * tag keys) so a filtered k-NN is one index scan over one table with a filter, which pgvector's iterative
 * scan can continue until enough rows pass it. The HNSW index exists from the start: a build inserts into it
 * as it goes, so the build's duplicate detection can use it.
 */
export async function createGenerationTables(client: ClientBase, id: number, dims: number, hnsw: Pick<HnswParams, 'M' | 'efConstruction'>): Promise<void> {
  const t = tablesOf(id);
  if (!Number.isInteger(dims) || dims <= 0) throw new Error(`bad dimensions ${dims}`);
  await client.query(`
    CREATE TABLE ${t.articles} (
      key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id text NOT NULL UNIQUE,
      title text NOT NULL,
      date text,
      source text,
      url text,
      tags text[] NOT NULL DEFAULT '{}',      -- as given
      paragraphs text[] NOT NULL,             -- the article text is them joined by a blank line
      origin text NOT NULL,                   -- "folder:<file>", "api", "cli"
      content_hash text NOT NULL,
      updated_at text NOT NULL,
      date_key text,                          -- YYYY-MM-DD as written (corpus/article.ts dateKey)
      source_key text,                        -- metadataKey(source)
      tag_keys text[] NOT NULL DEFAULT '{}',  -- metadataKey of each tag
      chunk_count integer NOT NULL,
      text_hash text NOT NULL,                -- corpus/duplicates.ts duplicateTextHash
      dup_group bigint,                       -- duplicate group; NULL when alone
      dup_checked boolean NOT NULL DEFAULT false
    );
    CREATE INDEX ${t.articles}_date ON ${t.articles} (date_key);
    CREATE INDEX ${t.articles}_source ON ${t.articles} (source_key);
    CREATE INDEX ${t.articles}_tags ON ${t.articles} USING gin (tag_keys);
    CREATE INDEX ${t.articles}_text_hash ON ${t.articles} (text_hash);
    CREATE INDEX ${t.articles}_dup_group ON ${t.articles} (dup_group) WHERE dup_group IS NOT NULL;
    CREATE INDEX ${t.articles}_unchecked ON ${t.articles} (key) WHERE NOT dup_checked;
    CREATE TABLE ${t.chunks} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      article_key bigint NOT NULL REFERENCES ${t.articles} (key) ON DELETE CASCADE,
      paragraph integer NOT NULL,
      start_offset integer NOT NULL,
      end_offset integer NOT NULL,
      text text NOT NULL,
      date_key text,
      source_key text,
      tag_keys text[] NOT NULL DEFAULT '{}',
      tsv tsvector NOT NULL,                  -- title weighted A, text B
      embedding vector(${dims}) NOT NULL      -- L2-normalised
    );
    CREATE INDEX ${t.chunks}_article ON ${t.chunks} (article_key);
    CREATE INDEX ${t.chunks}_date ON ${t.chunks} (date_key);
    CREATE INDEX ${t.chunks}_source ON ${t.chunks} (source_key);
    CREATE INDEX ${t.chunks}_tags ON ${t.chunks} USING gin (tag_keys);
    CREATE INDEX ${t.chunks}_tsv ON ${t.chunks} USING gin (tsv);
    CREATE INDEX ${t.chunks}_hnsw ON ${t.chunks} USING hnsw (embedding vector_cosine_ops) WITH (m = ${Math.trunc(hnsw.M)}, ef_construction = ${Math.trunc(hnsw.efConstruction)});
    -- Vectors inline and uncompressed: TOAST would compress 1.5 KB of floats (pglz, to no gain) and the
    -- scans would decompress them for every distance (57 ms for 4,000 rows before this, a seq scan).
    ALTER TABLE ${t.chunks} ALTER COLUMN embedding SET STORAGE PLAIN;
    CREATE TABLE ${t.folderFiles} (id text PRIMARY KEY, content_hash text NOT NULL);
  `);
}

export async function dropGenerationTables(client: ClientBase, id: number): Promise<void> {
  const t = tablesOf(id);
  await client.query(`DROP TABLE IF EXISTS ${t.chunks}, ${t.articles}, ${t.folderFiles}`);
}
