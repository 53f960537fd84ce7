/**
 * @fileoverview The prefetch policy interface. The runtime calls `onFault` for every demand (major)
 * fault and for every first touch of a prefetched page; the policy writes the pages it wants fetched
 * into `out` and returns how many. It runs on the fault path: no allocation per call.
 *
 * The runtime issues prefetch reads after the demand read, skips pages already resident or in
 * flight and pages outside the guest's memory, and lands prefetched pages unmapped, so their first
 * touch is a minor fault reported back here with `prefetchHit = true`.
 *
 * Contract, for the runtime and for anyone writing a policy:
 *
 *   const policy = createPolicy('leap');            // registry.ts; unknown name → OptionError
 *   const out = new Int32Array(32);                 // allocate once; policies never write past out.length
 *   info.page = p; info.prefetchHit = false; info.time = nowNs; info.numPages = n;
 *   info.dropBehind = -1;
 *   const count = policy.onFault(info, out);        // pages are out[0..count), in fetch order
 *   if (info.dropBehind >= 0) ...                    // optional: the policy names a page to drop
 *   policy.advise?.(firstPage, numPages, Advice.Sequential);  // from farmem.hint, optional
 *
 * A policy may return pages that are resident, out of range or duplicated; the runtime filters them.
 * Policies are deterministic (no clock, no randomness of their own): the offline replay depends on it.
 */

export interface FaultInfo {
  /** Virtual page number that faulted. */
  page: number;
  /** True when the page was brought in by a prefetch and this is its first touch. */
  prefetchHit: boolean;
  /** Monotonic time in nanoseconds (from the runtime's clock). */
  time: number;
  /** Pages the guest's memory currently has (prefetches beyond are dropped by the runtime). */
  numPages: number;
  /**
   * With `prefetchHit`: the prefetched page had not landed yet and the guest waited for it (the
   * prefetch was issued too late). Absent in offline replay, which has no latencies.
   */
  late?: boolean;
  /** Frames in the local pool, when the runtime knows (a window larger than that evicts itself). */
  frames?: number;
  /**
   * Output, optional: a page the policy expects not to be touched again soon (behind a stream), or
   * -1. The runtime sets it to -1 before each call; when the policy sets it and the pool is short of
   * free frames, the runtime evicts that page now (drop-behind) instead of leaving CLOCK to pick a
   * victim. On a scan that loops over more than local memory, CLOCK (like LRU) evicts every page
   * before its next use; dropping the pages just behind the stream keeps the rest resident across
   * passes, as MRU replacement does for loops. Offline replay ignores it.
   */
  dropBehind?: number;
}

export interface PrefetchPolicy {
  readonly name: string;
  /** Writes up to `out.length` page numbers to fetch into `out`; returns the count. */
  onFault(fault: FaultInfo, out: Int32Array): number;
  /** Forget all history (new run). */
  reset(): void;
  /**
   * Optional: madvise-like advice for pages [page, page + numPages). The runtime handles WillNeed
   * (fetch the range) and DontNeed (drop the range) itself and may still pass them on; policies use
   * Sequential (prefetch aggressively along +1) and Random (no prefetching) and Normal (undo).
   */
  advise?(page: number, numPages: number, advice: Advice): void;
}

/** madvise-like advice from the guest's optional `farmem.hint(addr, len, advice)` import. */
export const enum Advice {
  Normal = 0,
  WillNeed = 1,
  DontNeed = 2,
  Sequential = 3,
  Random = 4,
}

export type PolicyFactory = () => PrefetchPolicy;
