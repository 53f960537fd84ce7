/**
 * @fileoverview Fault-path latency histograms (hdr-histogram-js, nanoseconds): the whole major
 * fault, its stages, and minor faults. Recording is a few arithmetic ops into a preallocated
 * histogram; summaries (p50/p90/p99/max, log-spaced buckets for charts) are computed when asked.
 *
 * Major-fault stages, in path order, each measured from the previous mark:
 *   request sent   entry → frame taken (free list or direct reclaim) and the read submitted
 *   reply          → the page landed (includes issuing prefetch reads after the demand read)
 *   mapped         → page tables and frame state updated
 *   resumed        → the handler returns to the guest
 *
 * Through the I/O worker, its hand-offs are recorded too, per read waited on (`recordHandoff`,
 * stamped by the guest and the worker on one clock, io-channel.ts):
 *   worker wake    the request published on the ring → the worker took it (its Atomics.waitAsync wake-up)
 *   store          → the worker completed it (request on the wire, server, reply copied into the frame)
 *   guest wake     → the guest returned from its wait (spin or Atomics.wait wake-up)
 * and `spunWaits`, the fraction of those waits the guest spun through rather than parked
 * (host/runtime/wait-chooser.ts).
 */
import * as hdr from 'hdr-histogram-js';

export interface LatencySummary {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  /** Log-spaced buckets (×2) with their counts, for histogram charts. */
  readonly buckets: readonly { lo: number; hi: number; count: number }[];
}

export interface FaultLatencyStats {
  readonly major: LatencySummary;
  readonly minor: LatencySummary;
  readonly stages: Readonly<Record<'request sent' | 'reply' | 'mapped' | 'resumed', LatencySummary>>;
  /** The I/O worker's hand-offs inside `reply` (only through servers or Redis, and only if any was recorded). */
  readonly handoffs?: Readonly<Record<(typeof HANDOFFS)[number], LatencySummary>>;
  /** With `handoffs`: the fraction of them whose read the guest spun through (not parked, not landed before it waited). */
  readonly spunWaits?: number;
}

export const STAGES = ['request sent', 'reply', 'mapped', 'resumed'] as const;
export const HANDOFFS = ['worker wake', 'store', 'guest wake'] as const;

/** An hdr histogram plus power-of-two buckets for charts (hdr-histogram-js has no range counts). */
class Recorder {
  readonly h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 2 });
  /** counts[k] = values in [2^k, 2^(k+1)) ns; values ≥ 2^32 ns go to the last bucket. */
  readonly counts = new Float64Array(33);

  record(ms: number): void {
    const ns = Math.max(1, Math.round(ms * 1e6));
    this.h.recordValue(ns);
    this.counts[ns >= 2 ** 32 ? 32 : 31 - Math.clz32(ns)]!++;
  }

  summary(): LatencySummary {
    const h = this.h;
    const buckets: { lo: number; hi: number; count: number }[] = [];
    this.counts.forEach((count, k) => { if (count > 0) buckets.push({ lo: 2 ** k, hi: 2 ** (k + 1), count }); });
    return {
      count: h.totalCount,
      mean: h.mean,
      p50: h.getValueAtPercentile(50),
      p90: h.getValueAtPercentile(90),
      p99: h.getValueAtPercentile(99),
      max: h.maxValue,
      buckets,
    };
  }

  reset(): void {
    this.h.reset();
    this.counts.fill(0);
  }
}

export class FaultLatency {
  private readonly major = new Recorder();
  private readonly minor = new Recorder();
  private readonly stages = STAGES.map(() => new Recorder());
  private readonly handoffs = HANDOFFS.map(() => new Recorder());
  private spun = 0;

  /** Records a major fault from its marks (ms, from performance.now()): entry, sent, reply, mapped, resumed. */
  recordMajor(entry: number, sent: number, reply: number, mapped: number, resumed: number): void {
    this.major.record(resumed - entry);
    this.stages[0]!.record(sent - entry);
    this.stages[1]!.record(reply - sent);
    this.stages[2]!.record(mapped - reply);
    this.stages[3]!.record(resumed - mapped);
  }

  /** Records one read's hand-offs (ms, one clock): published, taken by the worker, completed, guest resumed; and whether the guest spun. */
  recordHandoff(published: number, taken: number, completed: number, resumed: number, spun: boolean): void {
    if (spun) this.spun++;
    this.handoffs[0]!.record(taken - published);
    this.handoffs[1]!.record(completed - taken);
    this.handoffs[2]!.record(resumed - completed);
  }

  recordMinor(entry: number, resumed: number): void {
    this.minor.record(resumed - entry);
  }

  summary(): FaultLatencyStats {
    const stages = Object.fromEntries(STAGES.map((name, i) => [name, this.stages[i]!.summary()])) as FaultLatencyStats['stages'];
    if (this.handoffs[0]!.h.totalCount === 0) return { major: this.major.summary(), minor: this.minor.summary(), stages };
    const handoffs = Object.fromEntries(HANDOFFS.map((name, i) => [name, this.handoffs[i]!.summary()])) as NonNullable<FaultLatencyStats['handoffs']>;
    return { major: this.major.summary(), minor: this.minor.summary(), stages, handoffs, spunWaits: this.spun / this.handoffs[0]!.h.totalCount };
  }

  reset(): void {
    this.major.reset();
    this.minor.reset();
    for (const r of this.stages) r.reset();
    for (const r of this.handoffs) r.reset();
    this.spun = 0;
  }
}
