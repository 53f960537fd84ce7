/**
 * @fileoverview Suite `sweep`: the hockey stick. Every workload × prefetcher (none, readahead,
 * stride, leap) × local memory (100, 75, 50, 25, 10% of the guest's memory): time as a slowdown
 * over the all-local run (100% local, no prefetcher) of the same workload measured in this run,
 * plus major faults and prefetch accuracy/coverage. One line chart per workload.
 */
import { lineChart } from '../lib/charts.js';
import { loadFarmem, PREFETCHERS, prefetchQuality, runFresh, type Prefetcher } from '../lib/farmem.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, type Suite, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';

export const sweepSuite: Suite = {
  name: 'sweep',
  description: SUITE_DESCRIPTIONS.sweep,
  async run(ctx): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      /** null = each workload's catalog `defaultSize` (~0.1–1 s all-local). */
      sizeBytes: opt<number | null>(ctx, 'sizeBytes', ctx.quick ? 2 << 20 : null),
      reps: opt(ctx, 'reps', ctx.quick ? 1 : 3),
      /** The baseline divides every ratio of its workload, so it gets at least 3 repetitions. */
      baselineReps: opt(ctx, 'baselineReps', 3),
      pageSize: opt(ctx, 'pageSize', 4096),
      localPercents: opt<number[]>(ctx, 'localPercents', [100, 75, 50, 25, 10]),
      prefetchers: opt<Prefetcher[]>(ctx, 'prefetchers', [...PREFETCHERS]),
      seed: 1,
      workloads: opt<string[] | null>(ctx, 'workloads', null),
    };
    const fm = await loadFarmem(); // RuntimeUnavailableError makes the runner skip the suite
    const names = config.workloads ?? fm.workloads;
    config.workloads = names;
    const rows: Row[] = [];
    const warnings: string[] = [];
    const charts = [];
    const perWorkload = 1 + config.prefetchers.length * config.localPercents.length;
    ctx.progress.start('sweep', names.length * (perWorkload * config.reps + Math.max(0, config.baselineReps - config.reps)));
    for (const name of names) {
      const size = config.sizeBytes ?? fm.info(name).defaultSize;
      // Baseline: all pages local, no prefetcher, same size and page size, this run. One untimed
      // instance first: the first instance after switching workloads runs measurably slower
      // (instrumentation cache fill, GC of the previous workload's memories).
      await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' }, size, config.seed);
      const base: number[] = [];
      let expected = '';
      for (let r = 0; r < Math.max(config.reps, config.baselineReps); r++) {
        const m = await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' }, size, config.seed);
        base.push(m.ns);
        expected = m.result;
        ctx.progress.tick(`${name} all-local`);
      }
      const baseNs = median(base);
      for (const prefetch of config.prefetchers) {
        for (const pct of config.localPercents) {
          const times: number[] = [];
          let last = null;
          let same = true;
          for (let r = 0; r < config.reps; r++) {
            last = await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: pct / 100 }, prefetch }, size, config.seed);
            times.push(last.ns);
            if (last.result !== expected) same = false;
            ctx.progress.tick(`${name} ${prefetch} ${pct}%`);
          }
          if (!same) warnings.push(`${name} ${prefetch} ${pct}%: result differs from the all-local run`);
          const s = last!.stats;
          const q = prefetchQuality(s);
          const ns = median(times);
          rows.push({
            workload: name,
            sizeBytes: size,
            prefetch,
            localPct: pct,
            ms: ns / 1e6,
            slowdown: ns / baseNs,
            majorFaults: s.majorFaults ?? null,
            minorFaults: s.minorFaults ?? null,
            evictions: s.evictions ?? null,
            prefetchIssued: s.prefetch?.issued ?? null,
            prefetchHits: s.prefetch?.hits ?? null,
            accuracy: q.accuracy,
            coverage: q.coverage,
            identical: same,
          });
        }
      }
      const mine = rows.filter((r) => r.workload === name);
      charts.push({
        file: `sweep-${name}.svg`,
        spec: lineChart({
          title: `${name}: slowdown vs local memory`,
          subtitle: `${ctx.subtitle} · ${size / 2 ** 20} MiB, ${config.pageSize} B pages · all-local = ${(baseNs / 1e6).toFixed(1)} ms`,
          xTitle: 'Local memory (% of guest memory)',
          yTitle: 'Slowdown vs all-local (x, log scale)',
          legendTitle: 'Prefetcher',
          logY: true,
          reference: 1,
          xDomain: [0, 100],
          data: mine.map((r) => ({ x: r.localPct as number, y: r.slowdown as number, series: r.prefetch as string })),
        }),
      });
    }
    ctx.progress.stop();
    const at = (w: string | null, p: string, pct: number) => rows.find((r) => r.workload === w && r.prefetch === p && r.localPct === pct);
    const seq = names.find((n) => fm.info(n).pattern === 'sequential') ?? null;
    const leap50 = at(seq, 'leap', 50);
    const leap25 = at(seq, 'leap', 25);
    const none25 = at(seq, 'none', 25);
    return {
      status: 'ok',
      config,
      baseline: 'each workload with 100% local memory and no prefetcher, same size and page size, median of max(reps, baselineReps) runs in this run',
      columns: [
        { key: 'workload', title: 'Workload' },
        { key: 'prefetch', title: 'Prefetch' },
        { key: 'localPct', title: 'Local', unit: '%' },
        { key: 'ms', title: 'Time', unit: 'ms', digits: 1 },
        { key: 'slowdown', title: 'Slowdown', unit: 'x', digits: 2 },
        { key: 'majorFaults', title: 'Major' },
        { key: 'prefetchIssued', title: 'Pf issued' },
        { key: 'accuracy', title: 'Accuracy', digits: 2 },
        { key: 'coverage', title: 'Coverage', digits: 2 },
        { key: 'identical', title: 'Same result' },
      ],
      rows,
      summary: {
        sequentialWorkload: seq,
        leapSlowdownSeq50: (leap50?.slowdown as number | undefined) ?? null,
        leapSpeedupOverNoneSeq25: leap25 && none25 ? (none25.ms as number) / (leap25.ms as number) : null,
        leapCoverageSeq50: (leap50?.coverage as number | null | undefined) ?? null,
        leapAccuracySeq50: (leap50?.accuracy as number | null | undefined) ?? null,
      },
      warnings,
      charts,
    };
  },
};
