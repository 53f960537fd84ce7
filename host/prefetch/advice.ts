/**
 * @fileoverview Per-range madvise-like advice for policies: a small fixed ring of page ranges,
 * newest first. Policies ask `lookup(page)` on each fault; with no advice recorded it is one compare.
 *
 *   ranges: start[i], end[i] (exclusive), advice[i]     i = (head - 1 - k) & MASK, k = 0 .. count-1
 *
 * Only Sequential, Random and Normal are recorded (Normal records an override that masks older
 * ranges). WillNeed and DontNeed are the runtime's to act on; policies ignore them. When more than
 * MAX_RANGES ranges are advised, the oldest is forgotten (its pages fall back to Normal).
 */
import { Advice } from './policy.js';

/** Ranges remembered per policy. A program that advises more ranges loses the oldest ones. */
export const MAX_RANGES = 16;
const MASK = MAX_RANGES - 1;

export class AdviceRanges {
  private readonly start = new Float64Array(MAX_RANGES);
  private readonly end = new Float64Array(MAX_RANGES);
  private readonly advice = new Uint8Array(MAX_RANGES);
  private head = 0;
  private count = 0;
  /** Ranges other than Normal currently recorded; 0 means every lookup is Normal. */
  private active = 0;

  /** Records advice for pages [page, page + numPages). */
  set(page: number, numPages: number, advice: Advice): void {
    if (numPages <= 0) return;
    if (advice !== Advice.Sequential && advice !== Advice.Random && advice !== Advice.Normal) return;
    if (advice === Advice.Normal && this.active === 0) return;
    if (this.count === MAX_RANGES && this.advice[this.head] !== Advice.Normal) this.active--;
    this.start[this.head] = page;
    this.end[this.head] = page + numPages;
    this.advice[this.head] = advice;
    this.head = (this.head + 1) & MASK;
    if (this.count < MAX_RANGES) this.count++;
    if (advice !== Advice.Normal) this.active++;
  }

  /** The newest advice covering `page`, or Normal. */
  lookup(page: number): Advice {
    if (this.active === 0) return Advice.Normal;
    for (let k = 0, i = (this.head - 1) & MASK; k < this.count; k++, i = (i - 1) & MASK) {
      if (page >= this.start[i]! && page < this.end[i]!) return this.advice[i] as Advice;
    }
    return Advice.Normal;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.active = 0;
  }
}
