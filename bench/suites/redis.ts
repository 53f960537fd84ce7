/**
 * @fileoverview Suite `redis`: farmem paging to Redis, against baselines from the same run.
 *
 * - Latency: the raw round trip of one page — `GET` of a page-sized value, one at a time, on a bare
 *   RESP socket (bench/lib/raw-redis.ts) and through the store's own client (ioredis, client.ts) —
 *   then a random workload at `localPct` local through a standalone Redis, a 3-shard cluster and a
 *   `farmem serve`, with the runtime's major-fault histograms. Ratio: major-fault p50 / raw GET p50.
 * - Throughput: a sequential scan at `localPct` local with the leap prefetcher through the same
 *   three stores and all-local, reported as MB/s of pages fetched and as time vs `farmem serve`.
 *
 * Servers are real child processes on loopback (bench/lib/redis-server.ts, `farmem serve`); the
 * machine's own Redis service is never used. Skipped when redis-server is not installed.
 */
import * as hdr from 'hdr-histogram-js';
import { connectRedis } from '../../host/store/redis/client.js';
import { parseRedisUrl } from '../../host/store/redis/url.js';
import { barChart, type BarDatum } from '../lib/charts.js';
import { loadFarmem, runFresh, workloadWithPattern, type Farmem, type InstantiateOptions, type RuntimeStats } from '../lib/farmem.js';
import { RawRedis } from '../lib/raw-redis.js';
import { redisMissing, startRedis, type RedisServers } from '../lib/redis-server.js';
import { roundTrips, spawnServer } from '../lib/raw-ws.js';
import type { Row } from '../lib/results.js';
import { median } from '../lib/stats.js';
import { opt, skipped, type Suite, type SuiteContext, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';
import { repoRoot } from '../lib/repo-root.js';

interface Percentiles {
  p50Us: number;
  p99Us: number;
}

/** p50/p99 in µs of samples in µs. */
function percentiles(samplesUs: readonly number[]): Percentiles {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60e9, numberOfSignificantValueDigits: 2 });
  for (const us of samplesUs) h.recordValue(Math.max(1, Math.round(us * 1e3)));
  return { p50Us: h.getValueAtPercentile(50) / 1e3, p99Us: h.getValueAtPercentile(99) / 1e3 };
}

function majorOf(s: RuntimeStats): Percentiles | null {
  const major = (s.latency as { major?: { p50: number; p99: number; count: number } } | undefined)?.major;
  return major && major.count > 0 ? { p50Us: major.p50 / 1e3, p99Us: major.p99 / 1e3 } : null;
}

/** Sequential one-page GETs: on a bare socket, and through ioredis (the store's client). */
async function rawGets(url: string, pageSize: number, samples: number): Promise<{ socket: Percentiles; client: Percentiles }> {
  const endpoint = parseRedisUrl(url);
  const node = endpoint.nodes[0]!;
  const raw = await RawRedis.connect(node.host, node.port);
  const conn = await connectRedis(endpoint, 5000);
  try {
    const get = await raw.prepareGet('farmem-bench-page', Buffer.alloc(pageSize, 7), endpoint.password);
    await roundTrips(500, () => raw.send(get)); // warm up
    const socket = percentiles(await roundTrips(samples, () => raw.send(get)));
    await roundTrips(500, () => conn.get('farmem-bench-page'));
    const client = percentiles(await roundTrips(samples, () => conn.get('farmem-bench-page')));
    await conn.unlink(['farmem-bench-page']);
    return { socket, client };
  } finally {
    raw.close();
    await conn.close();
  }
}

const COLUMNS = ['measure', 'store', 'p50Us', 'p99Us', 'overRawGet', 'timeMs', 'mbPerS', 'vsServe', 'vsAllLocal', 'majorFaults'] as const;

/** A row with every column (null where this measure has no value). */
function row(values: Partial<Record<(typeof COLUMNS)[number], string | number | null>>): Row {
  const out: Row = {};
  for (const key of COLUMNS) out[key] = values[key] ?? null;
  return out;
}

interface Store {
  name: string;
  options: Pick<InstantiateOptions, 'redis' | 'remote'>;
}

/** Median of `reps` timed runs (and the stats of the last). */
async function timed(fm: Farmem, name: string, options: InstantiateOptions, size: number, reps: number): Promise<{ ns: number; stats: RuntimeStats }> {
  const ns: number[] = [];
  let stats: RuntimeStats = {};
  for (let r = 0; r < reps; r++) {
    const m = await runFresh(fm, name, options, size, 1);
    ns.push(m.ns);
    stats = m.stats;
  }
  return { ns: median(ns), stats };
}

export const redisSuite: Suite = {
  name: 'redis',
  description: SUITE_DESCRIPTIONS.redis,
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      pageSize: opt(ctx, 'pageSize', 4096),
      localPct: opt(ctx, 'localPct', 25),
      latencyWorkload: opt<string | null>(ctx, 'workload', null),
      // Random at 25% local: nearly every access past the first quarter is a fault, so keep it small.
      latencyBytes: opt(ctx, 'sizeBytes', ctx.quick ? 256 << 10 : 1 << 20),
      scanBytes: opt(ctx, 'scanBytes', ctx.quick ? 8 << 20 : 32 << 20),
      reps: opt(ctx, 'reps', ctx.quick ? 1 : 3),
      getSamples: opt(ctx, 'getSamples', ctx.quick ? 2000 : 10000),
      shards: 3,
      scanPrefetch: 'leap',
    };
    const missing = redisMissing();
    if (missing) return skipped(missing, config);
    const fm = await loadFarmem();
    const latencyWorkload = config.latencyWorkload ?? workloadWithPattern(fm, 'random') ?? fm.workloads[0]!;
    config.latencyWorkload = latencyWorkload;
    const root = repoRoot(import.meta.url); // `farmem serve` runs from dist/ below it
    const token = 'redis-bench';
    ctx.progress.start('redis', 4 + 3 * config.reps * 2);
    let standalone: RedisServers | null = null;
    let cluster: RedisServers | null = null;
    let serve: Awaited<ReturnType<typeof spawnServer>> | null = null;
    try {
      standalone = await startRedis();
      cluster = await startRedis({ cluster: config.shards });
      serve = await spawnServer(root, [`${root}dist/host/cli/main.js`, 'serve', '--port', '0', '--capacity', '2GiB', '--token', token], /listening on (ws:\/\/\S+)/);
      ctx.progress.tick('servers up');
      const stores: Store[] = [
        { name: 'Redis', options: { redis: { url: standalone.url } } },
        { name: `Redis Cluster (${config.shards} shards)`, options: { redis: { url: cluster.url } } },
        { name: 'farmem serve', options: { remote: { urls: [serve.url], token } } },
      ];

      const gets = await rawGets(standalone.url, config.pageSize, config.getSamples);
      ctx.progress.tick('raw GET');
      const rows: Row[] = [
        row({ measure: 'raw GET of one page (socket)', store: 'Redis', p50Us: gets.socket.p50Us, p99Us: gets.socket.p99Us, overRawGet: 1 }),
        row({ measure: 'GET of one page (ioredis)', store: 'Redis', p50Us: gets.client.p50Us, p99Us: gets.client.p99Us, overRawGet: gets.client.p50Us / gets.socket.p50Us }),
      ];
      const latency = new Map<string, Percentiles | null>();
      for (const s of stores) {
        const { stats } = await timed(fm, latencyWorkload, { pageSize: config.pageSize, local: { fraction: config.localPct / 100 }, prefetch: 'none', latency: true, ...s.options }, config.latencyBytes, config.reps);
        const major = majorOf(stats);
        latency.set(s.name, major);
        rows.push(row({
          measure: `major fault (${latencyWorkload}, ${config.localPct}% local)`, store: s.name,
          p50Us: major?.p50Us ?? null, p99Us: major?.p99Us ?? null, overRawGet: major ? major.p50Us / gets.socket.p50Us : null,
          majorFaults: stats.majorFaults ?? null,
        }));
        ctx.progress.tick(`latency ${s.name}`);
      }

      const scan = 'seqscan';
      const base = await timed(fm, scan, { pageSize: config.pageSize, local: { fraction: 1 }, prefetch: 'none' }, config.scanBytes, config.reps);
      ctx.progress.tick('scan all-local');
      const scans = new Map<string, { ns: number; stats: RuntimeStats }>();
      for (const s of stores) {
        scans.set(s.name, await timed(fm, scan, { pageSize: config.pageSize, local: { fraction: config.localPct / 100 }, prefetch: 'leap', ...s.options }, config.scanBytes, config.reps));
        ctx.progress.tick(`scan ${s.name}`);
      }
      const serveNs = scans.get('farmem serve')!.ns;
      for (const s of stores) {
        const m = scans.get(s.name)!;
        rows.push(row({
          measure: `sequential scan (${config.localPct}% local, leap)`, store: s.name,
          timeMs: m.ns / 1e6, mbPerS: ((m.stats.bytesIn ?? 0) / 1e6) / (m.ns / 1e9), vsServe: m.ns / serveNs, vsAllLocal: m.ns / base.ns,
          majorFaults: m.stats.majorFaults ?? null,
        }));
      }
      ctx.progress.stop();

      // p50 only: p99s here reach milliseconds on a shared machine and would flatten the bars (they are in the table).
      const short = (store: unknown) => (store === 'Redis' ? 'Redis' : store === 'farmem serve' ? 'serve' : 'cluster');
      const latencyBars: BarDatum[] = rows.filter((r) => typeof r.p50Us === 'number').map((r, i) => ({
        label: i === 0 ? 'raw GET (socket)' : i === 1 ? 'GET (ioredis)' : `fault: ${short(r.store)}`,
        value: r.p50Us as number,
      }));
      const scanBars: BarDatum[] = stores.map((s) => {
        const m = scans.get(s.name)!;
        return { label: short(s.name), value: ((m.stats.bytesIn ?? 0) / 1e6) / (m.ns / 1e9) };
      });
      const standaloneMajor = latency.get('Redis');
      const clusterMajor = latency.get(stores[1]!.name);
      return {
        status: 'ok',
        config,
        baseline: 'raw GET of one page on a bare RESP socket (latency) and farmem serve (scan time), both measured in this run',
        columns: [
          { key: 'measure', title: 'Measure' },
          { key: 'store', title: 'Store' },
          { key: 'p50Us', title: 'p50', unit: 'µs', digits: 1 },
          { key: 'p99Us', title: 'p99', unit: 'µs', digits: 1 },
          { key: 'overRawGet', title: 'p50 / raw GET', unit: 'x', digits: 2 },
          { key: 'timeMs', title: 'Time', unit: 'ms', digits: 0 },
          { key: 'mbPerS', title: 'Fetched', unit: 'MB/s', digits: 0 },
          { key: 'vsServe', title: 'Time / serve', unit: 'x', digits: 2 },
          { key: 'vsAllLocal', title: 'Time / all-local', unit: 'x', digits: 2 },
          { key: 'majorFaults', title: 'Major faults' },
        ],
        rows,
        summary: {
          rawGetP50Us: gets.socket.p50Us,
          ioredisGetP50Us: gets.client.p50Us,
          redisMajorOverRawGetP50: standaloneMajor ? standaloneMajor.p50Us / gets.socket.p50Us : null,
          redisMajorOverIoredisGetP50: standaloneMajor ? standaloneMajor.p50Us / gets.client.p50Us : null,
          clusterMajorOverRawGetP50: clusterMajor ? clusterMajor.p50Us / gets.socket.p50Us : null,
          redisScanTimeOverServe: scans.get('Redis')!.ns / serveNs,
          clusterScanTimeOverServe: scans.get(stores[1]!.name)!.ns / serveNs,
        },
        charts: [
          {
            file: 'redis-latency.svg',
            spec: barChart({ title: 'Redis: major fault vs a raw GET of one page (p50)', subtitle: ctx.subtitle, xTitle: 'Measure',
              yTitle: `Latency (µs, p50), ${config.pageSize} B page`, data: latencyBars,
              references: [{ value: gets.socket.p50Us * 1.15, label: 'target 1.15x GET' }] }),
          },
          {
            file: 'redis-scan.svg',
            spec: barChart({ title: `Sequential scan at ${config.localPct}% local (leap): pages fetched per second`, subtitle: ctx.subtitle,
              xTitle: 'Store', yTitle: 'Throughput (MB/s of pages fetched)', data: scanBars }),
          },
        ],
        warnings: ['the machine is shared with other work: latencies are noisy; compare ratios within this run'],
      };
    } finally {
      serve?.proc.kill('SIGTERM');
      await Promise.all([standalone?.close(), cluster?.close()]);
    }
  },
};
