import type { Generation } from './generation.ts';

/** Below this many points a graph is cheap to search whatever it holds: compaction is not worth it. */
const MIN_POINTS_TO_COMPACT = 1000;

/**
 * When the HNSW graph needs work after a write. Deleted points stay in an hnswlib graph (marked, still
 * visited by searches) until it is rebuilt, so past `compactDeletedRatio` of them the graph is rebuilt from
 * SQLite's vectors (beside the live one: compaction.ts); and every `checkpointEvery` chunk changes it is saved,
 * which bounds the replay after a crash.
 */
export class MaintenancePolicy {
  constructor(
    private readonly checkpointEvery: number,
    private readonly compactDeletedRatio: number,
  ) {}

  compactionDue(gen: Generation): boolean {
    const points = gen.vectors.points;
    return points >= MIN_POINTS_TO_COMPACT && gen.deletedPoints / points > this.compactDeletedRatio;
  }

  checkpointDue(gen: Generation): boolean {
    return gen.changesSinceCheckpoint >= this.checkpointEvery;
  }
}
