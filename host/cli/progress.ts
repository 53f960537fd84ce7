/**
 * @fileoverview A progress bar for long work (instrumenting big modules), on stderr, only when
 * stderr is a terminal; otherwise silent. Wraps cli-progress.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(label: string, enabled = Boolean(process.stderr.isTTY)): Progress {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      if (done === total || done % 64 === 0) bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
