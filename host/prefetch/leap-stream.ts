/**
 * @fileoverview `leap-stream`: Leap's trend detection (leap.ts, Algorithm 1 unchanged) with a
 * prefetch window sized to keep a stream at wire speed instead of Leap's cap of 8 pages per demand
 * fault. Leap decides only on demand faults and fetches at most 8 pages each, so a scan through a
 * memory server has at most 8 pages in flight: a tenth of the bandwidth a pipelined link carries
 * (bandwidth × round trip is ~12 pages of 4 KiB on loopback, far more once the guest consumes a page
 * faster than one round trip).
 *
 * State: the Leap delta history (H = 32, logged on demand faults and first touches of prefetched
 * pages), a window `depth` (pages to keep ahead of the guest along the trend) and a `frontier`, the
 * furthest page already requested along the current trend.
 *
 *   every access (demand fault or first touch of a prefetched page):
 *     trend Δ = FindTrend over the history (before this access's delta, as Leap); log the delta
 *     no trend                    → depth halves (not below MIN_DEPTH), frontier forgotten, no fetch
 *     a new trend, or a demand fault off it (a jump) → frontier forgotten, unconfirmed
 *     touch of a prefetched page  → confirmed; if it was late (still in flight) and the trend was
 *                                   already confirmed, depth doubles (issued too late)
 *     demand fault on a confirmed trend → past the frontier, the stream outran its prefetches: depth
 *                                   doubles; on a page already requested, it was evicted before its
 *                                   first touch (window too big for local memory): depth halves
 *     then the window is depth pages (PROBE = 2 while unconfirmed, like Leap's single page); once
 *     min(TOP_UP, window/2) of it has been used (at most window − that requested ahead of the
 *     page, (frontier − page)/Δ), top up to page + window·Δ, starting after the frontier: one
 *     contiguous run per top-up, which the I/O worker sends as one READ. Runs of TOP_UP = 16 pages
 *     (64 KiB) keep a pipeline of replies landing one after another; topping up half a 256-page
 *     window at once made 512 KiB replies that complete all at once, the guest waiting for the
 *     whole reply to touch its first page.
 *
 * Depth therefore grows until prefetched pages land before the guest touches them (the
 * bandwidth-delay product plus the worker's batching delay, found from `late` touches rather than a
 * clock, so replay stays deterministic) and shrinks when the pattern stops. It is capped at
 * MAX_DEPTH and at a quarter of the frame pool (`FaultInfo.frames`), and by the runtime at half.
 *
 * Drop-behind: on a confirmed stream each access names the page BEHIND steps back as done with
 * (`FaultInfo.dropBehind`); the runtime evicts it when free frames run short. CLOCK, like LRU,
 * evicts every page of a loop larger than local memory before the loop comes back to it (each pass
 * refetches everything, whatever the local memory); evicting behind the stream instead keeps the
 * pages it cannot hold out of the way, and the first part of the range stays resident for the next
 * pass (MRU replacement, the optimum for loops), so more local memory means fewer fetches.
 *
 * Advice: Sequential treats the range as a +1 trend at full depth; Random turns prefetch off there.
 */
import { AdviceRanges } from './advice.js';
import { DeltaHistory, LEAP_HISTORY, NO_TREND } from './leap.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from './policy.js';

/** Smallest window once a trend is found (Leap's cap: never fetch less than Leap would). */
export const MIN_DEPTH = 8;
/** Largest window: 1 MiB of 4 KiB pages in flight. */
export const MAX_DEPTH = 256;
/**
 * Drop-behind distance in trend steps: the page two steps back (one step back may still be read by
 * an access straddling into this page).
 */
export const BEHIND = 2;
/** Most pages one top-up adds: a 64 KiB READ at 4 KiB pages, so replies land in a steady pipeline. */
export const TOP_UP = 16;
/** Pages fetched along a trend not yet confirmed by a prefetch hit. */
export const PROBE = 2;

export class LeapStreamPolicy implements PrefetchPolicy {
  readonly name = 'leap-stream';
  private readonly history = new DeltaHistory(LEAP_HISTORY);
  private readonly advice = new AdviceRanges();
  private depth = MIN_DEPTH;
  /** Furthest page requested along `frontierStep`, or -1. */
  private frontier = -1;
  private frontierStep = 0;
  /** A page prefetched along the current trend was touched: fetch the whole window. */
  private confirmed = false;

  onFault(fault: FaultInfo, out: Int32Array): number {
    const page = fault.page;
    const prev = this.history.prev;
    // As in Leap: the trend comes from the history before this access's delta is logged.
    const found = this.history.trend();
    this.history.log(page);
    const advice = this.advice.lookup(page);
    if (advice === Advice.Random) return 0;
    const trend = advice === Advice.Sequential ? 1 : found;
    if (trend === NO_TREND || trend === 0) {
      this.depth = Math.max(MIN_DEPTH, this.depth >>> 1);
      this.frontier = -1;
      return 0;
    }
    if (advice === Advice.Sequential) {
      this.depth = MAX_DEPTH;
      this.confirmed = true;
    }
    const onTrend = prev >= 0 && page - prev === trend;
    if (trend !== this.frontierStep || (!fault.prefetchHit && !onTrend)) {
      // A new trend, or a jump off it: start over, unconfirmed.
      this.frontier = -1;
      this.confirmed = advice === Advice.Sequential;
    }
    if (fault.prefetchHit) {
      // A page fetched along the trend was used: the stream is real.
      if (this.confirmed && fault.late) this.depth = Math.min(MAX_DEPTH, this.depth * 2);
      this.confirmed = true;
    } else if (onTrend && this.confirmed) {
      const requested = this.frontier >= 0 && (this.frontier - page) / trend >= 0;
      // A demand fault on a page already requested: it was evicted before its first touch (the
      // window outgrew local memory), so shrink; past the frontier, the guest outran it: grow.
      this.depth = requested ? Math.max(MIN_DEPTH, this.depth >>> 1) : Math.min(MAX_DEPTH, this.depth * 2);
    }
    // Drop-behind: on a confirmed stream, the page BEHIND steps back is done with (the runtime
    // evicts it only when free frames run short), so a loop over more than local memory keeps what
    // it cannot stream resident across passes instead of refetching every page.
    if (this.confirmed && (fault.prefetchHit || onTrend)) {
      const behind = page - BEHIND * trend;
      if (behind >= 0 && behind < fault.numPages) fault.dropBehind = behind;
    }
    // Pages already requested ahead of this one along the trend.
    let ahead = this.frontier >= 0 ? (this.frontier - page) / trend : 0;
    if (ahead < 0 || !Number.isInteger(ahead)) ahead = 0;
    // Until a prefetched page is used, probe with PROBE pages, as Leap does with one.
    const cap = fault.frames !== undefined ? Math.max(PROBE, fault.frames >>> 2) : MAX_DEPTH;
    if (this.depth > cap) this.depth = cap;
    const depth = Math.min(this.confirmed ? this.depth : PROBE, out.length);
    if (ahead > 0 && ahead > depth - Math.min(TOP_UP, depth >>> 1)) return 0;
    const limit = fault.numPages;
    let k = 0;
    for (let i = ahead + 1; i <= depth; i++) {
      const p = page + i * trend;
      if (p < 0 || p >= limit) break;
      out[k++] = p;
    }
    if (k > 0) {
      this.frontier = out[k - 1]!;
      this.frontierStep = trend;
    }
    return k;
  }

  advise(page: number, numPages: number, advice: Advice): void {
    this.advice.set(page, numPages, advice);
  }

  reset(): void {
    this.history.reset();
    this.depth = MIN_DEPTH;
    this.frontier = -1;
    this.frontierStep = 0;
    this.confirmed = false;
    this.advice.clear();
  }
}
