/**
 * @fileoverview `stride`: constant-delta detection with confidence, per stream (a reference
 * prediction table in the style of Chen & Baer, keyed by nearness instead of by instruction).
 *
 * Up to STREAMS streams are tracked, each as (last page, stride, confidence, frontier):
 *
 *   access p (demand fault or first touch of a prefetched page):
 *     a stream predicted p (last + stride == p)  → confidence + 1 (saturating at 8), last = p
 *     a stream's last page is p (a repeat)       → nothing changes
 *     else                                       → a new stream replaces the least recently used:
 *                                                  last = p, and if some stream's last page q is
 *                                                  within MAX_DISTANCE, stride = p - q (nearest q),
 *                                                  confidence = 1; else stride unknown
 *     confidence >= 2 (the same stride three accesses in a row) → prefetch along it:
 *       degree = min(8, 2^(confidence - 1)) strides ahead of p, starting past the frontier
 *       (the furthest page this stream already asked for), so a steady stream asks for each
 *       page once and keeps `degree` pages ahead of the guest.
 *
 * Several streams make interleaved scans (two arrays walked together) work, which a single global
 * delta cannot see. Unlike readahead and leap, this policy decides on prefetch hits too: that is
 * how it keeps ahead of a stream without ever taking a demand fault in steady state.
 *
 * Advice: Sequential prefetches the next `8` pages regardless of history; Random turns it off.
 */
import { AdviceRanges } from './advice.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from './policy.js';

/** Streams tracked at once (stale guesses age out by LRU, so this is more than the real streams). */
export const STREAMS = 8;
/** A new stream guesses its stride from a stream whose last page is at most this many pages away. */
export const MAX_DISTANCE = 256;
/** Most strides ahead of the guest a stream prefetches. */
export const MAX_DEGREE = 8;
const MAX_CONFIDENCE = 8;

export class StridePolicy implements PrefetchPolicy {
  readonly name = 'stride';
  private readonly last = new Float64Array(STREAMS).fill(-1);
  private readonly stride = new Float64Array(STREAMS);
  private readonly confidence = new Uint8Array(STREAMS);
  private readonly frontier = new Float64Array(STREAMS);
  private readonly used = new Float64Array(STREAMS);
  private tick = 0;
  private readonly advice = new AdviceRanges();

  onFault(fault: FaultInfo, out: Int32Array): number {
    const page = fault.page;
    const s = this.train(page);
    const advice = this.advice.lookup(page);
    if (advice === Advice.Random) return 0;
    const limit = fault.numPages;
    const max = out.length;
    let n = 0;
    if (advice === Advice.Sequential) {
      for (let p = page + 1; p <= page + MAX_DEGREE && p < limit && n < max; p++) out[n++] = p;
      return n;
    }
    const conf = this.confidence[s]!;
    if (conf < 2) return 0;
    const stride = this.stride[s]!;
    const degree = Math.min(MAX_DEGREE, 1 << (conf - 1));
    const end = page + degree * stride;
    // Start past what this stream already asked for, when the frontier lies ahead on the stride.
    const ahead = (this.frontier[s]! - page) / stride;
    let p = ahead >= 1 && Number.isInteger(ahead) ? this.frontier[s]! + stride : page + stride;
    for (; (stride > 0 ? p <= end : p >= end) && p >= 0 && p < limit && n < max; p += stride) out[n++] = p;
    if (n > 0) this.frontier[s] = out[n - 1]!;
    return n;
  }

  /** Updates the streams with an access to `page`; returns the stream it belongs to. */
  private train(page: number): number {
    const last = this.last;
    const tick = ++this.tick;
    let near = -1;
    let nearDist = MAX_DISTANCE + 1;
    for (let i = 0; i < STREAMS; i++) {
      const l = last[i]!;
      if (l < 0) continue;
      const stride = this.stride[i]!;
      if (l === page || (stride !== 0 && l + stride === page)) {
        if (l !== page && this.confidence[i]! < MAX_CONFIDENCE) this.confidence[i]!++;
        last[i] = page;
        this.used[i] = tick;
        return i;
      }
      const d = Math.abs(page - l);
      if (d < nearDist) {
        nearDist = d;
        near = i;
      }
    }
    // Not predicted: start a stream here whose stride guess is the step from the nearest stream.
    // The nearest stream keeps its place: it may be another stream interleaved with this one.
    let victim = 0;
    for (let i = 1; i < STREAMS; i++) if (this.used[i]! < this.used[victim]!) victim = i;
    last[victim] = page;
    this.stride[victim] = near >= 0 ? page - last[near]! : 0;
    this.confidence[victim] = near >= 0 ? 1 : 0;
    this.frontier[victim] = page;
    this.used[victim] = tick;
    return victim;
  }

  advise(page: number, numPages: number, advice: Advice): void {
    this.advice.set(page, numPages, advice);
  }

  reset(): void {
    this.last.fill(-1);
    this.stride.fill(0);
    this.confidence.fill(0);
    this.frontier.fill(0);
    this.used.fill(0);
    this.tick = 0;
    this.advice.clear();
  }
}
