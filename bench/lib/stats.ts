/**
 * @fileoverview Statistics over repeated measurements: median, min/max, mean, standard deviation,
 * relative margin of error (95%, Student's t) and the timer-grain check. Times are nanoseconds.
 *
 * A sample shorter than `GRAIN_FACTOR` timer ticks is dominated by the timer's resolution, not by
 * the code; `summarize` then adds a warning instead of silently reporting noise (tinybench does the
 * same in its timer diagnostics).
 */

/** A sample must last this many timer ticks before its time is trusted. */
export const GRAIN_FACTOR = 1000;

export interface Summary {
  /** Number of samples. */
  n: number;
  median: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (0 for n < 2). */
  sd: number;
  /** Relative margin of error at 95% confidence, in percent of the mean (0 for n < 2). */
  rme: number;
}

/** Two-sided 95% Student's t critical values for df = 1..30; larger df use 1.96. */
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
  2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Linear-interpolated quantile, q in [0, 1]. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of no values');
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function geomean(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  let logSum = 0;
  for (const v of values) logSum += Math.log(v);
  return Math.exp(logSum / values.length);
}

export function summarize(values: readonly number[]): Summary {
  const n = values.length;
  if (n === 0) throw new RangeError('summarize needs at least one sample');
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = sum / n;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
  const t = n > 1 ? (T95[n - 2] ?? 1.96) : 0;
  const rme = n > 1 && mean !== 0 ? (t * sd / Math.sqrt(n) / mean) * 100 : 0;
  return { n, median: median(values), min, max, mean, sd, rme };
}

let cachedGrain = 0;

/**
 * The smallest non-zero step of `process.hrtime.bigint()` seen over a short probe, in nanoseconds.
 * Cached after the first call.
 */
export function timerGrainNs(): number {
  if (cachedGrain > 0) return cachedGrain;
  let best = Infinity;
  for (let i = 0; i < 1000; i++) {
    const a = process.hrtime.bigint();
    let b = process.hrtime.bigint();
    while (b === a) b = process.hrtime.bigint();
    const d = Number(b - a);
    if (d < best) best = d;
  }
  cachedGrain = Math.max(1, best);
  return cachedGrain;
}

/** A warning when the shortest sample is under GRAIN_FACTOR timer ticks, else null. */
export function grainWarning(label: string, samplesNs: readonly number[], grainNs = timerGrainNs()): string | null {
  if (samplesNs.length === 0) return null;
  const shortest = Math.min(...samplesNs);
  if (shortest >= grainNs * GRAIN_FACTOR) return null;
  return `${label}: shortest sample ${formatNs(shortest)} is under ${GRAIN_FACTOR} timer ticks (grain ${formatNs(grainNs)}); use a bigger size for a trustworthy time`;
}

export interface MeasureOptions {
  /** Untimed runs first, so V8 has tiered up and caches are warm. */
  warmup: number;
  /** Timed runs. */
  reps: number;
}

/** Runs `fn` warmup + reps times and returns the timed samples in nanoseconds. */
export async function measure(fn: () => unknown, { warmup, reps }: MeasureOptions): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) samples.push(await timeOnce(fn));
  return samples;
}

/** Times one call of `fn` in nanoseconds (awaits it when it returns a promise). */
export async function timeOnce(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = fn();
  if (r instanceof Promise) await r;
  return Number(process.hrtime.bigint() - t0);
}

export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return String(ns);
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}
