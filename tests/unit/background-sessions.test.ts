import { describe, expect, it } from 'vitest';
import { BackgroundSessions, type Job, type JobResult, type ModelWorker, passageLane } from '../../src/embed/worker-embedder.ts';
import { hashedEmbedderInfo } from '../helpers/hashed-embedder.ts';
import { pollUntil } from '../helpers/poll.ts';

/** A passage session that answers at once and records what it ran and whether it was closed. */
function recordingWorker(log: string[], name: string): ModelWorker {
  return {
    info: hashedEmbedderInfo(),
    dead: false,
    run: async (job: Job): Promise<JobResult> => {
      log.push(`${name} ${job.kind === 'query' ? job.text : '?'}`);
      return { vectors: new Float32Array(0), modelMs: 0, poolMs: 0 };
    },
    close: async () => {
      log.push(`${name} closed`);
    },
  };
}

const job = (name: string): Job => ({ kind: 'query', text: name });

describe('background passage sessions (a live rebuild at lower CPU priority)', () => {
  it('start on the first batch, serve the batches after it, and close once idle; a later batch starts them again', async () => {
    const log: string[] = [];
    let starts = 0;
    const sessions = new BackgroundSessions(
      async () => {
        starts++;
        return [recordingWorker(log, `w${starts}`)];
      },
      { idleCloseMs: 1 },
    );
    expect(sessions.started).toBe(false);
    await Promise.all([sessions.run(job('a')), sessions.run(job('b'))]);
    // Both batches went to one set of sessions: the second did not start another.
    expect(starts).toBe(1);
    await pollUntil(() => !sessions.started, { what: 'the idle background sessions to close' });
    await pollUntil(() => log.includes('w1 closed'), { what: 'the worker to be closed' });
    await sessions.run(job('c'));
    expect(starts).toBe(2);
    expect(log.slice(0, 3)).toEqual(['w1 a', 'w1 b', 'w1 closed']);
    expect(log[3]).toBe('w2 c');
    await sessions.close();
    expect(log).toContain('w2 closed');
    await expect(sessions.run(job('d'))).rejects.toMatchObject({ code: 'model_unavailable' });
  });

  it('each batch waits for the pace (live requests first) before it runs', async () => {
    const log: string[] = [];
    let release!: () => void;
    let paced = 0;
    const sessions = new BackgroundSessions(async () => [recordingWorker(log, 'w')], {
      idleCloseMs: 60_000,
      pace: () => {
        paced++;
        return new Promise<void>((r) => (release = r));
      },
    });
    const a = sessions.run(job('a'));
    await pollUntil(() => paced === 1, { what: 'the batch to ask for its pace' });
    expect(log).toEqual([]);
    release();
    await a;
    expect(log).toEqual(['w a']);
    await sessions.close();
  });

  it('a start that fails fails its batches and is not kept: the next batch tries again', async () => {
    const log: string[] = [];
    let starts = 0;
    const sessions = new BackgroundSessions(
      async () => {
        starts++;
        if (starts === 1) throw new Error('model file missing');
        return [recordingWorker(log, 'w')];
      },
      { idleCloseMs: 60_000 },
    );
    await expect(sessions.run(job('a'))).rejects.toThrow('model file missing');
    expect(sessions.started).toBe(false);
    await sessions.run(job('b'));
    expect(log).toEqual(['w b']);
    await sessions.close();
    expect(log).toEqual(['w b', 'w closed']);
  });
});

describe('which sessions a passage call runs on', () => {
  it('live calls on the live sessions first; background ones on the background sessions unless they ask for the live ones, then behind live batches', () => {
    expect(passageLane({}, true)).toBe('live');
    expect(passageLane({ liveSessions: true }, true)).toBe('live');
    expect(passageLane({ background: true }, true)).toBe('background sessions');
    // A rebuild's catch-up rounds that stopped shrinking: full priority, but never ahead of a live write's batches.
    expect(passageLane({ background: true, liveSessions: true }, true)).toBe('behind live');
    // QUARRY_REBUILD_NICE=0: no background sessions.
    expect(passageLane({ background: true }, false)).toBe('behind live');
  });
});
