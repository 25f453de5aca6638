/**
 * `work`, or `error()` once `ms` have passed, whichever comes first. The work is not cancelled (nothing in a
 * search can be interrupted half way); its late result or failure is dropped.
 */
export function withTimeout<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/**
 * `work`, or the abort reason of `signal` if it aborts before `committed()` turns true: a write abandoned
 * while it waits or embeds answers at once (and stores nothing: it checks the signal before committing), one
 * already committing is waited for, so no client is told "failed" about a write that was stored.
 */
export function untilCommitted<T>(work: Promise<T>, signal: AbortSignal, committed: () => boolean): Promise<T> {
  work.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      if (!committed()) reject(signal.reason);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
