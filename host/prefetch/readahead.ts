/**
 * @fileoverview `readahead`: Linux's VMA-based swap readahead (mm/swap_state.c, `__swapin_nr_pages`
 * and `swap_ra_info`), with virtual pages in place of swap offsets.
 *
 * On each demand fault, with `hits` = prefetched pages touched since the last decision:
 *
 *   win = hits + 2
 *   if win == 2:  win = 1 unless the fault is next to the previous one (page == prev ± 1)
 *   else:         win = smallest power of two >= win, at least 4
 *   win = min(win, 8)                 (8 = 1 << page_cluster, Linux's default page_cluster 3)
 *   win = max(win, previous win / 2)  (never shrink faster than by half)
 *
 * The window holds the faulting page itself, so `win - 1` pages are fetched: after it when the
 * previous fault was page - 1, before it when it was page + 1, else centred on it. A window of 1
 * fetches nothing. First touches of prefetched pages count as hits and move `prev`; they do not
 * trigger readahead (Linux reads ahead only on swap-cache misses).
 *
 * Advice: Sequential forces the largest window forward; Random turns readahead off in that range.
 */
import { AdviceRanges } from './advice.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from './policy.js';

/** Linux default: page_cluster = 3 → at most 8 pages per readahead window. */
export const READAHEAD_MAX_WINDOW = 8;

export class ReadaheadPolicy implements PrefetchPolicy {
  readonly name = 'readahead';
  private readonly maxWindow: number;
  private readonly advice = new AdviceRanges();
  private prev = -1;
  private hits = 0;
  private prevWindow = 0;

  constructor(maxWindow = READAHEAD_MAX_WINDOW) {
    this.maxWindow = maxWindow;
  }

  onFault(fault: FaultInfo, out: Int32Array): number {
    const page = fault.page;
    const prev = this.prev;
    this.prev = page;
    if (fault.prefetchHit) {
      this.hits++;
      return 0;
    }
    const advice = this.advice.lookup(page);
    if (advice === Advice.Random) {
      this.hits = 0;
      return 0;
    }
    let win = this.hits + 2;
    this.hits = 0;
    if (win === 2) {
      if (prev < 0 || (page !== prev + 1 && page !== prev - 1)) win = 1;
    } else {
      let roundup = 4;
      while (roundup < win) roundup <<= 1;
      win = roundup;
    }
    if (advice === Advice.Sequential) win = this.maxWindow;
    if (win > this.maxWindow) win = this.maxWindow;
    if (win < this.prevWindow >>> 1) win = this.prevWindow >>> 1;
    this.prevWindow = win;

    const limit = fault.numPages;
    let n = 0;
    const max = out.length;
    if (advice === Advice.Sequential || page === prev + 1) {
      for (let p = page + 1; p < page + win && p < limit && n < max; p++) out[n++] = p;
    } else if (page === prev - 1) {
      for (let p = page - 1; p > page - win && p >= 0 && n < max; p--) out[n++] = p;
    } else {
      const left = (win - 1) >>> 1;
      for (let p = page + 1; p < page + win - left && p < limit && n < max; p++) out[n++] = p;
      for (let p = page - 1; p >= page - left && p >= 0 && n < max; p--) out[n++] = p;
    }
    return n;
  }

  advise(page: number, numPages: number, advice: Advice): void {
    this.advice.set(page, numPages, advice);
  }

  reset(): void {
    this.prev = -1;
    this.hits = 0;
    this.prevWindow = 0;
    this.advice.clear();
  }
}
