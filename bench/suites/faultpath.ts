/**
 * @fileoverview Suite `faultpath`: what one fault costs. For the embedded store: the amortized
 * cost of a major fault on a random workload — (time at low local memory − all-local time) / major
 * faults, both from this run — and the runtime's latency histograms (`stats().latency`: whole major
 * fault, its stages entry → request sent → reply → mapped → resumed, and minor faults). Then the
 * server-loopback probe: a `farmem serve` child process (ws and tcp ports) and raw ws and TCP echo
 * child processes, the raw round trips measured first, then the same workload through the server
 * over ws:// and over tcp://, so each major-fault latency is compared against the raw round trip of
 * the same size and transport from the same run (one page and 64 KiB, sampled before and after the
 * runs). Through the server, `reply` is split into the I/O worker's hand-offs (worker wake → store →
 * guest wake, `stats().latency.handoffs`).
 */
import * as hdr from 'hdr-histogram-js';
import { histogramChart, stackedBarChart, type HistogramBucket, type StackDatum } from '../lib/charts.js';
import { ECHO_SERVER, RawClient, roundTrips, spawnServer, TCP_ECHO_SERVER, WsPackageClient } from '../lib/raw-ws.js';
import { loadFarmem, runFresh, workloadWithPattern, type Farmem, type RuntimeStats } from '../lib/farmem.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, skipped, type Suite, type SuiteContext, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';
import { repoRoot } from '../lib/repo-root.js';

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
  /** Through the I/O worker, the hand-offs inside `reply`: `{ 'worker wake': …, 'store': …, 'guest wake': … }`. */
  handoffs?: Record<string, LatencySummary>;
  /** With `handoffs`: the fraction of waits the guest spun through instead of parking. */
  spunWaits?: number;
}

/** One measured configuration of the fault path. */
export interface FaultPathMeasurement {
  /** `embedded`, `ws loopback`, `raw ws round trip`, … */
  config: string;
  majorFaults: number | null;
  /** Amortized ns per major fault (from end-to-end times), or null. */
  amortizedNs: number | null;
  latency: FaultLatencyStats | null;
  /** Fraction of major faults that found a free frame (no direct reclaim on the guest thread). */
  noDirectReclaim?: number;
}

export type FaultPathProbe = (ctx: SuiteContext, fm: Farmem) => Promise<FaultPathMeasurement[]>;

/** Round trips of `one()` one at a time (after a warm-up), as a latency summary in ns. */
async function sampleRoundTrips(n: number, one: () => Promise<unknown>): Promise<LatencySummary> {
  await roundTrips(Math.min(200, n), one);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 2 });
  for (const us of await roundTrips(n, one)) h.recordValue(Math.max(1, Math.round(us * 1e3)));
  return { count: h.totalCount, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), mean: h.mean };
}

/** Merges the samples before and after a run into one summary (count-weighted mean; p50/p99 of the two averaged). */
function both(a: LatencySummary, b: LatencySummary): LatencySummary {
  return { count: a.count + b.count, p50: (a.p50 + b.p50) / 2, p99: (a.p99 + b.p99) / 2, mean: ((a.mean ?? 0) * a.count + (b.mean ?? 0) * b.count) / (a.count + b.count) };
}

/** The transports a `farmem serve` is measured through, each against the raw round trip it rides on. */
const TRANSPORTS = [
  { name: 'ws', raw: 'ws' },
  { name: 'tcp', raw: 'tcp' },
] as const;

/**
 * Raw round trips (ws and plain TCP, one page and 64 KiB) sampled before and after, and between them
 * the workload through one `farmem serve` on loopback over ws:// and over tcp://, at the bench's page
 * size and at 64 KiB pages: every major fault is compared with the raw round trip of its own size
 * and transport from the same run. One page: the random workload (hashtable), 1/8 of `sizeBytes`
 * in `--quick`, so ~65k faults per transport. 64 KiB pages: a sequential scan with no prefetch over
 * `sizeBytes` × 8 (32 MiB quick: ~2,500 faults per run, every page faulted in each pass), since a
 * random workload of a few 64 KiB pages fits in the free-frame reserve and hardly faults. Each
 * page size is primed by one untimed run first.
 */
const serverLoopbackProbe: FaultPathProbe = async (ctx, fm) => {
  const root = repoRoot(import.meta.url);
  const pageSize = opt(ctx, 'pageSize', 4096);
  const token = 'faultpath-bench';
  const server = await spawnServer(root, [`${root}dist/host/cli/main.js`, 'serve', '--port', '0', '--tcp-port', '0', '--capacity', '2GiB', '--token', token],
    /listening on (ws:\/\/\S+ and tcp:\/\/\S+)\n/);
  const [wsUrl, tcpUrl] = server.url.split(' and ') as [string, string];
  const echo = await spawnServer(root, ['--input-type=module', '-e', ECHO_SERVER], /raw listening on (ws:\/\/\S+)/);
  const tcpEcho = await spawnServer(root, ['--input-type=module', '-e', TCP_ECHO_SERVER], /tcp listening on (tcp:\/\/\S+)/);
  const samples = ctx.quick ? 1000 : 5000;
  const sizes = [pageSize, 65536];
  try {
    /**
     * Raw ws, TCP and ws-package round trips for every size (reply = READ_OK frame of one page of
     * that size).
     */
    const raws = async () => {
      const out = new Map<string, LatencySummary>();
      for (const ps of sizes) {
        for (const [kind, url] of [['ws', echo.url], ['tcp', tcpEcho.url]] as const) {
          const c = new RawClient(url, 16 + ps, { hot: true });
          await c.open();
          out.set(`${kind} ${ps}`, await sampleRoundTrips(samples, () => c.request()));
          await c.close();
        }
        const pkg = new WsPackageClient(echo.url, 16 + ps, { hot: true });
        await pkg.open();
        out.set(`ws package ${ps}`, await sampleRoundTrips(samples, () => pkg.request()));
        pkg.close();
      }
      return out;
    };
    const before = await raws();
    const sizeBytes = opt(ctx, 'sizeBytes', ctx.quick ? 4 << 20 : 32 << 20);
    const random = opt<string | null>(ctx, 'workload', null) ?? workloadWithPattern(fm, 'random') ?? fm.workloads[0]!;
    const sequential = workloadWithPattern(fm, 'sequential') ?? random;
    const runs = new Map<string, Awaited<ReturnType<typeof runFresh>>>();
    for (const ps of sizes) {
      const [name, bytes] = ps === pageSize ? [random, sizeBytes / (ctx.quick ? 8 : 2)] : [sequential, sizeBytes * (ctx.quick ? 8 : 2)];
      // Priming, untimed: the server's slabs are touched once, so the kernel's first-touch faults
      // on fresh slab memory do not land on whichever transport is measured first (quick runs on
      // 2026-12-03, 64 KiB fault p50: ws:// 68 µs against tcp:// 41 µs without it, 43 against 37 with it).
      await runFresh(fm, name, { pageSize: ps, local: { fraction: opt(ctx, 'localPct', 25) / 100 }, prefetch: 'none', remote: { urls: [wsUrl], token } }, bytes, 1);
      for (const t of TRANSPORTS) {
        const url = t.name === 'ws' ? wsUrl : tcpUrl;
        runs.set(`${t.name} ${ps}`, await runFresh(fm, name, { pageSize: ps, local: { fraction: opt(ctx, 'localPct', 25) / 100 }, prefetch: 'none', latency: true, remote: { urls: [url], token } }, bytes, 1));
      }
    }
    const after = await raws();
    const out: FaultPathMeasurement[] = [];
    for (const ps of sizes) {
      const label = ps === pageSize ? '' : ` (${ps / 1024} KiB pages)`;
      out.push({ config: `raw ws round trip${label}`, majorFaults: null, amortizedNs: null, latency: { major: both(before.get(`ws ${ps}`)!, after.get(`ws ${ps}`)!) } });
      out.push({ config: `raw tcp round trip${label}`, majorFaults: null, amortizedNs: null, latency: { major: both(before.get(`tcp ${ps}`)!, after.get(`tcp ${ps}`)!) } });
      out.push({ config: `ws package client round trip${label}`, majorFaults: null, amortizedNs: null, latency: { major: both(before.get(`ws package ${ps}`)!, after.get(`ws package ${ps}`)!) } });
      for (const t of TRANSPORTS) {
        const m = runs.get(`${t.name} ${ps}`)!;
        out.push({
          config: `${t.name} loopback${label}`,
          majorFaults: m.stats.majorFaults ?? null,
          amortizedNs: null,
          latency: latencyOf(m.stats),
          noDirectReclaim: m.stats.majorFaults ? 1 - (Number(m.stats.directReclaims) || 0) / m.stats.majorFaults : 1,
        });
      }
    }
    return out;
  } finally {
    server.proc.kill('SIGTERM');
    echo.proc.kill('SIGTERM');
    tcpEcho.proc.kill('SIGTERM');
  }
};

/**
 * Major-fault latency through each transport over the raw round trip of the same size and transport,
 * same run (p50, p99), the fault over the other transport's raw round trip, raw ws over raw tcp, and
 * the `ws` package's client over the raw ws client.
 */
function faultsVersusRaw(measurements: FaultPathMeasurement[]): Record<string, number | null> {
  const get = (config: string) => measurements.find((m) => m.config === config);
  const out: Record<string, number | null> = {};
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
  for (const [key, label] of [['', ''], ['64K', ' (64 KiB pages)']] as const) {
    const rawWs = get(`raw ws round trip${label}`)?.latency?.major;
    const rawTcp = get(`raw tcp round trip${label}`)?.latency?.major;
    for (const t of TRANSPORTS) {
      const m = get(`${t.name} loopback${label}`);
      const major = m?.latency?.major;
      const own = t.raw === 'ws' ? rawWs : rawTcp;
      const Raw = t.raw === 'ws' ? 'Raw' : 'RawTcp';
      out[`${t.name}MajorOver${Raw}P50${key}`] = ratio(major?.p50, own?.p50);
      out[`${t.name}MajorOver${Raw}P99${key}`] = ratio(major?.p99, own?.p99);
      if (t.name === 'ws') out[`wsMajorOverTcpP50${key}`] = ratio(major?.p50, rawTcp?.p50);
      else out[`tcpMajorOverRawWsP50${key}`] = ratio(major?.p50, rawWs?.p50);
      if (key === '') out[`${t.name}ServedWithoutDirectReclaim`] = m?.noDirectReclaim ?? null;
    }
    out[`rawWsOverTcpP50${key}`] = ratio(rawWs?.p50, rawTcp?.p50);
    out[`wsPackageOverRawWsP50${key}`] = ratio(get(`ws package client round trip${label}`)?.latency?.major?.p50, rawWs?.p50);
  }
  return out;
}

/** Extra probes beyond the embedded store. */
export const FAULT_PATH_PROBES: FaultPathProbe[] = [serverLoopbackProbe];

function us(s: LatencySummary | undefined): number | null {
  return s ? s.p50 / 1e3 : null;
}

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
    const fm = await loadFarmem(); // RuntimeUnavailableError makes the runner skip the suite
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
      const m = await runFresh(fm, name, { pageSize: config.pageSize, local: { fraction: config.localPct / 100 }, prefetch: 'none', latency: true }, config.sizeBytes, config.seed);
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
      workerWakeP50Us: us(m.latency?.handoffs?.['worker wake']),
      storeP50Us: us(m.latency?.handoffs?.store),
      guestWakeP50Us: us(m.latency?.handoffs?.['guest wake']),
      spunWaitsPct: m.latency?.spunWaits === undefined ? null : 100 * m.latency.spunWaits,
    }));
    const charts = [];
    const stages: StackDatum[] = [];
    for (const m of measurements) {
      let i = 0;
      for (const [stage, s] of Object.entries(m.latency?.stages ?? {})) {
        // Through a server, `reply` is drawn as its hand-offs.
        const parts = stage === 'reply' && m.latency?.handoffs ? Object.entries(m.latency.handoffs) : [[stage, s] as const];
        for (const [name, p] of parts) stages.push({ category: m.config, stage: name, value: p.p50 / 1e3, order: i++ });
      }
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
        { key: 'workerWakeP50Us', title: 'Worker wake p50', unit: 'µs', digits: 2 },
        { key: 'storeP50Us', title: 'Store p50', unit: 'µs', digits: 2 },
        { key: 'guestWakeP50Us', title: 'Guest wake p50', unit: 'µs', digits: 2 },
        { key: 'spunWaitsPct', title: 'Waits spun', unit: '%', digits: 0 },
      ],
      rows,
      summary: {
        embeddedAmortizedUs: rows[0]!.amortizedUs ?? null,
        ...faultsVersusRaw(measurements),
      },
      warnings,
      charts,
    };
  },
};
