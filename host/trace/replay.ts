/**
 * @fileoverview Offline replay: re-runs a recorded fault trace through a simulated fault path with
 * any prefetch policy, local-memory size and (coarser) page size, in a fraction of a second per
 * million faults. Deterministic: the same trace and configuration give the same numbers.
 *
 * What a trace can and cannot tell. A trace holds the accesses that *faulted* in the recorded run:
 * demand (major) faults, minor faults (a resident page touched after CLOCK soft-unmapped it, or the
 * first store to a clean page) and first touches of prefetched pages. Accesses that hit a mapped
 * page are not in it. The replay's model:
 *   - Every record is one access to its page (a store if it is a write fault or carries WRITE).
 *     First touches of prefetched pages are in the trace whatever the recorded policy was, so the
 *     demand stream does not depend on the recording's prefetcher.
 *   - The simulated cache is the pager's: `frames` frames under CLOCK, a referenced page is
 *     soft-unmapped by the hand (its next touch is a minor fault), prefetched pages land unmapped and
 *     unreferenced (their first touch is a prefetch hit, a minor fault), the faulting page is pinned
 *     while its prefetches are placed, a prefetch decision brings at most frames/2 pages, pages
 *     already resident or outside the guest's memory are skipped, dirty victims are written back,
 *     prefetched victims never touched count as wasted.
 *   - With the recording's own frames the replay is exact: an access missing from the trace hit a
 *     mapped page, which changes no CLOCK state (its reference bit is already set). With more local
 *     memory, those accesses would still have hit, so the replay stays close (off only where a
 *     larger CLOCK would have soft-unmapped a page the recording kept mapped; test/trace-live
 *     measures < 1% at 4x the frames). With less local memory than the recording, some hidden
 *     accesses would have faulted and are missing: the replay undercounts faults. So record with
 *     little local memory and no prefetching, and replay at that size or larger.
 *   - A coarser page size (a multiple of the recorded one) maps page p to p·recorded/new; a finer
 *     one cannot be replayed, since offsets within a page are not recorded.
 *   - Timing is a cost model, not a measurement: `late` prefetches (a fault waiting for an
 *     in-flight prefetch) are not modelled and stay 0.
 *
 * Local memory as a fraction (`25%`) is a fraction of the *footprint*: the number of distinct pages
 * the trace touches at the replay page size (not the guest's whole memory, most of which a run may
 * never touch). Local memory as a size (`64MiB`) is that many bytes of frames.
 *
 * Estimated fault-path time (defaults in DEFAULT_COSTS, all per event):
 *   majors·majorNs + (minor faults + prefetch hits)·minorNs + issued·prefetchPageNs
 *   + write-backs·writeBackNs
 * majorNs defaults to 20 µs plus the page's transfer at 1 GB/s (a ws round trip measured here);
 * minorNs 1 µs (DESIGN's minor-fault target); a prefetched page and a write-back cost only their
 * transfer at 1 GB/s (they overlap with the guest, but share the link). Compute time is not included.
 */
import { OptionError, TraceError } from '../errors.js';
import type { FaultInfo, PrefetchPolicy } from '../prefetch/policy.js';
import { createPolicy } from '../prefetch/registry.js';
import { TRACE_WRITE, TraceKind } from './format.js';
import type { Trace } from './reader.js';

/** Most pages the simulated guest memory may have (2^27 pages: 512 MiB of per-page tables). */
export const MAX_REPLAY_PAGES = 2 ** 27;
/** The runtime's prefetch output buffer size (pager.ts MAX_PREFETCH). */
const PREFETCH_OUT = 32;

// The simulated frame's flags: its own table (it also tracks WRITABLE, which the runtime keeps in the
// WT page table instead), with the values of runtime/frame-table.ts so traces read alike.
const REFERENCED = 1;
const DIRTY = 2;
const PREFETCHED = 4;
const PINNED = 8;
/** Mapped for writing: cleared with REFERENCED when the hand soft-unmaps the page. */
const WRITABLE = 16;

export interface CostModel {
  readonly majorNs: number;
  readonly minorNs: number;
  readonly prefetchPageNs: number;
  readonly writeBackNs: number;
}

/** The default cost model for `pageSize`-byte pages (see the file header). */
export function defaultCosts(pageSize: number): CostModel {
  return { majorNs: 20_000 + pageSize, minorNs: 1_000, prefetchPageNs: pageSize, writeBackNs: pageSize };
}

/** The access stream of a trace at one page size. */
export interface Accesses {
  readonly pageSize: number;
  readonly count: number;
  readonly pages: Int32Array;
  /** 1 where the access is a store. */
  readonly writes: Uint8Array;
  readonly times: Float64Array;
  /** Distinct pages touched: what a local fraction is a fraction of. */
  readonly footprint: number;
  /** Pages of guest memory (prefetches beyond are dropped). */
  readonly numPages: number;
}

/** The trace's accesses at `pageSize` (default: the recorded one; must be a multiple of it). */
export function accessesOf(trace: Trace, pageSize = trace.header.pageSize): Accesses {
  const recorded = trace.header.pageSize;
  if (!Number.isInteger(pageSize) || pageSize < recorded || pageSize % recorded !== 0 || pageSize > 65536) {
    throw new OptionError(`--page-size ${pageSize} cannot replay a trace recorded with ${recorded}-byte pages: use a multiple of ${recorded} up to 65536 (offsets within a page are not recorded, so finer pages need a trace recorded with them)`);
  }
  const shift = Math.log2(pageSize / recorded);
  const n = trace.count;
  const pages = new Int32Array(n);
  const writes = new Uint8Array(n);
  let maxPage = -1;
  for (let i = 0; i < n; i++) {
    const p = trace.pages[i]! >>> shift;
    pages[i] = p;
    const k = trace.kinds[i]!;
    writes[i] = k === TraceKind.WriteFault || (k & TRACE_WRITE) !== 0 ? 1 : 0;
    if (p > maxPage) maxPage = p;
  }
  const memPages = trace.header.memoryBytes > 0 ? Math.ceil(trace.header.memoryBytes / pageSize) : 0;
  const numPages = Math.max(memPages, maxPage + 1);
  if (numPages > MAX_REPLAY_PAGES) {
    throw new TraceError(`${trace.source}: ${numPages} pages of ${pageSize} bytes exceed the replay limit of ${MAX_REPLAY_PAGES}; replay with a larger --page-size`);
  }
  const seen = new Uint8Array(numPages);
  let footprint = 0;
  for (let i = 0; i < n; i++) {
    const p = pages[i]!;
    if (seen[p] === 0) {
      seen[p] = 1;
      footprint++;
    }
  }
  return { pageSize, count: n, pages, writes, times: trace.times, footprint, numPages };
}

/** Local memory: a fraction of the footprint, bytes, or frames (`parseLocal` gives the first two). */
export type LocalSetting = { readonly fraction: number } | { readonly bytes: number } | { readonly frames: number };

/** Frames for a local-memory setting. At least 1. */
export function framesFor(local: LocalSetting, acc: Accesses): number {
  if ('frames' in local) return Math.max(1, Math.floor(local.frames));
  if ('fraction' in local) return Math.max(1, Math.round(local.fraction * acc.footprint));
  return Math.max(1, Math.floor(local.bytes / acc.pageSize));
}

export interface ReplayResult {
  readonly policy: string;
  readonly frames: number;
  /** frames / footprint. */
  readonly localFraction: number;
  readonly accesses: number;
  readonly majorFaults: number;
  readonly minorFaults: number;
  readonly prefetchIssued: number;
  readonly prefetchHits: number;
  readonly prefetchWasted: number;
  readonly evictions: number;
  readonly writeBacks: number;
  /** hits / issued (0 when nothing was issued). */
  readonly accuracy: number;
  /** hits / (hits + majors). */
  readonly coverage: number;
  readonly estTimeNs: number;
}

export interface ReplayOptions {
  /** A registered policy name, or a policy instance (reset before use). */
  readonly policy: string | PrefetchPolicy;
  readonly local: LocalSetting;
  readonly costs?: Partial<CostModel>;
}

/** Simulates one configuration over `acc`. */
export function replay(acc: Accesses, options: ReplayOptions): ReplayResult {
  const policy = typeof options.policy === 'string' ? createPolicy(options.policy) : options.policy;
  policy.reset();
  const prefetching = policy.name !== 'none';
  const frames = framesFor(options.local, acc);
  const costs = { ...defaultCosts(acc.pageSize), ...options.costs };

  const frameOfPage = new Int32Array(acc.numPages); // frame + 1, 0 = not resident
  const pageOfFrame = new Int32Array(frames).fill(-1);
  const flagsOf = new Uint8Array(frames);
  const out = new Int32Array(PREFETCH_OUT);
  const info: FaultInfo = { page: 0, prefetchHit: false, time: 0, numPages: acc.numPages };
  const prefetchLimit = frames >>> 1;
  let used = 0;
  let hand = 0;
  let majors = 0, minors = 0, issued = 0, hits = 0, wasted = 0, evictions = 0, writeBacks = 0;

  const takeFrame = (): number => {
    if (used < frames) return used++;
    for (let scanned = 0; ; scanned++) {
      if (scanned > 3 * frames) throw new Error('replay: every frame is pinned');
      const f = hand;
      hand = f + 1 === frames ? 0 : f + 1;
      const flags = flagsOf[f]!;
      if (flags & PINNED) continue;
      if (flags & REFERENCED) {
        flagsOf[f] = flags & ~(REFERENCED | WRITABLE);
        continue;
      }
      if (flags & DIRTY) writeBacks++;
      if (flags & PREFETCHED) wasted++;
      evictions++;
      frameOfPage[pageOfFrame[f]!] = 0;
      return f;
    }
  };

  const runPrefetch = (page: number, hit: boolean, time: number, pinned: number): void => {
    info.page = page;
    info.prefetchHit = hit;
    info.time = time;
    const count = policy.onFault(info, out);
    if (count === 0) return;
    flagsOf[pinned]! |= PINNED;
    const limit = Math.min(count, prefetchLimit);
    for (let i = 0; i < limit; i++) {
      const p = out[i]!;
      if (p < 0 || p >= acc.numPages || frameOfPage[p] !== 0) continue;
      const f = takeFrame();
      pageOfFrame[f] = p;
      frameOfPage[p] = f + 1;
      flagsOf[f] = PREFETCHED;
      issued++;
    }
    flagsOf[pinned]! &= ~PINNED;
  };

  const { pages, writes, times } = acc;
  for (let i = 0; i < acc.count; i++) {
    const page = pages[i]!;
    const write = writes[i] === 1;
    let f = frameOfPage[page]! - 1;
    if (f >= 0) {
      let flags = flagsOf[f]!;
      if (flags & PREFETCHED) {
        minors++;
        hits++;
        flags = (flags & ~PREFETCHED) | REFERENCED;
        flagsOf[f] = write ? flags | DIRTY | WRITABLE : flags;
        if (prefetching) runPrefetch(page, true, times[i]!, f);
        continue;
      }
      if ((flags & REFERENCED) === 0 || (write && (flags & WRITABLE) === 0)) minors++;
      flags |= REFERENCED;
      if (write) flags |= DIRTY | WRITABLE;
      flagsOf[f] = flags;
      continue;
    }
    majors++;
    f = takeFrame();
    pageOfFrame[f] = page;
    frameOfPage[page] = f + 1;
    flagsOf[f] = write ? REFERENCED | DIRTY | WRITABLE : REFERENCED;
    if (prefetching) runPrefetch(page, false, times[i]!, f);
  }

  const estTimeNs = majors * costs.majorNs + minors * costs.minorNs + issued * costs.prefetchPageNs + writeBacks * costs.writeBackNs;
  return {
    policy: policy.name, frames, localFraction: acc.footprint === 0 ? 1 : frames / acc.footprint,
    accesses: acc.count, majorFaults: majors, minorFaults: minors,
    prefetchIssued: issued, prefetchHits: hits, prefetchWasted: wasted, evictions, writeBacks,
    accuracy: issued === 0 ? 0 : hits / issued, coverage: hits + majors === 0 ? 0 : hits / (hits + majors),
    estTimeNs,
  };
}

/** Every (local, policy) pair, locals outer: the rows of `farmem trace replay`. */
export function replayMatrix(
  acc: Accesses,
  policies: readonly string[],
  locals: readonly LocalSetting[],
  costs?: Partial<CostModel>,
): ReplayResult[] {
  const rows: ReplayResult[] = [];
  for (const local of locals) for (const policy of policies) rows.push(replay(acc, { policy, local, ...(costs ? { costs } : {}) }));
  return rows;
}
