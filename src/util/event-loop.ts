/**
 * The rest of a request's work runs after the I/O callbacks of this turn of the event loop (setImmediate: this
 * turn's check phase). For what a client waits on: a search computes in such turns (search/search.ts).
 */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The next slice of background work (a rebuild's writes and chunking, a catch-up's replay, loading a graph) runs in
 * the next turn, behind this turn's I/O callbacks and the searches they continue (a timer: the next turn's timers
 * phase, before its poll). With setImmediate a slice queued in one check phase runs in the next one ahead of the
 * search pieces that turn's I/O queued (immediates run in order), so every search waited a slice at each of its
 * turns: during a live rebuild its p99 rose to 320 ms and the queue refused 15 searches in the soak.
 */
export const yieldToForeground = (): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, 0));
