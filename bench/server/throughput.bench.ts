/**
 * @fileoverview Memory-server read throughput and round trip, against a raw `ws` baseline measured
 * in the same run. Not a test: `node dist/bench/server/throughput.bench.js [--reps 5] [--window 64] [--page 65536] [--cpu-prof DIR]`.
 *
 * All servers run as child processes on 127.0.0.1 (so none shares the client's event loop):
 * - farmem: `farmem serve`, read one page per `RemoteStore.read` call into the caller's buffer,
 *   `window` calls in flight, cycling over the pages it holds (64 MiB of 4 KiB, 256 MiB of 64 KiB);
 * - raw page server (the baseline): a ws server answering every message with the next slot of a
 *   region as large as farmem's stored pages, sent as a view (no user-space copy), the client
 *   copying the page into the caller's buffer: what a page server and client over raw ws must do;
 * - raw cached echo: the same reply size resent from one cached buffer, never touched by the
 *   client (the old baseline, kept as a lower bound: no server that reads pages from memory and
 *   no client that delivers them reaches it).
 * All use the same ws package and options (no compression, zero client mask; maxPayload is only a
 * bound check), the same reply size (16 + pageSize bytes) and the same `window` in flight. Round
 * trips are measured one request at a time. Sides take turns in ABBA order per repetition, so drift affects all.
 * Writes `bench/results/server-throughput.json` (machine, date, config, per-size results, ratios).
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { collectEnv } from '../lib/env.js';
import { median, quantile, summarize } from '../lib/stats.js';
import { RemoteStore } from '../../host/store/remote.js';
import { ECHO_SERVER, PAGE_SERVER, pipelined, RawClient, roundTrips, spawnServer } from '../lib/raw-ws.js';
import { repoRoot } from '../lib/repo-root.js';

const ROOT = repoRoot(import.meta.url);
const TOKEN = 'bench-token';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** `--cpu-prof DIR`: both servers write a V8 CPU profile there when they exit (`node --cpu-prof`). */
const profDir = (() => {
  const i = process.argv.indexOf('--cpu-prof');
  return i > 0 ? process.argv[i + 1]! : null;
})();
const nodeFlags = profDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];

const config = {
  pageSizes: process.argv.includes('--page') ? [arg('page', 4096)] : [4096, 65536],
  reps: arg('reps', 5),
  window: arg('window', 64),
  // ~128 MiB moved per throughput sample; enough for ≥100 ms at 1 GB/s.
  bytesPerSample: arg('mib', 128) * 1024 * 1024,
  rttSamples: arg('rtt', 2000),
  warmupFraction: 0.2,
};

/**
 * CPU seconds a child process used so far, all its threads, from /proc (Linux; NaN elsewhere):
 * each thread's `schedstat` run time in ns (a sample of ~4000 64 KiB replies is ~100 ms of server
 * CPU, where /proc/PID/stat's 10 ms ticks would give ±10%).
 */
function childCpuSeconds(pid: number | undefined): number {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between the listing and the read: its time is gone with it
      }
    }
    return ns / 1e9;
  } catch {
    return NaN;
  }
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

interface SideResult {
  throughputMBps: number[];
  rttUs: { p50: number; p99: number };
  /** CPU time per request, client process and server process: robust to a busy machine, unlike MB/s. */
  clientCpuUsPerReq: number[];
  serverCpuUsPerReq: number[];
}

/** One side of the comparison: its server process and a request of one page. */
interface Side {
  srv: { proc: ChildProcess; url: string };
  one: () => Promise<unknown>;
  r: SideResult;
}

function newSide(srv: { proc: ChildProcess; url: string }, one: () => Promise<unknown>): Side {
  return { srv, one, r: { throughputMBps: [], rttUs: { p50: 0, p99: 0 }, clientCpuUsPerReq: [], serverCpuUsPerReq: [] } };
}

function sideSummary(r: SideResult) {
  return {
    throughputMBps: summarize(r.throughputMBps), rttUs: r.rttUs,
    clientCpuUsPerReq: median(r.clientCpuUsPerReq), serverCpuUsPerReq: median(r.serverCpuUsPerReq),
    clientCpuUsPerReqRuns: r.clientCpuUsPerReq, serverCpuUsPerReqRuns: r.serverCpuUsPerReq,
  };
}

/** farmem against one raw side, same run: per-repetition throughput ratios and CPU per request. */
function ratiosAgainst(f: SideResult, r: SideResult) {
  const perRep = f.throughputMBps.map((v, i) => v / r.throughputMBps[i]!);
  return {
    throughput: median(perRep),
    throughputPerRep: perRep,
    rttP50: f.rttUs.p50 / r.rttUs.p50,
    rttP99: f.rttUs.p99 / r.rttUs.p99,
    // Total CPU per request (client + server), farmem / raw: what throughput converges to when CPU-bound.
    cpuPerRequest: (median(f.clientCpuUsPerReq) + median(f.serverCpuUsPerReq)) / (median(r.clientCpuUsPerReq) + median(r.serverCpuUsPerReq)),
  };
}

async function main(): Promise<void> {
  const env = collectEnv();
  const farmemSrv = await spawnServer(ROOT, [...nodeFlags, `${ROOT}dist/host/cli/main.js`, 'serve', '--port', '0', '--capacity', '1GiB', '--token', TOKEN],
    /farmem serve listening on (ws:\/\/\S+)/);
  const echoSrv = await spawnServer(ROOT, [...nodeFlags, '--input-type=module', '-e', ECHO_SERVER], /raw listening on (ws:\/\/\S+)/);
  const pageSrv = await spawnServer(ROOT, [...nodeFlags, '--input-type=module', '-e', PAGE_SERVER], /raw listening on (ws:\/\/\S+)/);
  const results = [];
  try {
    for (const pageSize of config.pageSizes) {
      const pages = Math.min(16384, Math.floor((256 << 20) / pageSize)); // ≤ 256 MiB resident on the server
      const store = await RemoteStore.connect({
        urls: [farmemSrv.url], token: TOKEN, namespace: `bench-${pageSize}`, pageSize, timeoutMs: 30_000, maxInFlight: config.window,
      });
      const fill = new Uint8Array(pageSize).fill(3);
      for (let p = 0; p < pages; p += 256) {
        const batch = Array.from({ length: Math.min(256, pages - p) }, (_, i) => p + i);
        await store.write(batch, batch.map(() => fill));
      }
      // One buffer per lane would be enough; reads of one page into a shared buffer are fine here.
      const into = [new Uint8Array(pageSize)];
      const echo = new RawClient(echoSrv.url, 16 + pageSize);
      const page = new RawClient(pageSrv.url, 16 + pageSize, { slots: pages, into: into[0]! });
      await echo.open();
      await page.open();
      let next = 0;
      const f = newSide(farmemSrv, () => store.read([next++ % pages], into));
      const e = newSide(echoSrv, () => echo.request());
      const pg = newSide(pageSrv, () => page.request());
      const sides = [f, pg, e];
      const total = Math.max(1000, Math.floor(config.bytesPerSample / pageSize));
      const warm = Math.floor(total * config.warmupFraction);
      /** `pipelined`, but a stall names the side and what it waits for instead of hanging silently. */
      const run = async (side: Side, n: number) => {
        const watchdog = setTimeout(() => {
          const link = store.stats.servers[0]!;
          process.stderr.write(`stalled: ${side === f ? 'farmem' : side === pg ? 'raw page' : 'raw echo'} ` +
            `(farmem link ${link.state}, ${link.inFlight} in flight, ${link.queued} queued; raw page ${page.pending}, echo ${echo.pending} pending)\n`);
        }, 60_000);
        try {
          return await pipelined(n, config.window, side.one);
        } finally {
          clearTimeout(watchdog);
        }
      };
      // Warm-up: one whole sample per side first. With a fifth of one, the first timed sample of
      // the run was the slow one whichever side it was (64 KiB: farmem 0.60–0.80x in rep 1 of
      // every run, 0.82–1.11x after; 2026-12-01, 6 runs), the servers' and clients' code for this
      // page size still warming up after the other size's phase.
      for (const side of sides) await run(side, total);
      const rtts = sides.map((): number[] => []);
      /**
       * Runs one throughput sample and records client and server CPU per request. Each is preceded
       * by a burst of the same side (a fifth of a sample, untimed): the first sample after the
       * one-at-a-time round trips below otherwise ran 10–20% slow, whichever side it was (measured
       * with the ABBA order: farmem 0.82–0.92x when first, 1.10–1.13x when last in one run), and
       * before the ABBA order farmem was always first.
       */
      const sample = async (side: Side) => {
        await run(side, warm);
        const c0 = selfCpuSeconds();
        const s0 = childCpuSeconds(side.srv.proc.pid);
        const secs = await run(side, total);
        side.r.clientCpuUsPerReq.push(((selfCpuSeconds() - c0) / total) * 1e6);
        side.r.serverCpuUsPerReq.push(((childCpuSeconds(side.srv.proc.pid) - s0) / total) * 1e6);
        side.r.throughputMBps.push((total * pageSize) / secs / 1e6);
      };
      for (let rep = 0; rep < config.reps; rep++) {
        // farmem first on even repetitions, last on odd ones (ABBA), so a load that rises or falls
        // during a repetition does not always favour the same side; the ratio pairs stay adjacent.
        for (const side of rep % 2 === 0 ? sides : [...sides].reverse()) await sample(side);
        for (let k = 0; k < sides.length; k++) rtts[k]!.push(...await roundTrips(Math.ceil(config.rttSamples / config.reps), sides[k]!.one));
        process.stderr.write(`page ${pageSize}: rep ${rep + 1}/${config.reps} farmem ${f.r.throughputMBps.at(-1)!.toFixed(0)} MB/s, ` +
          `raw page server ${pg.r.throughputMBps.at(-1)!.toFixed(0)} MB/s, raw cached echo ${e.r.throughputMBps.at(-1)!.toFixed(0)} MB/s\n`);
      }
      sides.forEach((side, k) => { side.r.rttUs = { p50: quantile(rtts[k]!, 0.5), p99: quantile(rtts[k]!, 0.99) }; });
      results.push({
        pageSize,
        pagesResident: pages,
        requestsPerSample: total,
        farmem: sideSummary(f.r),
        rawPage: sideSummary(pg.r),
        rawEcho: sideSummary(e.r),
        // farmem / raw, per repetition then the median: ≥ 0.9 against the raw page server is the target.
        ratios: ratiosAgainst(f.r, pg.r),
        ratiosVsCachedEcho: ratiosAgainst(f.r, e.r),
      });
      await Promise.all([echo.close(), page.close()]);
      await store.close();
    }
  } finally {
    // All exit on SIGTERM (farmem serve drains: no client is left, so at once), writing profiles.
    const procs = [farmemSrv.proc, echoSrv.proc, pageSrv.proc];
    const exited = procs.map((p) => new Promise((resolve) => p.once('exit', resolve)));
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(exited);
  }
  const out = {
    bench: 'server-throughput',
    notes: [
      'farmem: one RemoteStore.read of one page per request into the caller\'s buffer, `window` in flight.',
      'raw page server (the baseline, `ratios`): one ws message per request, same reply size and ws options; each reply a view (no copy) of the next slot of a region as large as farmem\'s stored pages; the client copies the page into the caller\'s buffer.',
      'raw cached echo (`ratiosVsCachedEcho`): the same reply resent from one cached buffer and never touched by the client: a lower bound no page server reaches.',
      'farmem gathers small requests (client, per tick) and small replies (server, per turn) into one ws message; the raw servers do not.',
      'throughput ratio = median over repetitions of farmem/raw MB/s measured back to back; on a shared machine prefer cpuPerRequest.',
    ],
    loadAverage: os.loadavg(),
    machine: env,
    node: process.version,
    date: env.date,
    config,
    results,
  };
  await mkdir(`${ROOT}bench/results`, { recursive: true });
  const file = `${ROOT}bench/results/server-throughput.json`;
  await writeFile(file, JSON.stringify(out, null, 2) + '\n');
  const cpu = (x: { clientCpuUsPerReq: number; serverCpuUsPerReq: number }) => `${x.clientCpuUsPerReq.toFixed(1)}+${x.serverCpuUsPerReq.toFixed(1)}`;
  for (const x of results) {
    process.stdout.write(
      `${x.pageSize / 1024} KiB: farmem ${x.farmem.throughputMBps.median.toFixed(0)} MB/s vs raw page server ${x.rawPage.throughputMBps.median.toFixed(0)} MB/s ` +
      `(ratio ${x.ratios.throughput.toFixed(2)}, runs ${x.ratios.throughputPerRep.map((v) => v.toFixed(2)).join(' ')}); ` +
      `vs raw cached echo ${x.rawEcho.throughputMBps.median.toFixed(0)} MB/s (${x.ratiosVsCachedEcho.throughput.toFixed(2)}); ` +
      `rtt p50 ${x.farmem.rttUs.p50.toFixed(1)} vs ${x.rawPage.rttUs.p50.toFixed(1)} µs; ` +
      `cpu/req client+server ${cpu(x.farmem)} vs page ${cpu(x.rawPage)} vs echo ${cpu(x.rawEcho)} µs (${x.ratios.cpuPerRequest.toFixed(2)}x)\n`);
  }
  process.stdout.write(`wrote ${file}\n`);
}

await main();
