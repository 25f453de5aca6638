/**
 * Whether live requests are being held up now, so that background work can give way. A live rebuild embeds on
 * threads at the lowest CPU priority, but the kernel's priority only decides who waits for a busy core: a rebuild
 * batch running on the other vCPU still slowed the main thread (shared caches and memory bandwidth, or the host's
 * sharing of the vCPUs), and in the soak searches were refused past their deadline during a rebuild and not before
 * (docs/history/soak.md). The rebuild asks {@link LivePressure.calm} before each batch and waits while any
 * source reports pressure.
 */
export class LivePressure {
  private readonly sources: Array<() => boolean> = [];

  /** Adds a source: true while the requests it stands for wait longer than they should (a search queue past its target). */
  watch(source: () => boolean): void {
    this.sources.push(source);
  }

  get pressed(): boolean {
    return this.sources.some((s) => s());
  }

  /**
   * Resolves once no source reports pressure, checking every `pollMs`, and after `maxWaitMs` in any case: under
   * a load that never lets up, background work is slowed to a batch per `maxWaitMs`, never stopped.
   */
  async calm(opts: { pollMs?: number; maxWaitMs?: number } = {}): Promise<void> {
    const pollMs = opts.pollMs ?? 25;
    const maxWaitMs = opts.maxWaitMs ?? 2000;
    const started = performance.now();
    while (this.pressed && performance.now() - started < maxWaitMs) await new Promise((r) => setTimeout(r, pollMs));
  }
}
