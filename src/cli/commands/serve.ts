import type { Command } from 'commander';
import type { CommonFlags } from '../context.ts';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('build the index from seeds/ if needed, then serve the search page and the JSON API')
    .option('--port <port>', 'port to listen on (default 3000, or PORT)')
    .option('--host <host>', 'address to bind (default 127.0.0.1)')
    .action(async (flags: CommonFlags & { port?: string; host?: string }, cmd: Command) => {
      const [
        { configFrom },
        { openOrBuild },
        { createEmbedder, createLogger },
        { createApp },
        { listen },
        { buildProgressBar },
        { Lifecycle },
        { LivePressure },
      ] = await Promise.all([
        import('../context.ts'),
        import('../../core/open-or-build.ts'),
        import('../../runtime.ts'),
        import('../../server/app.ts'),
        import('../../server/listen.ts'),
        import('../progress.ts'),
        import('../../server/lifecycle.ts'),
        import('../../util/live-pressure.ts'),
      ]);
      const config = configFrom(cmd.optsWithGlobals(), { port: flags.port, host: flags.host });
      const logger = createLogger(config);
      // The app reports when searches are held up; a live rebuild's embedding, and its chunking and storing on the
      // main thread, wait for them (util/live-pressure.ts).
      const pressure = new LivePressure();
      const embedder = await createEmbedder(config, { pressure });
      // Until the server listens, a failure (a seeds folder that is not there, a port in use) closes what was
      // started before the error reaches the CLI: the embedder's worker threads would keep the process alive, and a
      // server that printed its error but never exited is one a supervisor never restarts.
      const closeStarted =
        (...started: Array<{ close(): Promise<unknown> }>) =>
        async (e: unknown) => {
          for (const s of started) await s.close().catch(() => {});
          throw e;
        };
      const bar = buildProgressBar();
      const { quarry, report } = await openOrBuild({ config, embedder, logger, onProgress: bar.update, backgroundPace: () => pressure.calm() })
        .finally(bar.stop)
        .catch(closeStarted(embedder));
      for (const e of report.parseErrors) logger.warn({ file: e.field }, `skipped: ${e.message}`);
      if (report.sync && report.sync.added + report.sync.updated + report.sync.removed > 0) logger.info(report.sync, 'seeds folder synced into the index');

      const lifecycle = new Lifecycle();
      const app = createApp({ quarry, config, logger, lifecycle, pressure });
      const running = await listen(app, config.port, config.host).catch(closeStarted(quarry, embedder));
      const s = await quarry.stats();
      process.stdout.write(
        `\nQuarry is serving ${s.articles} article${s.articles === 1 ? '' : 's'} (${s.chunks} paragraphs, ${s.model}) at ${running.url}\n` +
          `  search page:  ${running.url}/?q=China-Belarus+industrial+cooperation\n` +
          `  JSON API:     curl '${running.url}/search?q=China-Belarus%20industrial%20cooperation&k=3'\n` +
          `  API docs:     ${running.url}/docs  (OpenAPI: ${running.url}/openapi.json)\n` +
          `  metrics:      ${running.url}/metrics\n\n`,
      );

      let stopping = false;
      const shutdown = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        // Drain: /health/ready turns 503 at once (load balancers stop sending), no new connections are accepted,
        // requests in flight get up to drainTimeoutMs to finish; then the writes still waiting are withdrawn
        // (their clients were cut off unacknowledged) and the index is checkpointed and closed.
        const { inFlight } = lifecycle.beginDrain();
        logger.info({ signal, inFlight, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: finishing requests in flight, then checkpointing the index');
        await running.close(config.drainTimeoutMs);
        await quarry.close();
        await embedder.close();
        logger.info('stopped');
        process.exit(0);
      };
      process.once('SIGTERM', () => void shutdown('SIGTERM'));
      process.once('SIGINT', () => void shutdown('SIGINT'));
    });
}
