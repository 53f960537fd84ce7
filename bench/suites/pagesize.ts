/**
 * @fileoverview Suite `pagesize`: the I/O-amplification trade-off. A random workload (hash table)
 * and a sequential one (scan) at a fixed local-memory fraction, for page sizes from 256 B to 64 KiB:
 * bytes moved, major faults and time, the time as a slowdown over the all-local run at the same
 * page size measured in this run.
 */
import { lineChart } from '../lib/charts.js';
import { bytesMoved, loadFarmem, runFresh, workloadWithPattern, type Prefetcher } from '../lib/farmem.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, skipped, type Suite, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';

const ALL_SIZES = [256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const QUICK_SIZES = [256, 1024, 4096, 16384, 65536];

export const pagesizeSuite: Suite = {
  name: 'pagesize',
  description: SUITE_DESCRIPTIONS.pagesize,
  async run(ctx): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      sizeBytes: opt(ctx, 'sizeBytes', ctx.quick ? 2 << 20 : 16 << 20),
      reps: opt(ctx, 'reps', ctx.quick ? 1 : 3),
      /** Baseline repetitions (at least): it divides every ratio at its page size. */
      baselineReps: opt(ctx, 'baselineReps', 3),
      pageSizes: opt<number[]>(ctx, 'pageSizes', ctx.quick ? QUICK_SIZES : ALL_SIZES),
      localPct: opt(ctx, 'localPct', 25),
      prefetch: opt<Prefetcher>(ctx, 'prefetch', 'none'),
      seed: 1,
      workloads: opt<string[] | null>(ctx, 'workloads', null),
    };
    const fm = await loadFarmem(); // RuntimeUnavailableError makes the runner skip the suite
    const names = config.workloads ?? [workloadWithPattern(fm, 'random'), workloadWithPattern(fm, 'sequential')].filter((n): n is string => n !== null);
    if (names.length === 0) return skipped(`no random or sequential workload among: ${fm.workloads.join(', ')}`, config);
    config.workloads = [...new Set(names)];
    const rows: Row[] = [];
    const warnings: string[] = [];
    ctx.progress.start('pagesize', config.workloads.length * config.pageSizes.length * (config.reps + Math.max(config.reps, config.baselineReps)));
    for (const name of config.workloads) {
      // Untimed priming instance (see sweep.ts).
      await runFresh(fm, name, { pageSize: 4096, local: { fraction: 1 }, prefetch: config.prefetch }, config.sizeBytes, config.seed);
      for (const pageSize of config.pageSizes) {
        const base: number[] = [];
        const times: number[] = [];
        let expected = '';
        let last = null;
        let same = true;
        for (let r = 0; r < Math.max(config.reps, config.baselineReps); r++) {
          const b = await runFresh(fm, name, { pageSize, local: { fraction: 1 }, prefetch: config.prefetch }, config.sizeBytes, config.seed);
          base.push(b.ns);
          expected = b.result;
          ctx.progress.tick(`${name} ${pageSize} B all-local`);
          if (r >= config.reps) continue;
          last = await runFresh(fm, name, { pageSize, local: { fraction: config.localPct / 100 }, prefetch: config.prefetch }, config.sizeBytes, config.seed);
          times.push(last.ns);
          if (last.result !== expected) same = false;
          ctx.progress.tick(`${name} ${pageSize} B ${config.localPct}%`);
        }
        if (!same) warnings.push(`${name} at ${pageSize} B pages: result differs from the all-local run`);
        const s = last!.stats;
        rows.push({
          workload: name,
          pageSize,
          ms: median(times) / 1e6,
          allLocalMs: median(base) / 1e6,
          slowdown: median(times) / median(base),
          majorFaults: s.majorFaults ?? null,
          bytesIn: s.bytesIn ?? null,
          bytesOut: s.bytesOut ?? null,
          mibMoved: bytesMoved(s) / 2 ** 20,
          amplification: bytesMoved(s) / config.sizeBytes,
          identical: same,
        });
      }
    }
    ctx.progress.stop();
    const sub = `${ctx.subtitle} · ${config.sizeBytes / 2 ** 20} MiB at ${config.localPct}% local, prefetch ${config.prefetch}`;
    const series = (key: string) => rows.map((r) => ({ x: r.pageSize as number, y: Math.max(r[key] as number, 1e-3), series: r.workload as string }));
    const common = { subtitle: sub, xTitle: 'Page size (log scale)', legendTitle: 'Workload', logX: true, xValues: config.pageSizes, xFormat: 'bytes' as const };
    return {
      status: 'ok',
      config,
      baseline: `the same workload with 100% local memory at the same page size, this run`,
      columns: [
        { key: 'workload', title: 'Workload' },
        { key: 'pageSize', title: 'Page', unit: 'B' },
        { key: 'ms', title: 'Time', unit: 'ms', digits: 1 },
        { key: 'slowdown', title: 'Slowdown', unit: 'x', digits: 2 },
        { key: 'majorFaults', title: 'Major' },
        { key: 'mibMoved', title: 'Moved', unit: 'MiB', digits: 1 },
        { key: 'amplification', title: 'Moved / size', unit: 'x', digits: 2 },
        { key: 'identical', title: 'Same result' },
      ],
      rows,
      summary: {},
      warnings,
      charts: [
        { file: 'pagesize-slowdown.svg', spec: lineChart({ ...common, title: 'Page size: slowdown vs all-local', yTitle: 'Slowdown vs all-local (x, log scale)', logY: true, reference: 1, data: series('slowdown') }) },
        { file: 'pagesize-bytes.svg', spec: lineChart({ ...common, title: 'Page size: bytes moved to and from the store', yTitle: 'Bytes moved (MiB, log scale)', logY: true, data: series('mibMoved') }) },
        { file: 'pagesize-faults.svg', spec: lineChart({ ...common, title: 'Page size: major faults', yTitle: 'Major faults (count, log scale)', logY: true, data: series('majorFaults') }) },
      ],
    };
  },
};
