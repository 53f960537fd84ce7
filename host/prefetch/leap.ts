/**
 * @fileoverview `leap`: the prefetcher of Hasan Al Maruf and Mosharaf Chowdhury, "Effectively
 * Prefetching Remote Memory with Leap", USENIX ATC 2020 (https://www.usenix.org/conference/atc20/
 * presentation/al-maruf), Algorithms 1 and 2 as the paper describes them (its released kernel code
 * differs in details).
 *
 * History: a ring of the last H = 32 page deltas (page - previous page). A delta is logged on every
 * demand fault and every first touch of a prefetched page; the very first access has no delta.
 *
 *   ring:  [ d0 d1 d2 ... d31 ]   next = index the next delta goes to; count = deltas held (<= H)
 *
 * FindTrend (Algorithm 1), over the history *before* the current fault's delta is logged:
 *   w = H / 4 (8); loop: take the last min(w, count) deltas, find the Boyer–Moore majority
 *   candidate and count it; more than half of the window → that delta is the trend; else w *= 2;
 *   once w has covered the whole history → NO_TREND (an explicit value: delta 0 is a real trend).
 *
 * Prefetch window (Algorithm 2), on each demand fault, hits = prefetched pages touched since the
 * last decision:
 *   hits == 0 → 1 if the fault follows the trend (page - prev == trend), else 0 (suspend)
 *   hits  > 0 → round_up_pow2(hits + 1)
 *   then min(PW, 8), then max(PW, previous PW / 2) (shrink smoothly).
 *
 * Prefetch: with a trend Δ, pages page+Δ, page+2Δ, … page+PW·Δ. Without one (PW > 0 only through
 * hits or the half-previous rule), PW pages around the page along the latest trend found (±1 if
 * none ever was): page+Δ, page−Δ, page+2Δ, page−2Δ, …
 *
 * Decisions are made on demand faults only; a first touch of a prefetched page only logs its delta
 * and counts a hit (as in the paper, prefetching runs on the cache-miss path). A steady stream
 * therefore takes one demand fault per PW + 1 pages: coverage tops out at 8/9 with the cap of 8.
 *
 * Advice: Sequential makes the range prefetch a full window along +1; Random turns prefetch off
 * there (history is still logged).
 */
import { OptionError } from '../errors.js';
import { AdviceRanges } from './advice.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from './policy.js';

/** "No trend": no int32 page delta equals it. */
export const NO_TREND = 2 ** 31;
/** The paper's history size H. */
export const LEAP_HISTORY = 32;
/** The paper's cap on the prefetch window, PW_max. */
export const LEAP_MAX_WINDOW = 8;

export interface LeapOptions {
  /** Deltas kept, a power of two from 4 to 1024. Default 32 (the paper's H). */
  history?: number;
  /** Largest prefetch window. Default 8 (the paper's). */
  maxWindow?: number;
}

/**
 * Boyer–Moore strict majority of `length` values starting at `from` (indices wrap around
 * values.length, so a ring works): the value occurring more than length/2 times, or NO_TREND.
 */
export function majority(values: ArrayLike<number>, from: number, length: number): number {
  const size = values.length;
  let candidate = 0;
  let votes = 0;
  for (let k = 0; k < length; k++) {
    const v = values[(from + k) % size]!;
    if (votes === 0) {
      candidate = v;
      votes = 1;
    } else if (v === candidate) {
      votes++;
    } else {
      votes--;
    }
  }
  if (votes === 0) return NO_TREND;
  let occurrences = 0;
  for (let k = 0; k < length; k++) if (values[(from + k) % size] === candidate) occurrences++;
  return occurrences * 2 > length ? candidate : NO_TREND;
}

/**
 * Algorithm 1 over a delta ring (`history.length` a power of two, `next` the slot the next delta goes
 * to, `count` deltas held): windows of H/4, H/2, … of the latest deltas; the first with a strict
 * majority gives the trend, else NO_TREND.
 */
export function findTrend(history: Int32Array, next: number, count: number): number {
  if (count === 0) return NO_TREND;
  const size = history.length;
  const mask = size - 1;
  for (let w = size >>> 2; ; w <<= 1) {
    const len = w < count ? w : count;
    const trend = majority(history, (next - len + size) & mask, len);
    if (trend !== NO_TREND) return trend;
    if (len === count) return NO_TREND;
  }
}

/**
 * Leap's access history, the one copy both Leap policies keep (leap.ts, leap-stream.ts): the last
 * `size` page deltas in a ring (`size` a power of two) and the page of the previous access.
 */
export class DeltaHistory {
  readonly deltas: Int32Array;
  /** The page of the last logged access, or -1. */
  prev = -1;
  private next = 0;
  private count = 0;

  constructor(size: number) {
    this.deltas = new Int32Array(size);
  }

  /** Logs the delta from the previous access to `page` (none for the first access). */
  log(page: number): void {
    if (this.prev >= 0) this.push(page - this.prev);
    this.prev = page;
  }

  /** Appends one delta to the ring. */
  push(delta: number): void {
    this.deltas[this.next] = delta;
    this.next = (this.next + 1) & (this.deltas.length - 1);
    if (this.count < this.deltas.length) this.count++;
  }

  /** Algorithm 1 over the logged deltas (`findTrend`). */
  trend(): number {
    return findTrend(this.deltas, this.next, this.count);
  }

  reset(): void {
    this.deltas.fill(0);
    this.next = 0;
    this.count = 0;
    this.prev = -1;
  }
}

function roundUpPow2(x: number): number {
  return x <= 1 ? 1 : 2 ** (32 - Math.clz32(x - 1));
}

export class LeapPolicy implements PrefetchPolicy {
  readonly name = 'leap';
  private readonly history: DeltaHistory;
  private readonly maxWindow: number;
  private readonly advice = new AdviceRanges();
  private hits = 0;
  private prevWindow = 0;
  private lastTrend = NO_TREND;

  constructor(options: LeapOptions = {}) {
    const h = options.history ?? LEAP_HISTORY;
    if (!Number.isInteger(h) || h < 4 || h > 1024 || (h & (h - 1)) !== 0) {
      throw new OptionError(`leap "history" must be a power of two from 4 to 1024, got ${h}`);
    }
    const w = options.maxWindow ?? LEAP_MAX_WINDOW;
    if (!Number.isInteger(w) || w < 1 || w > 1024) {
      throw new OptionError(`leap "maxWindow" must be an integer from 1 to 1024, got ${w}`);
    }
    this.history = new DeltaHistory(h);
    this.maxWindow = w;
  }

  onFault(fault: FaultInfo, out: Int32Array): number {
    const page = fault.page;
    if (fault.prefetchHit) {
      this.hits++;
      this.history.log(page);
      return 0;
    }
    const trend = this.history.trend();
    const prev = this.history.prev;
    this.history.log(page);
    if (trend !== NO_TREND) this.lastTrend = trend;

    const advice = this.advice.lookup(page);
    if (advice === Advice.Random) {
      this.hits = 0;
      this.prevWindow = 0;
      return 0;
    }
    let pw: number;
    if (this.hits === 0) pw = prev >= 0 && trend !== NO_TREND && page - prev === trend ? 1 : 0;
    else pw = roundUpPow2(this.hits + 1);
    if (pw > this.maxWindow) pw = this.maxWindow;
    if (pw < this.prevWindow >>> 1) pw = this.prevWindow >>> 1;
    if (advice === Advice.Sequential) pw = this.maxWindow;
    this.prevWindow = pw;
    this.hits = 0;
    if (pw === 0) return 0;

    const limit = fault.numPages;
    const n = Math.min(pw, out.length);
    let k = 0;
    if (advice === Advice.Sequential || trend !== NO_TREND) {
      const step = advice === Advice.Sequential ? 1 : trend;
      for (let i = 1; k < n; i++) {
        const p = page + i * step;
        if (p < 0 || p >= limit) break;
        out[k++] = p;
      }
    } else {
      const step = this.lastTrend === NO_TREND || this.lastTrend === 0 ? 1 : this.lastTrend;
      for (let i = 1; k < n; i++) {
        const ahead = page + i * step;
        const behind = page - i * step;
        const aheadOk = ahead >= 0 && ahead < limit;
        const behindOk = behind >= 0 && behind < limit;
        if (!aheadOk && !behindOk) break;
        if (aheadOk) out[k++] = ahead;
        if (behindOk && k < n) out[k++] = behind;
      }
    }
    return k;
  }

  /** Algorithm 1: the majority delta of the shortest recent window that has one, or NO_TREND. */
  findTrend(): number {
    return this.history.trend();
  }

  /** @internal Appends one delta to the history (tests feed reference vectors through it). */
  logDelta(delta: number): void {
    this.history.push(delta);
  }

  advise(page: number, numPages: number, advice: Advice): void {
    this.advice.set(page, numPages, advice);
  }

  reset(): void {
    this.history.reset();
    this.hits = 0;
    this.prevWindow = 0;
    this.lastTrend = NO_TREND;
    this.advice.clear();
  }
}
