import type { Embedder } from '../embed/embedder.ts';
import type { Manifest } from '../store/manifest.ts';
import type { GenerationBuilder, IndexStore, PreparedArticle } from '../store/store.ts';
import type { StageProfile } from '../util/stage-profile.ts';
import { folderRecordOf } from './folder-origin.ts';
import { type ChunkerSettings, chunkArticles, embedChunked, type SourcedArticle } from './prepare.ts';

export interface BuildProgress {
  articlesDone: number;
  articlesTotal: number;
  chunksDone: number;
}

export interface BuildReport {
  articles: number;
  chunks: number;
  seconds: number;
  chunksPerSecond: number;
}

export interface BuildRequest {
  articles: SourcedArticle[];
  /** Where the articles came from, recorded in the manifest (a seeds folder is synced on later starts). */
  source: Manifest['source'];
  /** The seeds-folder record to keep (a rebuild of an existing index); by default, the folder articles built. */
  folderFiles?: ReadonlyMap<string, string>;
  onProgress?: (p: BuildProgress) => void;
  /** Called between groups of articles: throws to abandon the build (the server is closing). */
  checkpoint?: () => void;
  /**
   * A rebuild beside live traffic: its embedding yields to live writes (and, with QUARRY_REBUILD_NICE, runs on
   * sessions of lower CPU priority), and its rows are stored in smaller slices so searches wait less for the
   * main thread. Default false: a build nothing else waits for (first start, `rebuild-index`) at full speed.
   */
  background?: boolean;
  /**
   * Awaited between slices of a background build's work on this thread (chunking, storing), as its embedding
   * awaits it between batches: a live rebuild waits there while searches are held up (util/live-pressure.ts).
   */
  pace?: () => Promise<void>;
  /** Stage timers (bench/rebuild.ts); nothing is measured without one. */
  profile?: StageProfile;
  /**
   * false: one group at a time, each stage after the previous one (the profile's serial run: each stage's CPU
   * time is then its own). Default true: the pipeline below.
   */
  overlap?: boolean;
}

/** Articles embedded together: big enough for length-sorted batches to pad little, small enough to stream. */
const GROUP_ARTICLES = 256;
/**
 * The same beside live traffic: the build then runs for minutes, not seconds, and a smaller group keeps less of it
 * on the heap (a major GC on the main thread holds every search for its length).
 */
const BACKGROUND_GROUP_ARTICLES = 64;
/**
 * Groups chunked and handed to the model before the oldest is stored: while group N is written (SQLite, FTS5,
 * HNSW on this thread), group N+1 is already queued for the sessions, so they never wait for the store; one
 * more would only hold more vectors in memory.
 */
const GROUPS_IN_FLIGHT = 2;

/**
 * Chunks, embeds and stores articles into a new generation of `store`, without publishing it: the caller
 * replays live writes into it (a rebuild) or publishes it straight away (a first build). A bounded pipeline:
 * chunking and tokenising (this thread) run ahead of the model (worker sessions), and groups are stored in order.
 */
export async function fillGeneration(builder: GenerationBuilder, embedder: Embedder, chunker: ChunkerSettings, req: BuildRequest): Promise<number> {
  const { profile } = req;
  const total = req.articles.length;
  const depth = req.overlap === false ? 1 : GROUPS_IN_FLIGHT;
  let chunks = 0;
  let articlesDone = 0;
  // Progress counts chunks as they are embedded (batch by batch) and articles as they are stored.
  let embedded = 0;
  const inFlight: Array<{ size: number; prepared: Promise<PreparedArticle[]> }> = [];
  const background = req.background === true;
  const pace = background ? req.pace : undefined;

  const storeOldest = async (): Promise<void> => {
    const { size, prepared } = inFlight.shift()!;
    const articles = await prepared;
    const started = performance.now();
    const cpu = profile ? process.cpuUsage() : undefined;
    await builder.write(articles, { profile, background, pace });
    if (profile) {
      const used = process.cpuUsage(cpu);
      profile.add('store', performance.now() - started, (used.user + used.system) / 1000);
    }
    chunks += articles.reduce((n, p) => n + p.chunks.length, 0);
    articlesDone += size;
    req.onProgress?.({ articlesDone, articlesTotal: total, chunksDone: Math.max(embedded, chunks) });
  };

  const groupSize = background ? BACKGROUND_GROUP_ARTICLES : GROUP_ARTICLES;
  try {
    for (let i = 0; i < total; i += groupSize) {
      req.checkpoint?.();
      const group = req.articles.slice(i, i + groupSize);
      const chunked = await chunkArticles(group, embedder, chunker, { profile, pace });
      const started = performance.now();
      const cpu = profile ? process.cpuUsage() : undefined;
      let groupDone = 0;
      // Background: live writes during a rebuild are embedded before the groups queued here (worker-embedder.ts).
      const prepared = embedChunked(
        chunked,
        embedder,
        (p) => {
          embedded += p.done - groupDone;
          groupDone = p.done;
          req.onProgress?.({ articlesDone, articlesTotal: total, chunksDone: embedded });
        },
        { background },
      ).then((p) => {
        if (profile) {
          const used = process.cpuUsage(cpu);
          profile.add('embed', performance.now() - started, (used.user + used.system) / 1000);
        }
        return p;
      });
      // Awaited in order below; marked handled now so a failure while an older group is awaited is not unhandled.
      prepared.catch(() => {});
      inFlight.push({ size: group.length, prepared });
      if (inFlight.length >= depth) await storeOldest();
    }
    while (inFlight.length > 0) await storeOldest();
  } catch (e) {
    // Nothing may still be embedding for a generation about to be discarded (or an embedder about to close).
    await Promise.allSettled(inFlight.map((f) => f.prepared));
    throw e;
  }
  return chunks;
}

/** Builds a complete new generation from `req.articles` and makes it current (first start, `rebuild-index`). */
export async function buildIndex(store: IndexStore, embedder: Embedder, chunker: ChunkerSettings, req: BuildRequest): Promise<BuildReport> {
  const started = performance.now();
  const builder = await store.beginGeneration({ source: req.source });
  try {
    await fillGeneration(builder, embedder, chunker, req);
    const publishStarted = performance.now();
    const counts = await builder.publish({ folderFiles: req.folderFiles ?? folderRecordOf(req.articles), buildSeconds: (performance.now() - started) / 1000 });
    req.profile?.add('publish', performance.now() - publishStarted);
    const seconds = (performance.now() - started) / 1000;
    return { ...counts, seconds, chunksPerSecond: counts.chunks / Math.max(seconds, 1e-9) };
  } catch (e) {
    await builder.discard();
    throw e;
  }
}
