import cliProgress from 'cli-progress';
import type { BuildProgress } from '../core/build-index.ts';

/** A progress bar on a terminal; nothing when output is piped (logs and CI stay clean). */
export function buildProgressBar(stream: NodeJS.WriteStream = process.stderr): { update: (p: BuildProgress) => void; stop: () => void } {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: 'indexing |{bar}| {percentage}% · {value}/{total} articles · {chunks} chunks · {rate} chunks/s · eta {eta_formatted}',
      stream,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let running = false;
  return {
    update(p) {
      const rate = Math.round(p.chunksDone / Math.max((performance.now() - started) / 1000, 1e-3));
      if (!running) {
        bar.start(p.articlesTotal, p.articlesDone, { chunks: p.chunksDone, rate });
        running = true;
      } else bar.update(p.articlesDone, { chunks: p.chunksDone, rate });
    },
    stop() {
      if (running) bar.stop();
    },
  };
}
