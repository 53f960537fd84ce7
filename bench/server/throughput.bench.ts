/**
 * @fileoverview Memory-server read throughput and round trip, against a raw `ws` baseline measured
 * in the same run. Not a test: `node dist/bench/server/throughput.bench.js [--reps 5] [--window 64]`.
 *
 * Both servers run as child processes on 127.0.0.1 (so neither shares the client's event loop):
 * - farmem: `farmem serve`, read one page per `RemoteStore.read` call, `window` calls in flight;
 * - raw: a trivial ws server that answers every message with a preallocated payload of the same
 *   size as farmem's READ_OK frame (16 + pageSize bytes), `window` messages in flight.
 * Both use the same ws options (no compression, zero client mask). Round trips are measured one
 * request at a time. Measurements alternate farmem/raw per repetition so drift affects both.
 * Writes `bench/results/server-throughput.json` (machine, date, config, per-size results, ratios).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { collectEnv } from '../lib/env.js';
import { median, quantile, summarize } from '../lib/stats.js';
import { RemoteStore } from '../../host/store/remote.js';
import { ECHO_SERVER, pipelined, RawClient, roundTrips, spawnServer } from '../lib/raw-ws.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url)); // dist/bench/server → repo root
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
  pageSizes: [4096, 65536],
  reps: arg('reps', 5),
  window: arg('window', 64),
  // ~128 MiB moved per throughput sample; enough for ≥100 ms at 1 GB/s.
  bytesPerSample: arg('mib', 128) * 1024 * 1024,
  rttSamples: arg('rtt', 2000),
  warmupFraction: 0.2,
};

/** CPU seconds (user + system) a child process used so far, from /proc (Linux); NaN elsewhere. */
function childCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
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

async function main(): Promise<void> {
  const env = collectEnv();
  const farmemSrv = await spawnServer(ROOT, [...nodeFlags, `${ROOT}dist/host/cli/main.js`, 'serve', '--port', '0', '--capacity', '1GiB', '--token', TOKEN],
    /farmem serve listening on (ws:\/\/\S+)/);
  const rawSrv = await spawnServer(ROOT, [...nodeFlags, '--input-type=module', '-e', ECHO_SERVER], /raw listening on (ws:\/\/\S+)/);
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
      const raw = new RawClient(rawSrv.url, 16 + pageSize);
      await raw.open();
      // One buffer per lane would be enough; reads of one page into a shared buffer are fine here.
      const into = [new Uint8Array(pageSize)];
      let next = 0;
      const farmemRead = () => store.read([next++ % pages], into);
      const rawRead = () => raw.request();
      const total = Math.max(1000, Math.floor(config.bytesPerSample / pageSize));
      const warm = Math.floor(total * config.warmupFraction);
      await pipelined(warm, config.window, farmemRead);
      await pipelined(warm, config.window, rawRead);

      const f: SideResult = { throughputMBps: [], rttUs: { p50: 0, p99: 0 }, clientCpuUsPerReq: [], serverCpuUsPerReq: [] };
      const r: SideResult = { throughputMBps: [], rttUs: { p50: 0, p99: 0 }, clientCpuUsPerReq: [], serverCpuUsPerReq: [] };
      const fr: number[] = [];
      const rr: number[] = [];
      /** Runs one throughput sample and records client and server CPU per request. */
      const sample = async (side: SideResult, srv: ChildProcess, one: () => Promise<unknown>) => {
        const c0 = selfCpuSeconds();
        const s0 = childCpuSeconds(srv.pid);
        const secs = await pipelined(total, config.window, one);
        side.clientCpuUsPerReq.push(((selfCpuSeconds() - c0) / total) * 1e6);
        side.serverCpuUsPerReq.push(((childCpuSeconds(srv.pid) - s0) / total) * 1e6);
        return secs;
      };
      for (let rep = 0; rep < config.reps; rep++) {
        const sf = await sample(f, farmemSrv.proc, farmemRead);
        const sr = await sample(r, rawSrv.proc, rawRead);
        f.throughputMBps.push((total * pageSize) / sf / 1e6);
        r.throughputMBps.push((total * pageSize) / sr / 1e6);
        fr.push(...await roundTrips(Math.ceil(config.rttSamples / config.reps), farmemRead));
        rr.push(...await roundTrips(Math.ceil(config.rttSamples / config.reps), rawRead));
        process.stderr.write(`page ${pageSize}: rep ${rep + 1}/${config.reps} farmem ${f.throughputMBps.at(-1)!.toFixed(0)} MB/s, raw ${r.throughputMBps.at(-1)!.toFixed(0)} MB/s\n`);
      }
      f.rttUs = { p50: quantile(fr, 0.5), p99: quantile(fr, 0.99) };
      r.rttUs = { p50: quantile(rr, 0.5), p99: quantile(rr, 0.99) };
      const ratios = f.throughputMBps.map((v, i) => v / r.throughputMBps[i]!);
      results.push({
        pageSize,
        pagesResident: pages,
        requestsPerSample: total,
        farmem: {
          throughputMBps: summarize(f.throughputMBps), rttUs: f.rttUs,
          clientCpuUsPerReq: median(f.clientCpuUsPerReq), serverCpuUsPerReq: median(f.serverCpuUsPerReq),
        },
        raw: {
          throughputMBps: summarize(r.throughputMBps), rttUs: r.rttUs,
          clientCpuUsPerReq: median(r.clientCpuUsPerReq), serverCpuUsPerReq: median(r.serverCpuUsPerReq),
        },
        ratios: {
          // farmem / raw, per repetition then the median: ≥ 0.9 is DESIGN.md's target at 64 KiB.
          throughput: median(ratios),
          throughputPerRep: ratios,
          rttP50: f.rttUs.p50 / r.rttUs.p50,
          rttP99: f.rttUs.p99 / r.rttUs.p99,
          // Total CPU per request (client + server), farmem / raw: what throughput converges to when CPU-bound.
          cpuPerRequest: (median(f.clientCpuUsPerReq) + median(f.serverCpuUsPerReq)) / (median(r.clientCpuUsPerReq) + median(r.serverCpuUsPerReq)),
        },
      });
      raw.ws.close();
      await store.close();
    }
  } finally {
    // Both exit on SIGTERM (farmem serve drains: no client is left, so at once), writing profiles.
    const exited = [farmemSrv.proc, rawSrv.proc].map((p) => new Promise((resolve) => p.once('exit', resolve)));
    farmemSrv.proc.kill('SIGTERM');
    rawSrv.proc.kill('SIGTERM');
    await Promise.all(exited);
  }
  const out = {
    bench: 'server-throughput',
    notes: [
      'farmem: one RemoteStore.read of one page per request, `window` in flight; raw: one ws message per request, same reply size, same ws options.',
      'farmem gathers small requests (client, per tick) and small replies (server, per incoming message) into one ws message; the raw echo server does not.',
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
  for (const x of results) {
    process.stdout.write(
      `${x.pageSize / 1024} KiB: farmem ${x.farmem.throughputMBps.median.toFixed(0)} MB/s vs raw ws ${x.raw.throughputMBps.median.toFixed(0)} MB/s ` +
      `(ratio ${x.ratios.throughput.toFixed(2)}); rtt p50 ${x.farmem.rttUs.p50.toFixed(1)} vs ${x.raw.rttUs.p50.toFixed(1)} µs ` +
      `(${x.ratios.rttP50.toFixed(2)}x), p99 ${x.farmem.rttUs.p99.toFixed(1)} vs ${x.raw.rttUs.p99.toFixed(1)} µs; ` +
      `cpu/req client+server ${x.farmem.clientCpuUsPerReq.toFixed(1)}+${x.farmem.serverCpuUsPerReq.toFixed(1)} vs ` +
      `${x.raw.clientCpuUsPerReq.toFixed(1)}+${x.raw.serverCpuUsPerReq.toFixed(1)} µs (${x.ratios.cpuPerRequest.toFixed(2)}x)\n`);
  }
  process.stdout.write(`wrote ${file}\n`);
}

await main();
