/**
 * @fileoverview Suite `faultpath`: what one fault costs. Today it measures, for the embedded store,
 * the amortized cost of a major fault on a random workload — (time at low local memory − all-local
 * time) / major faults, both from this run — and charts whatever latency histograms the runtime's
 * `stats()` exposes.
 *
 * HOOK for the runtime owner: the fault-path histograms (entry → request sent → reply → mapped →
 * resumed, minor-fault latency) and the ws-loopback store with its raw ws round trip. Either
 *  - make `fm.stats().latency` a `FaultLatencyStats` (below) and this suite charts it as is, or
 *  - add a `FaultPathProbe` to `FAULT_PATH_PROBES` (e.g. one that starts `farmem serve` on an
 *    ephemeral loopback port, measures a raw ws round trip of one page, then runs the workload
 *    through `--store ws://…`): each probe returns rows of the same shape, one per configuration.
 */
import { histogramChart, stackedBarChart, type HistogramBucket, type StackDatum } from '../lib/charts.js';
import { loadFarmem, runFresh, workloadWithPattern, RuntimeUnavailableError, type Farmem, type RuntimeStats } from '../lib/farmem.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, skipped, type Suite, type SuiteContext, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';

/** Percentile summary of one latency histogram, nanoseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  mean?: number;
  /** Optional buckets for the histogram chart. */
  buckets?: Array<{ lo: number; hi: number; count: number }>;
}

/** The shape this suite reads from `fm.stats().latency` when the runtime provides it. */
export interface FaultLatencyStats {
  /** Whole major fault, entry to resumed. */
  major?: LatencySummary;
  /** Minor fault (map a resident page). */
  minor?: LatencySummary;
  /** Stages of the major fault in path order: `{ 'request sent': …, 'reply': …, 'mapped': …, 'resumed': … }`. */
  stages?: Record<string, LatencySummary>;
}

/** One measured configuration of the fault path. */
export interface FaultPathMeasurement {
  /** `embedded`, `ws loopback`, `raw ws round trip`, … */
  config: string;
  majorFaults: number | null;
  /** Amortized ns per major fault (from end-to-end times), or null. */
  amortizedNs: number | null;
  latency: FaultLatencyStats | null;
}

export type FaultPathProbe = (ctx: SuiteContext, fm: Farmem) => Promise<FaultPathMeasurement[]>;

/** Extra probes (ws loopback, raw ws round trip); see the header. */
export const FAULT_PATH_PROBES: FaultPathProbe[] = [];

function latencyOf(s: RuntimeStats): FaultLatencyStats | null {
  const l = s.latency as FaultLatencyStats | undefined;
  return l && typeof l === 'object' ? l : null;
}

export const faultpathSuite: Suite = {
  name: 'faultpath',
  description: SUITE_DESCRIPTIONS.faultpath,
  async run(ctx): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      sizeBytes: opt(ctx, 'sizeBytes', ctx.quick ? 4 << 20 : 32 << 20),
      reps: opt(ctx, 'reps', ctx.quick ? 1 : 3),
      pageSize: opt(ctx, 'pageSize', 4096),
      localPct: opt(ctx, 'localPct', 25),
      seed: 1,
      workload: opt<string | null>(ctx, 'workload', null),
      probes: FAULT_PATH_PROBES.length,
    };
    let fm;
    try {
      fm = await loadFarmem();
    } catch (err) {
      if (err instanceof RuntimeUnavailableError) return skipped(err.message, config);
      throw err;
    }
    const name = config.workload ?? workloadWithPattern(fm, 'random') ?? fm.workloads[0];
    if (!name) return skipped('no workloads available', config);
    config.workload = name;
    ctx.progress.start('faultpath', config.reps * 2 + FAULT_PATH_PROBES.length);
    await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' }, config.sizeBytes, config.seed); // priming, untimed
    const base: number[] = [];
    const low: number[] = [];
    let stats: RuntimeStats = {};
    for (let r = 0; r < config.reps; r++) {
      base.push((await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' }, config.sizeBytes, config.seed)).ns);
      ctx.progress.tick('all-local');
      const m = await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: config.localPct / 100 }, prefetch: 'none' }, config.sizeBytes, config.seed);
      low.push(m.ns);
      stats = m.stats;
      ctx.progress.tick(`${config.localPct}% local`);
    }
    const major = stats.majorFaults ?? 0;
    const measurements: FaultPathMeasurement[] = [{
      config: 'embedded',
      majorFaults: major,
      amortizedNs: major > 0 ? Math.max(0, median(low) - median(base)) / major : null,
      latency: latencyOf(stats),
    }];
    for (const probe of FAULT_PATH_PROBES) {
      measurements.push(...await probe(ctx, fm));
      ctx.progress.tick('probe');
    }
    ctx.progress.stop();

    const rows: Row[] = measurements.map((m) => ({
      config: m.config,
      majorFaults: m.majorFaults,
      amortizedUs: m.amortizedNs === null ? null : m.amortizedNs / 1e3,
      majorP50Us: m.latency?.major ? m.latency.major.p50 / 1e3 : null,
      majorP99Us: m.latency?.major ? m.latency.major.p99 / 1e3 : null,
      minorP50Us: m.latency?.minor ? m.latency.minor.p50 / 1e3 : null,
    }));
    const charts = [];
    const stages: StackDatum[] = [];
    for (const m of measurements) {
      let i = 0;
      for (const [stage, s] of Object.entries(m.latency?.stages ?? {})) stages.push({ category: m.config, stage, value: s.p50 / 1e3, order: i++ });
    }
    if (stages.length > 0) {
      charts.push({
        file: 'faultpath-stages.svg',
        spec: stackedBarChart({ title: 'Major fault: time per stage (p50)', subtitle: ctx.subtitle, xTitle: 'Store', yTitle: 'Latency (µs, p50 per stage)', legendTitle: 'Stage', data: stages }),
      });
    }
    const buckets: HistogramBucket[] = [];
    for (const m of measurements) for (const b of m.latency?.major?.buckets ?? []) buckets.push({ lo: b.lo / 1e3, hi: b.hi / 1e3, count: b.count, series: m.config });
    if (buckets.length > 0) {
      charts.push({
        file: 'faultpath-major.svg',
        spec: histogramChart({ title: 'Major-fault latency', subtitle: ctx.subtitle, xTitle: 'Latency (µs, log scale)', yTitle: 'Faults (count)', logX: true, legendTitle: 'Store', data: buckets }),
      });
    }
    const warnings = measurements.some((m) => m.latency) ? [] : ['the runtime exposes no fault latency histograms yet (stats().latency); only amortized costs are reported'];
    return {
      status: 'ok',
      config,
      baseline: `amortized cost = (time at ${config.localPct}% local − all-local time of the same workload in this run) / major faults`,
      columns: [
        { key: 'config', title: 'Store' },
        { key: 'majorFaults', title: 'Major faults' },
        { key: 'amortizedUs', title: 'Amortized', unit: 'µs/fault', digits: 2 },
        { key: 'majorP50Us', title: 'Major p50', unit: 'µs', digits: 2 },
        { key: 'majorP99Us', title: 'Major p99', unit: 'µs', digits: 2 },
        { key: 'minorP50Us', title: 'Minor p50', unit: 'µs', digits: 2 },
      ],
      rows,
      summary: { embeddedAmortizedUs: rows[0]!.amortizedUs ?? null },
      warnings,
      charts,
    };
  },
};
