/** Lets queued I/O callbacks and timers run before the next piece of a long synchronous job. */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));
