/**
 * @fileoverview Suite `peer`: what a user would do instead of farmem — run the program natively
 * under plain Linux swap with the same local memory. Two tiny C programs (bench/peer/seqscan.c, a
 * sequential scan, and bench/peer/hashtable.c, a random hash table; their wasm equivalents are the
 * AssemblyScript `seqscan` and `hashtable` workloads) are built with gcc -O2 and run in a memory
 * cgroup capped at a fraction of their data (+ the process's own baseline footprint, measured),
 * with swap on zram. Every system's wall time is divided by the *native* program's own uncapped time
 * from this run, so one axis shows what a user compares: the wasm program under farmem (embedded
 * store, prefetch none and leap; and with its pages on a real `farmem serve` over loopback, ws:// and
 * tcp://, 4 KiB and 64 KiB pages, the far-memory rows, best prefetcher `leap-stream`) against the native program under Linux
 * swap, at the same local memory. `vsOwnAllLocal` keeps each system against its own all-local run.
 *
 * Both sides run the program once from empty memory: the native program in a fresh process, the
 * wasm one in a fresh farmem instance (its first run; `runFirst`, after one untimed priming run in
 * this process). Every capped and farmem row is the median of `reps` runs (min and max kept), and
 * the repetitions alternate between Linux and the farmem systems, so load changes hit all alike.
 *
 * Sizes are chosen so Linux finishes: a run the OOM killer ends is a warning, never a data point
 * (quick mode runs the sequential scan only, at 32 MiB; the hash table's cgroup at 8 MiB left no
 * room for the process itself).
 *
 * Linux runs use the system's swap settings. A run the cgroup OOM killer ends (this happens on the
 * random hash table with the default swap readahead, vm.page-cluster = 3: readahead fills the small
 * cgroup with useless pages faster than reclaim frees them) is retried once with page-cluster = 0,
 * i.e. readahead off, and the row records which setting produced it.
 *
 * Needs root, a memory cgroup, zram and gcc; skipped with the reason otherwise. Every system
 * change is undone in `finally` (and on SIGINT/SIGTERM): cgroups removed, page-cluster restored,
 * zram swapoff + reset.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { lineChart } from '../lib/charts.js';
import { spawnServer } from '../lib/raw-ws.js';
import { loadFarmem, runFirst, runFresh, type Farmem, type Measured, type Prefetcher } from '../lib/farmem.js';
import { buildNative, detectCgroup, getPageCluster, probeLinuxSwap, runCapped, setPageCluster, setupSwap, teardownSwap, type CappedRun, type SwapSetup } from '../lib/linux-swap.js';
import { median } from '../lib/stats.js';
import type { Row } from '../lib/results.js';
import { opt, skipped, type Suite, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';
import { repoRoot } from '../lib/repo-root.js';

const SERVER_TOKEN = 'peer-bench';

/** `streams`: the program reads its data in order, so the far-memory rows also try 64 KiB pages. */
const PROGRAMS = [
  { name: 'seqscan', src: 'seqscan.c', streams: true },
  { name: 'hashtable', src: 'hashtable.c', streams: false },
] as const;

/** bench/peer/ in the checkout, from either the TS sources or dist/. */
function peerSourceDir(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'bench', 'peer');
    if (existsSync(path.join(candidate, 'seqscan.c'))) return candidate;
    if (path.basename(dir) === 'bench' && existsSync(path.join(dir, 'peer', 'seqscan.c'))) return path.join(dir, 'peer');
    dir = path.dirname(dir);
  }
  const fromCwd = path.join(process.cwd(), 'bench', 'peer');
  return existsSync(path.join(fromCwd, 'seqscan.c')) ? fromCwd : null;
}

export const peerSuite: Suite = {
  name: 'peer',
  description: SUITE_DESCRIPTIONS.peer,
  async run(ctx): Promise<SuiteOutput> {
    const sizeBytes = opt<number | null>(ctx, 'sizeBytes', null);
    const mib = sizeBytes !== null ? Math.max(1, Math.round(sizeBytes / 2 ** 20)) : opt(ctx, 'sizeMiB', ctx.quick ? 32 : 128);
    const config: Record<string, unknown> = {
      quick: ctx.quick,
      sizeMiB: mib,
      localPercents: opt<number[]>(ctx, 'localPercents', ctx.quick ? [50, 25] : [75, 50, 25]),
      timeoutMs: opt(ctx, 'timeoutMs', ctx.quick ? 8_000 : 300_000),
      baselineReps: opt(ctx, 'reps', 3),
      farmemPrefetchers: opt<string[]>(ctx, 'prefetchers', ['none', 'leap']),
      /** Prefetchers of the far-memory row (pages on a farmem serve); [] leaves it out. */
      serverPrefetchers: opt<string[]>(ctx, 'serverPrefetchers', ['leap-stream']),
      /** Transports of the far-memory rows: the server's ws:// and tcp:// listeners. */
      serverTransports: opt<string[]>(ctx, 'serverTransports', ['ws', 'tcp']),
      /** Page sizes of the far-memory rows of streaming programs (random ones keep 4 KiB): 64 KiB pages move a stream in 16x fewer requests. */
      serverPageSizes: opt<number[]>(ctx, 'serverPageSizes', [4096, 65536]),
      pageSize: 4096,
      seed: 1,
      programs: opt<string[]>(ctx, 'programs', ctx.quick ? ['seqscan'] : PROGRAMS.map((p) => p.name)),
    };
    const why = probeLinuxSwap();
    if (why) return skipped(`Linux swap peer not available on this machine: ${why}`, config);
    const cg = detectCgroup()!;
    const srcDir = peerSourceDir();
    if (!srcDir) return skipped('bench/peer/*.c not found next to the bench code', config);
    const localPercents = config.localPercents as number[];
    const timeoutMs = config.timeoutMs as number;
    const reps = config.baselineReps as number;
    const prefetchers = config.farmemPrefetchers as Prefetcher[];
    const serverPrefetchers = config.serverPrefetchers as Prefetcher[];
    const transports = config.serverTransports as string[];
    const serverPageSizes = config.serverPageSizes as number[];
    const programs = PROGRAMS.filter((p) => (config.programs as string[]).includes(p.name));
    const warnings: string[] = [];
    let fm: Farmem | null = null;
    try {
      fm = await loadFarmem();
    } catch (err) {
      warnings.push(`farmem curves not measured: ${(err as Error).message}`);
    }

    const binDir = mkdtempSync(path.join(os.tmpdir(), 'farmem-peer-'));
    let swap: SwapSetup | null = null;
    let savedPageCluster: number | null = null;
    const restorePageCluster = () => {
      if (savedPageCluster !== null) setPageCluster(savedPageCluster);
      savedPageCluster = null;
    };
    const onSignal = (sig: NodeJS.Signals) => {
      restorePageCluster();
      teardownSwap(swap);
      rmSync(binDir, { recursive: true, force: true });
      process.kill(process.pid, sig);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const rows: Row[] = [];
    const charts = [];
    let server: { proc: ChildProcess; urls: Record<string, string> } | null = null;
    try {
      for (const p of programs) buildNative(path.join(srcDir, p.src), path.join(binDir, p.name));
      swap = setupSwap(Math.max(1 << 30, 4 * mib * 2 ** 20));
      config.swap = { ...swap };
      config.cgroup = `v${cg.version}`;
      const serverRows = (p: (typeof PROGRAMS)[number]) => serverPrefetchers.length * transports.length * (p.streams ? serverPageSizes.length : 1);
      const total = programs.reduce((n, p) => n + reps + 1 + localPercents.length * reps + (fm ? (1 + (prefetchers.length + serverRows(p)) * localPercents.length * reps) : 0), 0);
      if (fm && serverPrefetchers.length * transports.length > 0) {
        const root = repoRoot(import.meta.url);
        const s = await spawnServer(root, [`${root}dist/host/cli/main.js`, 'serve', '--port', '0', '--tcp-port', '0', '--capacity', `${Math.max(1024, 4 * mib)}MiB`, '--token', SERVER_TOKEN],
          /listening on (ws:\/\/\S+ and tcp:\/\/\S+)/);
        const [ws, tcp] = s.url.split(' and ');
        server = { proc: s.proc, urls: { ws: ws!, tcp: tcp! } };
      }
      ctx.progress.start('peer', total);
      for (const p of programs) {
        const bin = path.join(binDir, p.name);
        // The process's own footprint (libc, stack, page tables) at 1 MiB of data, so the cap
        // leaves the program `pct` of its data, not of data + runtime.
        const tiny = await runCapped(cg, [bin, '1', '1'], null, 10_000);
        const slack = Math.max(512 << 10, (tiny.peakBytes ?? 0) - (1 << 20));
        const base: number[] = [];
        let expected: string | null = null;
        for (let r = 0; r < reps; r++) {
          const b = await runCapped(cg, [bin, String(mib), '1'], null, timeoutMs);
          if (b.status !== 'ok') throw new Error(`${p.name} uncapped run failed (${b.status}): ${b.message}`);
          base.push(b.ns!);
          expected = b.checksum;
          ctx.progress.tick(`${p.name} native uncapped`);
        }
        const baseNs = median(base);
        ctx.progress.tick(`${p.name} footprint`);
        const wasm = fm && fm.workloads.includes(p.name) ? p.name : null;
        if (fm && !wasm) warnings.push(`no wasm workload matching ${p.name}; farmem curve skipped`);
        let fmBase: Measured | null = null;
        if (fm && wasm) {
          await runFresh(fm, wasm, { pageSize: 4096, local: { fraction: 1 }, prefetch: 'none' }, mib * 2 ** 20, 1); // priming, untimed
          fmBase = await runFirst(fm, wasm, { pageSize: 4096, local: { fraction: 1 }, prefetch: 'none' }, mib * 2 ** 20, 1);
          ctx.progress.tick(`${wasm} farmem all-local`);
        }
        const farmemRuns = fm && wasm ? [
          ...prefetchers.map((prefetch) => ({ prefetch, system: `farmem-${prefetch}`, remote: undefined, pageSize: 4096 })),
          ...(server ? serverPrefetchers.flatMap((prefetch) => (p.streams ? serverPageSizes : [4096]).flatMap((pageSize) => transports.map((t) => ({
            prefetch, system: `farmem-server-${t === 'ws' ? '' : `${t}-`}${prefetch}${pageSize === 4096 ? '' : `-${pageSize / 1024}k`}`,
            remote: { urls: [server!.urls[t]!], token: SERVER_TOKEN }, pageSize,
          })))) : []),
        ] : [];
        // Repetitions alternate between Linux and every farmem system (L, F1, F2, …, L, F1, …), so a
        // change in the machine's load during the run falls on every system alike.
        const linux = new Map<number, { times: number[]; last: CappedRun | null; pageCluster: number; limit: number }>();
        const measured = new Map<string, { times: number[]; last: Measured | null }>();
        for (const pct of localPercents) {
          const limit = Math.round((mib * 2 ** 20 * pct) / 100) + slack;
          const lx = { times: [] as number[], last: null as CappedRun | null, pageCluster: getPageCluster(), limit };
          linux.set(pct, lx);
          for (let rep = 0; rep < reps; rep++) {
            // A run the OOM killer or the timeout ends is never a data point: the row keeps its status.
            if (lx.last === null || lx.last.status === 'ok') {
              let r = await runCapped(cg, [bin, String(mib), '1'], limit, timeoutMs);
              if (r.status === 'oom-killed' && lx.pageCluster !== 0) {
                warnings.push(`${p.name} at ${pct}%: OOM-killed with vm.page-cluster=${lx.pageCluster}; retried with swap readahead off (page-cluster=0)`);
                savedPageCluster = setPageCluster(0);
                try {
                  r = await runCapped(cg, [bin, String(mib), '1'], limit, timeoutMs);
                } finally {
                  restorePageCluster();
                }
                lx.pageCluster = 0;
              }
              lx.last = r;
              if (r.status === 'ok') lx.times.push(r.ns!);
              if (r.status === 'ok' && r.checksum !== expected) warnings.push(`${p.name} at ${pct}%: checksum differs from the uncapped run`);
            }
            ctx.progress.tick(`${p.name} swap ${pct}%`);
            for (const { prefetch, system, remote, pageSize } of farmemRuns) {
              const m = await runFirst(fm!, wasm!, { pageSize, local: { fraction: pct / 100 }, prefetch, ...(remote ? { remote } : {}) }, mib * 2 ** 20, 1);
              if (m.result !== fmBase!.result) warnings.push(`${wasm} ${system} ${pct}%: result differs from all-local`);
              const key = `${system}@${pct}`;
              const e = measured.get(key) ?? { times: [], last: null };
              e.times.push(m.ns);
              e.last = m;
              measured.set(key, e);
              ctx.progress.tick(`${wasm} ${system} ${pct}%`);
            }
          }
        }
        for (const pct of localPercents) {
          const { times, pageCluster, limit } = linux.get(pct)!;
          const r = linux.get(pct)!.last!;
          if (r.status !== 'ok') warnings.push(`${p.name} under Linux swap at ${pct}% local: ${r.status}${r.status === 'timeout' ? ` (slowdown > ${(timeoutMs * 1e6 / baseNs).toFixed(0)}x)` : ''}`);
          const ns = r.status === 'ok' ? median(times) : null;
          rows.push({
            program: p.name,
            system: 'linux-swap',
            localPct: pct,
            ms: ns === null ? null : ns / 1e6,
            msMin: ns === null ? null : Math.min(...times) / 1e6,
            msMax: ns === null ? null : Math.max(...times) / 1e6,
            slowdown: ns === null ? null : ns / baseNs,
            vsOwnAllLocal: ns === null ? null : ns / baseNs,
            slowdownAtLeast: r.status === 'timeout' ? r.wallNs / baseNs : null,
            majorFaults: r.majorFaults,
            MiBIn: null,
            status: r.status,
            pageCluster,
            limitBytes: limit,
          });
        }
        for (const { system } of farmemRuns) {
          for (const pct of localPercents) {
            const { times, last } = measured.get(`${system}@${pct}`)!;
            const ns = median(times);
            rows.push({
              program: p.name,
              system,
              localPct: pct,
              ms: ns / 1e6,
              msMin: Math.min(...times) / 1e6,
              msMax: Math.max(...times) / 1e6,
              slowdown: ns / baseNs,
              vsOwnAllLocal: ns / fmBase!.ns,
              slowdownAtLeast: null,
              majorFaults: last!.stats.majorFaults ?? null,
              MiBIn: (last!.stats.bytesIn ?? 0) / 2 ** 20,
              status: 'ok',
              pageCluster: null,
              limitBytes: null,
            });
          }
        }
        const mine = rows.filter((r) => r.program === p.name && (r.slowdown !== null || r.slowdownAtLeast !== null));
        const killed = rows.filter((r) => r.program === p.name && r.status === 'oom-killed').map((r) => `${r.localPct}%`);
        const label = (r: Row) => {
          const sys = r.system as string;
          const server = (rest: string, transport: string) => {
            const m = /^(.*)-(\d+)k$/.exec(rest);
            return `farmem, pages on farmem serve (${transport}), prefetch ${m ? `${m[1]}, ${m[2]} KiB pages` : rest}`;
          };
          if (sys.startsWith('farmem-server-tcp-')) return server(sys.slice('farmem-server-tcp-'.length), 'tcp://');
          if (sys.startsWith('farmem-server-')) return server(sys.slice('farmem-server-'.length), 'ws://');
          if (sys.startsWith('farmem-')) return `farmem, prefetch ${sys.slice('farmem-'.length)}`;
          return r.status === 'timeout' ? 'Linux swap: timed out (lower bound)' : 'Linux swap (native, zram)';
        };
        charts.push({
          file: `peer-${p.name}.svg`,
          spec: lineChart({
            title: `${p.name} (${mib} MiB): farmem vs Linux swap on zram`,
            subtitle: `${ctx.subtitle} · wall time vs the native program all-local (${(median(base) / 1e6).toFixed(0)} ms)${killed.length ? ` · Linux OOM-killed at ${killed.join(', ')} (not plotted)` : ''}`,
            xTitle: 'Local memory (% of data)',
            yTitle: 'Wall time / native all-local time (x, log scale)',
            legendTitle: 'System',
            logY: true,
            reference: 1,
            xDomain: [0, 100],
            data: mine.map((r) => ({ x: r.localPct as number, y: (r.slowdown ?? r.slowdownAtLeast) as number, series: label(r) })),
          }),
        });
      }
    } finally {
      ctx.progress.stop();
      server?.proc.kill('SIGTERM');
      restorePageCluster();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      const cleanup = teardownSwap(swap);
      if (cleanup) warnings.push(cleanup);
      rmSync(binDir, { recursive: true, force: true });
    }
    const pick = (prog: string, sys: string) => rows.filter((r) => r.program === prog && r.system === sys).map((r) => r.slowdown).filter((s): s is number => typeof s === 'number');
    // Far memory over the wire against Linux swap at each local fraction: the fastest far-memory
    // row's median time (transport and page size) over Linux's median time (< 1: farmem faster),
    // both from this run; `...Page4k` keeps to 4 KiB pages.
    const overLinux = (prog: string) => {
      const out: Record<string, number | null> = {};
      for (const pct of localPercents) {
        const at = (sys: string) => rows.find((r) => r.program === prog && r.system === sys && r.localPct === pct)?.ms as number | null | undefined;
        const linux = at('linux-swap');
        const wire = (systems: string[]) => systems.map(at).filter((x): x is number => typeof x === 'number');
        const servers = [...new Set(rows.filter((r) => r.program === prog && (r.system as string).startsWith('farmem-server-')).map((r) => r.system as string))];
        const best = (systems: string[]) => { const w = wire(systems); return linux && w.length ? Math.min(...w) / linux : null; };
        out[`${prog}ServerOverLinux${pct}`] = best(servers);
        out[`${prog}ServerOverLinux${pct}Page4k`] = best(['farmem-server-leap-stream', 'farmem-server-tcp-leap-stream']);
      }
      return out;
    };
    const range = (xs: number[]) => (xs.length ? `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}x` : null);
    return {
      status: 'ok',
      config,
      baseline: 'the native program uncapped in this run (median of reps) divides every system\'s wall time (slowdown); vsOwnAllLocal divides farmem by farmem all-local',
      columns: [
        { key: 'program', title: 'Program' },
        { key: 'system', title: 'System' },
        { key: 'localPct', title: 'Local', unit: '%' },
        { key: 'ms', title: 'Time', unit: 'ms', digits: 1 },
        { key: 'msMin', title: 'Min', unit: 'ms', digits: 1 },
        { key: 'msMax', title: 'Max', unit: 'ms', digits: 1 },
        { key: 'slowdown', title: 'vs native all-local', unit: 'x', digits: 1 },
        { key: 'vsOwnAllLocal', title: 'vs own all-local', unit: 'x', digits: 1 },
        { key: 'slowdownAtLeast', title: 'At least', unit: 'x', digits: 0 },
        { key: 'majorFaults', title: 'Major faults' },
        { key: 'MiBIn', title: 'Fetched', unit: 'MiB', digits: 0 },
        { key: 'status', title: 'Status' },
        { key: 'pageCluster', title: 'page-cluster' },
      ],
      rows,
      summary: {
        linuxSwapSeqscan: range(pick('seqscan', 'linux-swap')),
        linuxSwapHashtable: range(pick('hashtable', 'linux-swap')),
        farmemLeapSeqscan: range(pick('seqscan', 'farmem-leap')),
        farmemNoneHashtable: range(pick('hashtable', 'farmem-none')),
        farmemServerSeqscan: range(pick('seqscan', 'farmem-server-leap-stream')),
        farmemServerTcpSeqscan: range(pick('seqscan', 'farmem-server-tcp-leap-stream')),
        ...overLinux('seqscan'),
      },
      warnings,
      charts,
    };
  },
};
