import type { FaultLatencyStats } from './latency.js';

/**
 * @fileoverview Fault-path counters. One plain object with numeric fields, mutated in place on the
 * fault path (no allocation); `Pager.totals()` copies them (with the reclaimer's share) into a fresh
 * `Counters` for `runtime.stats()`.
 */

export class Counters {
  /** Faults that fetched a page from the store. */
  majorFaults = 0;
  /** Major faults (and prefetches) of pages never written to the store, zero-filled without I/O. */
  zeroFills = 0;
  /** Faults on a resident page: first write to a clean page, re-map after access tracking, prefetch hit. */
  minorFaults = 0;
  /** Accesses that straddled two pages and went through the bounce buffer. */
  straddles = 0;
  evictions = 0;
  /** Dirty pages written back to the store on eviction. */
  writeBacks = 0;
  /** Evictions done on the guest thread because no frame was free. */
  directReclaims = 0;
  bytesIn = 0;
  bytesOut = 0;
  prefetchIssued = 0;
  prefetchHits = 0;
  /** Prefetched pages evicted before the guest touched them. */
  prefetchWasted = 0;
  /** Faults that had to wait for a prefetch already in flight. */
  prefetchLate = 0;
  /** Pages evicted on the policy's drop-behind advice (`FaultInfo.dropBehind`), included in evictions. */
  dropBehinds = 0;
  /** Host-side accesses (WASI, bulk memory ops) served through the same path. */
  hostAccesses = 0;

  /** Adds another thread's counters (a plain copy of a Counters, e.g. from a worker) to these. */
  add(other: Partial<Counters>): void {
    const into = this as unknown as Record<string, number>;
    for (const [key, value] of Object.entries(other)) if (typeof value === 'number' && typeof into[key] === 'number') into[key] += value;
  }

  reset(): void {
    for (const key of Object.keys(this) as (keyof Counters)[]) {
      if (typeof this[key] === 'number') (this as unknown as Record<string, number>)[key] = 0;
    }
  }
}

export interface PrefetchStats {
  readonly policy: string;
  readonly issued: number;
  readonly hits: number;
  readonly wasted: number;
  readonly late: number;
  /** Pages evicted behind a stream on the policy's advice (drop-behind); also counted in evictions. */
  readonly dropped: number;
  /** hits / issued */
  readonly accuracy: number;
  /** hits / (hits + demand major faults) */
  readonly coverage: number;
}

/** Re-replication and drains of a remote store (host/store/remote/repair.ts). */
export interface ReplicationStats {
  /** Slabs with fewer than r copies now. */
  readonly underReplicated: number;
  /** Slabs copied onto another server after one was lost. */
  readonly reReplicated: number;
  /** Pages copied by re-replication and moves. */
  readonly pagesCopied: number;
  /** Copies abandoned (a server failed or was full during the copy); retried later. */
  readonly failedCopies: number;
  /** Servers whose copies were forgotten because they failed or restarted empty. */
  readonly serversLost: number;
  /** Slabs moved off servers that drained. */
  readonly slabsMoved: number;
}

export interface RuntimeStats {
  readonly pageSize: number;
  /** Local memory granted (the requested frames), and the guest's virtual size, in bytes. */
  readonly localBytes: number;
  /** Free frames the reclaimer keeps on top of localBytes (0 without a reclaimer), in bytes. */
  readonly reserveBytes: number;
  readonly virtualBytes: number;
  /** Pages resident now, and the most resident at once during the run. */
  readonly residentPages: number;
  readonly residentPeak: number;
  readonly majorFaults: number;
  /** Major faults of never-written pages, served by zero-filling the frame (no store I/O). */
  readonly zeroFills: number;
  readonly minorFaults: number;
  readonly straddles: number;
  readonly evictions: number;
  readonly writeBacks: number;
  readonly directReclaims: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly hostAccesses: number;
  readonly prefetch: PrefetchStats;
  readonly store: string;
  /** Memory servers: re-replication after a lost server, and slabs moved off draining servers. */
  readonly replication?: ReplicationStats;
  /** Per-stage fault latency, when the run records it (`latency: true`, `--latency`). */
  readonly latency?: FaultLatencyStats;
}

export function ratio(num: number, den: number): number {
  return den === 0 ? 0 : num / den;
}
