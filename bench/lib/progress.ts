/**
 * @fileoverview Progress bars for long bench work (cli-progress on stderr). Quiet when stderr is
 * not a TTY, when `--json` asks for machine output, or in tests: then every call is a no-op.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Starts a bar of `total` steps labelled `label` (replaces any running bar). */
  start(label: string, total: number): void;
  /** Advances by `n` steps and shows `detail` (e.g. the configuration being run). */
  tick(detail?: string, n?: number): void;
  /** Stops and clears the current bar. */
  stop(): void;
  /** Prints a line above the bar (or to stderr when quiet and `always`). */
  log(line: string): void;
}

const quietProgress: Progress = { start() {}, tick() {}, stop() {}, log() {} };

export function createProgress(opts: { enabled: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = opts.stream ?? process.stderr;
  if (!opts.enabled || !stream.isTTY) return quietProgress;
  let bar: cliProgress.SingleBar | null = null;
  let value = 0;
  return {
    start(label, total) {
      bar?.stop();
      value = 0;
      bar = new cliProgress.SingleBar({
        stream,
        format: `${label.padEnd(10)} {bar} {value}/{total} {detail}`,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 28,
      }, cliProgress.Presets.shades_classic);
      bar.start(total, 0, { detail: '' });
    },
    tick(detail = '', n = 1) {
      value += n;
      bar?.update(value, { detail });
    },
    stop() {
      bar?.stop();
      bar = null;
    },
    log(line) {
      if (bar) {
        stream.clearLine(0);
        stream.cursorTo(0);
      }
      stream.write(line + '\n');
    },
  };
}
