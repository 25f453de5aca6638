import type { Embedder, PassageOptions } from '../embed/embedder.ts';
import { QuarryError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ArticleRecord, GenerationBuilder, IndexStore } from '../store/store.ts';
import { type BuildReport, fillGeneration } from './build-index.ts';
import { type ChunkerSettings, prepareArticles, type SourcedArticle } from './prepare.ts';
import type { WriteQueue } from './write-queue.ts';

export interface RebuildStatus {
  state: 'idle' | 'running' | 'succeeded' | 'failed';
  startedAt: string | null;
  finishedAt: string | null;
  articlesDone: number;
  articlesTotal: number;
  chunksDone: number;
  error: string | null;
  report: BuildReport | null;
  /**
   * How the writes made during the build were replayed into it: rounds while writes went on, then rounds with
   * them held in the write queue (articles are counted once per round they were replayed in). Null until then.
   */
  catchUp: CatchUp | null;
}

export interface CatchUp {
  openRounds: number;
  openArticles: number;
  /** Open rounds that ran on the live passage sessions at full priority because the one before had not halved (see rebuild()). */
  foregroundRounds: number;
  heldRounds: number;
  heldArticles: number;
}

/**
 * Catch-up rounds before a rebuild gives up publishing. Each round replays only the writes since the last one, so
 * rounds shrink; a fleet writing faster than one round can replay fails the rebuild (retried by the operator).
 */
const MAX_CATCH_UP_ROUNDS = 10;
/**
 * Catch-up rounds run before the write queue is taken, while writes go on: each replays what came during the one
 * before, so the rounds shrink while the rebuild replays faster than clients write. Once a round replays at most
 * SMALL_CATCH_UP articles (or after these many rounds) the last one runs inside the queue, and the writes held
 * there wait for a handful of articles instead of all those written during the build (the soak's rebuild: ~200
 * articles re-embedded with every write held, a write p99 of 11 s).
 */
const MAX_OPEN_CATCH_UP_ROUNDS = 5;
const SMALL_CATCH_UP = 8;

const idle = (): RebuildStatus => ({
  state: 'idle',
  startedAt: null,
  finishedAt: null,
  articlesDone: 0,
  articlesTotal: 0,
  chunksDone: 0,
  error: null,
  report: null,
  catchUp: null,
});

export const storedToSourced = (a: ArticleRecord): SourcedArticle => {
  const { origin, contentHash: _h, updatedAt: _u, ...article } = a;
  return { article, origin };
};

/** Every stored article, with its origin (for a rebuild after a model or chunker change). */
export async function readStoredArticles(store: IndexStore): Promise<SourcedArticle[]> {
  const out: SourcedArticle[] = [];
  for await (const a of store.articles()) out.push(storedToSourced(a));
  return out;
}

/**
 * Re-chunks and re-embeds every stored article into a new generation in the background, then swaps it in.
 * Searches use the old generation until the swap; writes made meanwhile go to the old one and are replayed
 * into the new one (inside the write queue, so none can slip in between) just before the swap.
 */
export class Rebuilder {
  private current: RebuildStatus = idle();
  private run: Promise<void> | null = null;
  private stopping = false;

  constructor(
    private readonly deps: {
      store: IndexStore;
      embedder: () => Embedder;
      chunker: ChunkerSettings;
      queue: WriteQueue;
      logger: Logger;
      /** Awaited between slices of the rebuild's work on this thread while writes go on (see BuildRequest.pace). */
      pace?: () => Promise<void>;
    },
  ) {}

  get status(): RebuildStatus {
    return { ...this.current };
  }

  get running(): boolean {
    return this.current.state === 'running';
  }

  /**
   * Starts a rebuild: the new generation is begun and the stored articles are read before this resolves (so
   * the status counts them), the embedding runs in the background.
   */
  async start(): Promise<RebuildStatus> {
    if (this.stopping) throw new QuarryError('overloaded', 'the index is closing; retry against the restarted server');
    if (this.running) throw new QuarryError('conflict', 'a rebuild is already running');
    this.current = { ...idle(), state: 'running', startedAt: new Date().toISOString() };
    const started = performance.now();
    let builder: GenerationBuilder;
    let articles: SourcedArticle[];
    try {
      builder = await this.deps.store.beginGeneration({ source: this.deps.store.manifest.source });
      articles = await readStoredArticles(this.deps.store).catch(async (e: unknown) => {
        await builder.discard();
        throw e;
      });
    } catch (e) {
      this.fail(e as Error);
      throw e;
    }
    this.current.articlesTotal = articles.length;
    this.run = this.rebuild(builder, articles, started).catch((e: Error) => this.fail(e));
    return this.status;
  }

  private fail(e: Error): void {
    this.deps.logger.error({ err: e }, 'rebuild failed; the previous index is still in use');
    this.current = { ...this.current, state: 'failed', finishedAt: new Date().toISOString(), error: e.message };
  }

  /** Stops a running rebuild at its next step (its half-built generation is thrown away) and waits for it. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.run;
  }

  private abandonIfStopping = (): void => {
    if (this.stopping) throw new QuarryError('conflict', 'the index was closed during the rebuild; the previous index stays in use');
  };

  /**
   * Replays into the new generation the articles written or deleted in the current one since the last round
   * (their stored state now: a write that lands after the read is reported again next round); returns how many.
   */
  private async replay(builder: GenerationBuilder, embedder: Embedder, passage: PassageOptions): Promise<number> {
    const { store, chunker } = this.deps;
    const touched = await builder.changedSince();
    if (touched.length === 0) return 0;
    const current = await Promise.all(touched.map((id) => store.getArticle(id)));
    const upserts = current.filter((a): a is ArticleRecord => a !== null).map(storedToSourced);
    // Rounds beside live writes give way to searches like the build before them; a held round (writes waiting) does not.
    const background = passage.background === true;
    const pace = background ? this.deps.pace : undefined;
    await builder.write(await prepareArticles(upserts, embedder, chunker, undefined, passage, pace), { background, pace });
    const upserted = new Set(upserts.map((u) => u.article.id));
    await builder.delete(touched.filter((id) => !upserted.has(id)));
    return touched.length;
  }

  private async rebuild(builder: GenerationBuilder, articles: SourcedArticle[], started: number): Promise<void> {
    const { store, chunker, queue, logger } = this.deps;
    const embedder = this.deps.embedder();
    let published = false;
    try {
      await fillGeneration(builder, embedder, chunker, {
        articles,
        // Keep what the index tracks (a seeds folder): a rebuild re-embeds the same articles, and a start after it
        // must still sync that folder.
        source: store.manifest.source,
        onProgress: (p) => Object.assign(this.current, { articlesDone: p.articlesDone, chunksDone: p.chunksDone }),
        checkpoint: this.abandonIfStopping,
        background: true,
        pace: this.deps.pace,
      });
      const catchUp: CatchUp = { openRounds: 0, openArticles: 0, foregroundRounds: 0, heldRounds: 0, heldArticles: 0 };
      this.current.catchUp = catchUp;
      // Open rounds run behind live writes: on the background sessions, until a round fails to halve (below).
      let passage: PassageOptions = { background: true };
      let previous = Number.POSITIVE_INFINITY;
      while (catchUp.openRounds < MAX_OPEN_CATCH_UP_ROUNDS) {
        this.abandonIfStopping();
        catchUp.openRounds++;
        if (passage.liveSessions) catchUp.foregroundRounds++;
        const replayed = await this.replay(builder, embedder, passage);
        catchUp.openArticles += replayed;
        if (replayed <= SMALL_CATCH_UP) break;
        // A round that did not halve the one before: clients write about as fast as a background round replays, and
        // the rounds will not shrink (the soak at batch 8: 912 articles in five rounds, then 159 replayed with every
        // write held, a write p99 of 8.8 s). The next rounds run on the live passage sessions at full priority, so
        // they shrink while writes go on — behind the live writes' batches: as live batches, a round's hundreds
        // queued at once held a write 8.4 s in the next soak.
        if (replayed > previous / 2) passage = { background: true, liveSessions: true };
        previous = replayed;
      }
      const counts = await queue.run(
        async () => {
          // This process's writes wait in the queue meanwhile; other processes' writes (PostgreSQL) may still
          // land between the catch-up and the switch: the publish refuses then, and the next round replays them.
          for (let round = 1; ; round++) {
            this.abandonIfStopping();
            catchUp.heldRounds = round;
            catchUp.heldArticles += await this.replay(builder, embedder, {});
            try {
              // Seed articles deleted through the API are in no stored article: keep the record that says so.
              const result = await builder.publish({ folderFiles: await store.folderFiles(), buildSeconds: (performance.now() - started) / 1000 });
              published = true;
              logger.info({ ...result, ...catchUp }, 'rebuild swapped in');
              return result;
            } catch (e) {
              const lateWrites = e instanceof QuarryError && e.details?.lateWrites === true;
              if (!lateWrites || round >= MAX_CATCH_UP_ROUNDS) throw e;
              logger.info({ round }, 'writes from another process landed during the catch-up: catching up again');
            }
          }
        },
        { bypassLimit: true },
      );
      const seconds = (performance.now() - started) / 1000;
      const report: BuildReport = { ...counts, seconds, chunksPerSecond: counts.chunks / Math.max(seconds, 1e-9) };
      this.current = {
        ...this.current,
        state: 'succeeded',
        finishedAt: new Date().toISOString(),
        report,
        articlesDone: report.articles,
        chunksDone: report.chunks,
      };
    } catch (e) {
      if (!published) await builder.discard();
      throw e;
    }
  }
}
