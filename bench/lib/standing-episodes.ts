import { round } from './stats.ts';

/**
 * The search queue's standing episodes in a stretch of a `quarry serve` child's output (server/overload.ts logs each
 * start and end at warn, as JSON): each line's fields without pino's time and level, with `atMs`, when it was logged,
 * in ms from `origin` (epoch ms). A start has `cause`; an end has `forMs`, `refused` and `why`.
 */
export function standingEpisodesIn(output: string, origin: number): Array<{ atMs: number } & Record<string, unknown>> {
  const out: Array<{ atMs: number } & Record<string, unknown>> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes('"search queue ')) continue;
    try {
      const { time, level: _level, ...rest } = JSON.parse(line) as Record<string, unknown>;
      out.push({ atMs: round(Number(time) - origin, 0), ...rest });
    } catch {}
  }
  return out;
}

/** The search queue's standing episodes in one row (standingEpisodesIn), counted. */
export interface Episodes {
  began: number;
  ended: number;
  /** Of which, by what ended them (idle: a slot sat free; drained: arrival order; arrivals: the stay-ratio review, before 2026-12-02 09:00). */
  endedBy: Record<string, number>;
  /** Times the queue overflowed (an episode's start, or again within one after its slots came back). */
  overflow: number;
  /** Of the overflows, by the rule that found them (interval, quick, behind; logged since 2026-12-02 12:50). */
  overflowBy: Record<string, number>;
  /** Times the stay-ratio review gave the slots back within an episode (it goes on standing). */
  fits: number;
  standingMs: number;
  /** When each began, in seconds from the row's start (the log's timestamps). */
  beganAtS: number[];
}

export function countEpisodes(output: string, rowStartedAt: number): Episodes {
  const e: Episodes = { began: 0, ended: 0, endedBy: {}, overflow: 0, overflowBy: {}, fits: 0, standingMs: 0, beganAtS: [] };
  let standing = false;
  for (const line of standingEpisodesIn(output, rowStartedAt)) {
    if (line.forMs !== undefined) {
      standing = false;
      e.ended++;
      const why = String(line.why ?? 'unknown');
      e.endedBy[why] = (e.endedBy[why] ?? 0) + 1;
      e.standingMs += Number(line.forMs);
    } else if (line.cause === 'fits') {
      e.fits++;
    } else if (line.cause !== undefined) {
      if (line.cause === 'overflow') {
        e.overflow++;
        const by = String(line.by ?? 'unknown');
        e.overflowBy[by] = (e.overflowBy[by] ?? 0) + 1;
      }
      // An overflow within a standing episode (after its slots came back) is not a new episode.
      if (!standing) {
        standing = true;
        e.began++;
        e.beganAtS.push(round(line.atMs / 1000, 1));
      }
    }
  }
  return e;
}
