/**
 * @fileoverview Suite `overhead`: what instrumentation costs when every page is resident. Each
 * workload runs as the original module and under farmem with 100% local memory, in the same
 * process, alternating original/instrumented repetitions after a warm-up so drift hits both alike.
 * Reports the median time of each, the ratio of medians, the min–max of the per-pair ratios, rme,
 * and the geomean ratio over the suite (target ≤ 1.3x, DESIGN.md).
 *
 * Clock: by default the process's CPU time (user + system) of each call, not wall time: on a
 * shared machine, wall time includes waits in the run queue that hit one side of a pair and not the
 * other (measured here with a load average of 15–20 on 2 cores: wall-time ratios of one workload
 * varied 0.3–2x between runs, CPU-time ratios within ~10%). The runtime does no work on other
 * threads with all pages resident (no reclaimer, no I/O worker), so CPU time is the guest's.
 * `clock: 'wall'` uses wall time; wall medians are reported either way.
 *
 * Ablation: each instrumenter optimization is also switched off alone (`optimize: { chunk: false }`,
 * one column per optimization), timed in the same rounds as the original and the all-on build, so
 * every column shares one baseline (`ablation: false` skips it).
 */
import { OPTIMIZATION_NAMES } from '../../host/instrument/optimizations.js';
import { barChart } from '../lib/charts.js';
import { loadFarmem } from '../lib/farmem.js';
import { geomean, grainWarning, summarize } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, type Suite, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';

const TARGET = 1.3;

export const overheadSuite: Suite = {
  name: 'overhead',
  description: SUITE_DESCRIPTIONS.overhead,
  async run(ctx): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      /** null = each workload's catalog `defaultSize` (a quarter of it with --quick). */
      sizeBytes: opt<number | null>(ctx, 'sizeBytes', null),
      warmup: opt(ctx, 'warmup', ctx.quick ? 2 : 3),
      reps: opt(ctx, 'reps', ctx.quick ? 5 : 11),
      pageSize: opt(ctx, 'pageSize', 4096),
      local: '100%',
      prefetch: 'none',
      seed: 1,
      workloads: opt<string[] | null>(ctx, 'workloads', null),
      ablation: opt(ctx, 'ablation', true),
      clock: opt<'cpu' | 'wall'>(ctx, 'clock', 'cpu'),
    };
    const time = (r: { ns: number; cpuNs: number }) => (config.clock === 'cpu' ? r.cpuNs : r.ns);
    const variants = config.ablation ? OPTIMIZATION_NAMES.map((n) => ({ key: `no_${n}`, title: `no-${n}`, optimize: { [n]: false } })) : [];
    const fm = await loadFarmem(); // RuntimeUnavailableError makes the runner skip the suite
    const names = config.workloads ?? fm.workloads;
    config.workloads = names;
    const rows: Row[] = [];
    const warnings: string[] = [];
    ctx.progress.start('overhead', names.length * (config.warmup + config.reps));
    for (const name of names) {
      const size = config.sizeBytes ?? (ctx.quick ? Math.max(65536, fm.info(name).defaultSize / 4) : fm.info(name).defaultSize);
      const orig = await fm.original(name);
      const inst = await fm.farmem(name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' });
      const ablated = await Promise.all(variants.map((v) => fm.farmem(name, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none', optimize: v.optimize })));
      try {
        let identical = true;
        const o: number[] = [];
        const i: number[] = [];
        const pairs: number[] = [];
        const ab: number[][] = variants.map(() => []);
        const wall: number[][] = [[], []];
        for (let k = 0; k < config.warmup + config.reps; k++) {
          const a = orig.run(size, config.seed);
          const b = inst.run(size, config.seed);
          if (a.result !== b.result) identical = false;
          const c = ablated.map((r) => r.run(size, config.seed));
          for (const x of c) if (x.result !== a.result) identical = false;
          if (k >= config.warmup) {
            o.push(time(a));
            i.push(time(b));
            pairs.push(time(b) / time(a));
            c.forEach((x, v) => ab[v]!.push(time(x)));
            wall[0]!.push(a.ns);
            wall[1]!.push(b.ns);
          }
          ctx.progress.tick(name);
        }
        const so = summarize(o);
        const si = summarize(i);
        const sp = summarize(pairs);
        for (const w of [grainWarning(`${name} original`, o), grainWarning(`${name} instrumented`, i)]) if (w) warnings.push(w);
        if (!identical) warnings.push(`${name}: instrumented result differs from the original — a correctness bug, ratio not trustworthy`);
        rows.push({
          workload: name,
          sizeBytes: size,
          originalMs: so.median / 1e6,
          instrumentedMs: si.median / 1e6,
          wallRatio: summarize(wall[1]!).median / summarize(wall[0]!).median,
          ratio: si.median / so.median,
          ratioMin: sp.min,
          ratioMax: sp.max,
          rmeOriginal: so.rme,
          rmeInstrumented: si.rme,
          ...Object.fromEntries(variants.map((v, n) => [v.key, summarize(ab[n]!).median / so.median])),
          identical,
        });
      } finally {
        for (const r of ablated) await r.close();
        await inst.close();
        await orig.close();
      }
    }
    ctx.progress.stop();
    const g = geomean(rows.map((r) => r.ratio as number));
    const ablationGeomeans = Object.fromEntries(variants.map((v) => [`geomean_${v.key}`, geomean(rows.map((r) => r[v.key] as number))]));
    return {
      status: 'ok',
      config,
      baseline: `the original (uninstrumented) module, run alternately with the instrumented one in the same process; ${config.clock === 'cpu' ? 'process CPU time' : 'wall time'} per call`,
      columns: [
        { key: 'workload', title: 'Workload' },
        { key: 'originalMs', title: `Original (${config.clock})`, unit: 'ms', digits: 2 },
        { key: 'instrumentedMs', title: `farmem (${config.clock})`, unit: 'ms', digits: 2 },
        { key: 'ratio', title: 'Ratio', unit: 'x', digits: 2 },
        { key: 'ratioMin', title: 'Min', unit: 'x', digits: 2 },
        { key: 'ratioMax', title: 'Max', unit: 'x', digits: 2 },
        { key: 'rmeOriginal', title: 'rme orig', unit: '%', digits: 1 },
        { key: 'rmeInstrumented', title: 'rme farmem', unit: '%', digits: 1 },
        ...variants.map((v) => ({ key: v.key, title: v.title, unit: 'x', digits: 2 })),
        { key: 'wallRatio', title: 'Wall ratio', unit: 'x', digits: 2 },
        { key: 'identical', title: 'Same result' },
      ],
      rows,
      summary: {
        geomeanRatio: g,
        target: TARGET,
        meetsTarget: g <= TARGET,
        worst: Math.max(...rows.map((r) => r.ratio as number)),
        ...ablationGeomeans,
      },
      warnings,
      charts: [{
        file: 'overhead.svg',
        spec: barChart({
          title: `Instrumentation overhead, all pages resident (geomean ${g.toFixed(2)}x)`,
          subtitle: `${ctx.subtitle} · ${config.sizeBytes ? `${config.sizeBytes / 2 ** 20} MiB` : 'default sizes'} · median of ${config.reps}, bars = min–max of paired ratios`,
          xTitle: 'Workload',
          yTitle: 'Instrumented / original time (x)',
          data: rows.map((r) => ({ label: r.workload as string, value: r.ratio as number, lo: r.ratioMin as number, hi: r.ratioMax as number })),
          references: [{ value: 1, label: 'original' }, { value: TARGET, label: `target ${TARGET}x` }],
        }),
      }],
    };
  },
};
