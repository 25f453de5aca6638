import type { Article } from '../corpus/article.ts';
import type { Chunk } from '../corpus/chunk.ts';
import type { StageProfile } from '../util/stage-profile.ts';
import type { Manifest } from './manifest.ts';

/*
 * The storage boundary. Everything above it (search, fusion, grouping, evidence, the write queue, rebuilds)
 * is shared by every backend; a backend stores articles with their chunk vectors and answers candidate and
 * look-up queries. Implementations: the embedded SQLite + FTS5 + hnswlib backend (store/sqlite/), and the
 * PostgreSQL + pgvector one shared by any number of processes (store/postgres/).
 *
 * The contract:
 * - A write (`IndexStore.write`) is atomic: all of its operations become visible together or not at all.
 *   Its promise resolves only once the write is durable (committed and synced); a crash after that loses
 *   nothing of it. Writes are applied in the order their calls were made.
 * - A reader (`IndexStore.reader`) sees one generation and one committed state of it: never half of a write.
 *   Chunk ids and article keys are meaningful only inside the generation they came from; a reader keeps its
 *   generation usable until it is released, even when a rebuild swaps in a new one meanwhile. A reader may or
 *   may not see writes committed after it was taken (SQLite: it does; the ids it holds stay valid).
 * - A rebuild fills a new generation (`beginGeneration`) while the current one keeps serving reads and
 *   writes; `publish` swaps it in atomically. Writes made to the current generation during the build are
 *   reported by `changedSince` so the caller can replay them into the new one before publishing.
 * - Scores are higher-is-better in every candidate list; ranks are 1-based.
 * - Filters are resolved by the reader (`scope`) and applied inside retrieval: a candidate query with a scope
 *   returns the best chunks among the scope's articles, as many as exist up to its limit — never what is left
 *   of an unfiltered list. How (an exact scan, a filtered graph search, a join) is the backend's choice, and
 *   `CandidateList.path` names it.
 * - Duplicate groups are the backend's to keep, by the definition in corpus/duplicates.ts: once a write
 *   resolves, each article it stored is grouped with the stored articles that are the same story (exact
 *   normalised text, or near-duplicate paragraphs by stored vectors). Groups are transitive; a delete leaves
 *   the rest of a group grouped; a replaced article is grouped afresh. Grouping may lag a crash, never a
 *   write that resolved: articles not yet grouped are grouped when a writer next opens the index.
 * - A snapshot (`IndexStore.snapshot`) is a consistent copy of the current generation taken while reads and
 *   writes go on: every write acknowledged before the call began is in it, and no write is half in it. It is
 *   written to a folder that did not exist (it appears whole or not at all) and is restored by the backend's
 *   restore function (not a method: restoring replaces the index a store would hold, so it runs with no store
 *   open — SQLite: `restoreSnapshot` in sqlite/snapshot.ts, chosen in open-store.ts). The restore refuses an
 *   index held by a running process, and reports (never silently accepts) a snapshot made with another model
 *   or chunker. SQLite copies one read transaction of its database (VACUUM INTO) plus the HNSW checkpoint at
 *   or before it, whose later changes the restored index replays from its change log on open. A PostgreSQL
 *   backend will delegate to pg_dump (or point to its base backups) and say so in its report.
 */

/** An article as stored: the article plus where it came from and when it was written. */
export interface ArticleRecord extends Article {
  /** "folder:<id>", "api", "cli": a seeds sync only touches the articles its folder owns. */
  origin: string;
  contentHash: string;
  updatedAt: string;
}

export interface ArticleMeta {
  id: string;
  title: string;
  date: string | null;
  source: string | null;
  url: string | null;
  tags: string[];
}

export interface ArticleSummary {
  id: string;
  origin: string;
  contentHash: string;
}

export interface ChunkWithVector extends Chunk {
  /** L2-normalised. */
  vector: Float32Array;
}

/** An article ready to store: chunked and embedded. */
export interface PreparedArticle {
  article: Article;
  origin: string;
  chunks: ChunkWithVector[];
}

export type WriteOp = { op: 'upsert'; article: PreparedArticle } | { op: 'delete'; id: string };

export interface WriteOutcome {
  id: string;
  /** `absent`: a delete of an article that does not exist (nothing changed). */
  result: 'inserted' | 'replaced' | 'deleted' | 'absent';
  /** Chunks the article has after the write (0 after a delete). */
  chunks: number;
}

/** One retriever's candidate list entry. */
export interface RankedChunk {
  chunkId: number;
  /** 1-based. */
  rank: number;
  /** Higher is better: cosine similarity for vectors, BM25 (or the backend's text rank) for words. */
  score: number;
}

/** Where a chunk sits in its article. */
export interface ChunkText {
  paragraph: number;
  /** Character offsets into the article text (paragraphs joined by a blank line). */
  start: number;
  end: number;
  text: string;
}

export interface LexicalQuery {
  /** Query terms as the user typed them, lower-cased, stop words already removed (search/query-terms.ts). */
  terms: string[];
  limit: number;
  titleWeight: number;
  textWeight: number;
  /** Only chunks of articles in this scope (from the same reader's {@link StoreReader.scope}). */
  scope?: FilterScope;
}

export interface VectorQuery {
  vector: Float32Array;
  limit: number;
  /** HNSW search breadth for this query; the store's default when left out. */
  efSearch?: number;
  /** Only chunks of articles in this scope (from the same reader's {@link StoreReader.scope}). */
  scope?: FilterScope;
}

/**
 * Which articles a search may return. Every field narrows; an empty or absent field does not. Values are
 * compared as {@link metadataKey}s (case and Unicode form ignored); dates are calendar dates YYYY-MM-DD,
 * inclusive, compared with each article's date as written (its first 10 characters: see `dateKey`), and an
 * article without a date never matches a date bound.
 */
export interface SearchFilter {
  /** Any of these sources. */
  sources?: string[];
  /** Any of these tags. */
  tags?: string[];
  from?: string;
  to?: string;
}

/**
 * The articles a filter (and an exclusion list) lets through, resolved once per search by
 * {@link StoreReader.scope} and passed to the candidate queries, which then return the best chunks among
 * these articles only — never a remainder of an unfiltered list. Opaque beyond its counts.
 */
export interface FilterScope {
  /** Articles in scope. */
  readonly articles: number;
  /** Their chunks. */
  readonly chunks: number;
  /** chunks / live chunks (0 when the index is empty). */
  readonly selectivity: number;
  /** Whether an article (by key) is in scope. */
  has(articleKey: number): boolean;
}

/** How the dense candidates were found: the plain graph, the graph with a filter, or every matching vector. */
export type DensePath = 'hnsw' | 'hnsw-filtered' | 'exact-scan';
/** How the lexical candidates were found (PostgreSQL's tsvector search reports these names too). */
export type LexicalPath = 'fts5' | 'fts5-filtered';

export interface CandidateList<P extends string> {
  /** Best first. */
  chunks: RankedChunk[];
  path: P;
}

/** A character range [start, end) in UTF-16 code units (JavaScript string offsets). */
export interface TextRange {
  start: number;
  end: number;
}

/** A member of a duplicate group, for listing the copies of a story. */
export interface DuplicateMember {
  key: number;
  id: string;
  title: string;
  source: string | null;
  date: string | null;
}

/** A consistent view of one generation for the length of one search. */
export interface StoreReader {
  /** Opaque name of the generation this reader sees. */
  readonly generation: string;
  /** How that generation was built (model, chunker, HNSW parameters, build time). */
  readonly manifest: Manifest;
  /** Live articles and chunks. */
  counts(): { articles: number; chunks: number };
  /**
   * The articles matching `filter`, minus `exclude` (article keys). The best k among them is what a filtered
   * search returns; a search without a filter passes no scope at all.
   */
  scope(filter: SearchFilter, exclude?: readonly number[]): Promise<FilterScope>;
  /** BM25 (or the backend's text rank) candidates, within `q.scope` when given. */
  lexicalCandidates(q: LexicalQuery): Promise<CandidateList<LexicalPath>>;
  /**
   * Nearest chunks by cosine, within `q.scope` when given. Within a scope the list holds
   * min(limit, scope.chunks) chunks: a filter that matches few chunks still yields all of them.
   */
  vectorCandidates(q: VectorQuery): Promise<CandidateList<DensePath>>;
  /** The article key of each chunk id that exists (for grouping). */
  articlesOfChunks(chunkIds: number[]): Promise<Map<number, number>>;
  chunkTexts(chunkIds: number[]): Promise<Map<number, ChunkText>>;
  articleMetas(articleKeys: number[]): Promise<Map<number, ArticleMeta>>;
  /** Which of `terms` each chunk matches, stemmed as the lexical index stems them. */
  matchedTerms(terms: string[], chunkIds: number[]): Promise<Map<number, string[]>>;
  /**
   * Where in each chunk's text the lexical index matched any of `terms` (stemmed as it stems them), as
   * sorted, non-overlapping ranges into the chunk text; a chunk that matches nothing maps to [].
   */
  highlights(terms: string[], chunkIds: number[]): Promise<Map<number, TextRange[]>>;
  /**
   * The duplicate group of each article that has one (the same story stored more than once: see
   * search/duplicates.ts); an article alone in its group is left out. Group ids are opaque.
   */
  duplicateGroups(articleKeys: number[]): Promise<Map<number, number>>;
  /** Every member of each group, oldest date first (undated last), then by id. */
  groupMembers(groupIds: number[]): Promise<Map<number, DuplicateMember[]>>;
  /** The key of an article by id, or null. */
  articleKey(id: string): Promise<number | null>;
  /** An article's stored chunk vectors (L2-normalised), in paragraph order. */
  articleVectors(articleKey: number): Promise<Array<{ chunkId: number; vector: Float32Array }>>;
  /** The newest article date in the generation (YYYY-MM-DD, see `dateKey`), or null when no article has one. */
  newestDate(): Promise<string | null>;
  /** Must be called once the search is done: an old generation is closed only after its last reader. */
  release(): void;
}

export interface StoreStats {
  backend: 'sqlite' | 'postgres';
  articles: number;
  chunks: number;
  /** Vectors still in the ANN index but deleted (waiting for compaction). */
  deleted: number;
  hnsw: { M: number; efConstruction: number; efSearch: number; points: number };
  disk: { sqliteBytes: number; hnswBytes: number; totalBytes: number };
  lastCheckpoint: string | null;
  changesSinceCheckpoint: number;
  /** The generation's directory (PostgreSQL: the database URL without its password, and the generation). */
  dir: string;
  /** PostgreSQL only: the server and pgvector versions, the generation in use and the read replica, if any. */
  database?: { server: string; pgvector: string; generation: number; readReplica: string | null };
}

export interface IntegrityReport {
  ok: boolean;
  /** The database's own check: "ok" or its first findings. */
  sqlite: string;
  foreignKeyViolations: number;
  articles: number;
  chunks: number;
  ftsRows: number;
  articlesWithoutChunks: number;
  hnsw: {
    /** Points in the graph, marked-deleted ones included. */
    points: number;
    /** Points not marked deleted: must be exactly the chunk ids. */
    live: number;
    /** Chunks with no live point. */
    missing: number;
    /** Live points with no chunk (a deleted article still searchable). */
    extra: number;
    /** Live points whose vector differs from the chunk's stored vector. */
    mismatched: number;
  };
  /** One line per finding; empty when ok. */
  problems: string[];
}

/** What `IndexStore.snapshot` wrote. */
export interface SnapshotReport {
  /** The snapshot's folder. */
  dir: string;
  createdAt: string;
  articles: number;
  chunks: number;
  /** The store's change sequence number the copy is consistent at: every write committed up to it is in it. */
  seq: number;
  files: Array<{ name: string; bytes: number; sha256: string }>;
  bytes: number;
  seconds: number;
  /** How long writes were held back to take the snapshot (the copy itself runs beside them). */
  writesHeldMs: number;
  /** What only this backend reports (SQLite: the HNSW checkpoint copied and the changes a restore replays). */
  details: Record<string, string | number | null>;
}

/** What a restore installed. */
export interface RestoreReport {
  /** The index folder the snapshot now is the current index of. */
  indexDir: string;
  articles: number;
  chunks: number;
  seq: number;
  createdAt: string;
  /** Why the snapshot cannot be searched with the current model or chunker (a rebuild is needed), or null. */
  incompatibility: string | null;
  seconds: number;
}

/** What a new generation records about how it was made (the rest of the manifest comes from the store). */
export interface GenerationOrigin {
  source: Manifest['source'];
}

export interface BuildCounts {
  articles: number;
  chunks: number;
}

/** A generation being built. Nothing of it is visible to readers until `publish`. */
export interface GenerationBuilder {
  /**
   * Stores prepared articles (bulk: durable only once published). Nobody reads a generation being built, so a
   * backend may store them in several steps and yield between them. `profile` times the backend's stages;
   * `background` (a rebuild beside live searches) asks for smaller steps; `pace` is awaited between steps (a live
   * rebuild waits there while searches are held up).
   */
  write(articles: PreparedArticle[], opts?: { profile?: StageProfile; background?: boolean; pace?: () => Promise<void> }): Promise<void>;
  /**
   * Ids of articles written or deleted in the current generation since the last call (the first call: since this
   * builder began), to replay into this one before publishing: each call moves the builder's mark on, so rounds
   * of catch-up replay only what came since the round before. Empty for a first build.
   */
  changedSince(): Promise<string[]>;
  /** Deletes articles from the generation being built (a delete replayed from the current one). */
  delete(ids: string[]): Promise<void>;
  /**
   * Makes the new generation durable and current. `folderFiles` is the seeds-folder record it keeps. A backend
   * other processes write to may refuse with `conflict` and `details.lateWrites` when a write landed after the
   * last changedSince(); nothing is changed then, and the caller replays changedSince() and publishes again.
   */
  publish(opts: { folderFiles: ReadonlyMap<string, string>; buildSeconds: number }): Promise<BuildCounts>;
  /** Throws the half-built generation away (the current one is untouched). */
  discard(): Promise<void>;
}

/** One index: the current generation of articles, chunks and vectors, and the way to build the next one. */
export interface IndexStore {
  readonly backend: StoreStats['backend'];
  /** False when there is no generation yet (a first build is needed). */
  readonly hasIndex: boolean;
  /** The current generation's manifest; throws `index_missing` when there is none. */
  readonly manifest: Manifest;
  /**
   * Why the current generation cannot be searched or written with the model and chunker this store was opened
   * with (it must be rebuilt from its stored articles), or null.
   */
  readonly incompatibility: string | null;
  /** Throws `index_missing` or `index_incompatible` unless the store can be searched. */
  reader(): StoreReader;
  write(ops: WriteOp[]): Promise<WriteOutcome[]>;
  getArticle(id: string): Promise<ArticleRecord | null>;
  listArticles(): Promise<ArticleSummary[]>;
  /** Every stored article (readable even when incompatible: a rebuild re-embeds them). */
  articles(): AsyncIterable<ArticleRecord>;
  /** Seeds-folder articles as last applied to the index, id -> content hash (see core/seeds-sync.ts). */
  folderFiles(): Promise<Map<string, string>>;
  setFolderFiles(files: ReadonlyMap<string, string>): Promise<void>;
  stats(): Promise<StoreStats>;
  /** A full consistency check (O(n): for `quarry check` and tests, not per request). */
  checkIntegrity(): Promise<IntegrityReport>;
  /** Throws when the store cannot answer (database closed or unreachable). */
  ping(): Promise<void>;
  /**
   * Writes a consistent copy of the current generation into `dir` (which must not exist, or be an empty
   * folder) while reads and writes go on; see the contract above. Works on an index opened read-only or made
   * with another model too: a backup needs no search.
   */
  snapshot(dir: string): Promise<SnapshotReport>;
  beginGeneration(origin: GenerationOrigin): Promise<GenerationBuilder>;
  /** Makes everything durable in its final form (SQLite: the HNSW checkpoint) and releases the index. */
  close(): Promise<void>;
}
