/**
 * @fileoverview The bench's one door to the runtime and the workloads: loads `host/index.js`
 * (`instantiate`) and `host/workloads.js` (`WORKLOADS`, `loadWorkload`) and runs a workload as the
 * original module or under farmem, timing only the `run(sizeBytes, seed)` call.
 *
 * A checkout where the workloads are not built yet (`npm run build:assembly`) still runs the suites
 * that do not need them (peer) and the others skip with a clear reason.
 * Instrumented modules are cached in a per-user temp directory, so the hundred instantiations of
 * a sweep instrument each workload once per page size.
 */
import os from 'node:os';
import path from 'node:path';
import { FarmemError } from '../../host/errors.js';
import { instantiate, type FarmemOptions, type RuntimeStats as FarmemStats } from '../../host/index.js';
import { loadWorkload, WORKLOADS, type AccessPattern, type WorkloadInfo } from '../../host/workloads.js';

export type Prefetcher = 'none' | 'readahead' | 'stride' | 'leap' | 'leap-stream';
export const PREFETCHERS: readonly Prefetcher[] = ['none', 'readahead', 'stride', 'leap'];

/**
 * What a runner's `stats()` gives: the runtime's own `RuntimeStats` (host/stats/counters.ts), or an
 * empty object for the original module, so every field may be missing.
 */
export type RuntimeStats = Partial<Omit<FarmemStats, 'prefetch'>> & { prefetch?: Partial<FarmemStats['prefetch']> };

/** The `instantiate()` options the suites vary: `FarmemOptions` fields, with the bench's prefetcher names. */
export type InstantiateOptions = Required<Pick<FarmemOptions, 'pageSize' | 'local'>>
  & Pick<FarmemOptions, 'latency' | 'remote' | 'redis' | 'optimize'>
  & { prefetch?: Prefetcher };

/** The runtime or the workloads could not be loaded; suites that need them skip with this message. */
export class RuntimeUnavailableError extends FarmemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FM_ERR_BENCH_UNAVAILABLE', message, options);
  }
}

export interface Farmem {
  /** Workload names, in the order `host/workloads` lists them. */
  workloads: string[];
  /** Catalog entry (pattern, default benchmark size) of a workload. */
  info(name: string): WorkloadInfo;
  /** Module bytes of a workload, cached. */
  bytes(name: string): Promise<Uint8Array>;
  /** Runs the original (uninstrumented) module. */
  original(name: string): Promise<Runner>;
  /** Runs the module under farmem with these options. */
  farmem(name: string, options: InstantiateOptions): Promise<Runner>;
}

export interface Runner {
  /**
   * Calls `run(size, seed)` and returns its checksum (as a string: i64 comes back as bigint), its
   * wall time and the process's CPU time (user + system) during the call.
   */
  run(sizeBytes: number, seed: number): { result: string; ns: number; cpuNs: number };
  /** Runtime counters (empty for the original module). */
  stats(): RuntimeStats;
  close(): Promise<void>;
}

/** Imports an AssemblyScript workload may need; extra imports are ignored by the engine. */
export function workloadImports(): WebAssembly.Imports {
  return {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new WebAssembly.RuntimeError(`workload aborted at ${line}:${col}`);
      },
      seed: () => 42,
      trace: () => {},
    },
  };
}

function callRun(exports: Record<string, unknown>, sizeBytes: number, seed: number): { result: string; ns: number; cpuNs: number } {
  const run = exports.run;
  if (typeof run !== 'function') throw new RuntimeUnavailableError('the workload does not export run(sizeBytes, seed)');
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const r = (run as (a: number, b: number) => unknown)(sizeBytes, seed);
  const ns = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { result: String(r), ns, cpuNs: (c.user + c.system) * 1000 };
}

const CACHE_DIR = path.join(os.tmpdir(), `farmem-bench-cache-${process.getuid?.() ?? 'user'}`);

let cached: Promise<Farmem> | null = null;

/** Loads the runtime and workloads once; rejects with RuntimeUnavailableError when either is missing. */
export function loadFarmem(): Promise<Farmem> {
  cached ??= load();
  return cached;
}

async function load(): Promise<Farmem> {
  const names = WORKLOADS.map((w) => w.name);
  const bytesCache = new Map<string, Uint8Array>();
  const bytes = async (name: string): Promise<Uint8Array> => {
    let b = bytesCache.get(name);
    if (!b) {
      try {
        b = loadWorkload(name);
      } catch (err) {
        throw new RuntimeUnavailableError(`workload "${name}" is not built (run \`npm run build:assembly\`): ${(err as Error).message}`, { cause: err });
      }
      bytesCache.set(name, b);
    }
    return b;
  };
  // Fail early, before any timing, when the modules are missing.
  await bytes(names[0]!);
  return {
    workloads: names,
    info: (name) => {
      const w = WORKLOADS.find((x) => x.name === name);
      if (!w) throw new RuntimeUnavailableError(`unknown workload "${name}"; known: ${names.join(', ')}`);
      return w;
    },
    bytes,
    async original(name) {
      const module = await WebAssembly.compile((await bytes(name)) as Uint8Array<ArrayBuffer>);
      const instance = await WebAssembly.instantiate(module, workloadImports());
      const exports = instance.exports as Record<string, unknown>;
      return { run: (size, seed) => callRun(exports, size, seed), stats: () => ({}), close: async () => {} };
    },
    async farmem(name, options) {
      const fm = await instantiate(await bytes(name), workloadImports(), { ...options, cacheDir: CACHE_DIR });
      const exports = fm.exports as Record<string, unknown>;
      return { run: (size, seed) => callRun(exports, size, seed), stats: () => fm.stats(), close: () => fm.close() };
    },
  };
}

/** The first workload (catalog order) whose access pattern is `pattern`, or null. */
export function workloadWithPattern(fm: Farmem, pattern: AccessPattern): string | null {
  return fm.workloads.find((n) => fm.info(n).pattern === pattern) ?? null;
}

/** Prefetch accuracy = hits / issued; coverage = hits / (hits + demand major faults). Null when undefined. */
export function prefetchQuality(s: RuntimeStats): { accuracy: number | null; coverage: number | null } {
  const issued = s.prefetch?.issued ?? 0;
  const hits = s.prefetch?.hits ?? 0;
  const major = s.majorFaults ?? 0;
  return {
    accuracy: issued > 0 ? hits / issued : null,
    coverage: hits + major > 0 ? hits / (hits + major) : null,
  };
}

export interface Measured {
  ns: number;
  result: string;
  stats: RuntimeStats;
}

/**
 * Instantiates a fresh farmem instance, runs the workload twice at `sizeBytes` and closes it. The
 * first run is untimed: V8 compiles and tiers up the hot code, the guest's memory and the frame
 * pool grow to full size, and every page gets written once (so no demand-zero faults later). The
 * second run is timed: the steady state, where a page not in local memory is a real fetch from
 * the store. The stats are those of the timed run only (counters after minus before).
 */
export async function runFresh(fm: Farmem, name: string, options: InstantiateOptions, sizeBytes: number, seed: number): Promise<Measured> {
  const r = await fm.farmem(name, options);
  try {
    r.run(sizeBytes, seed + 1);
    const before = r.stats();
    const { ns, result } = r.run(sizeBytes, seed);
    return { ns, result, stats: diffStats(r.stats(), before) };
  } finally {
    await r.close();
  }
}

/**
 * Instantiates a fresh farmem instance, runs the workload once, timed, and closes it: the run a
 * user makes, and the one a native program makes in a fresh process (its memory starts empty, so
 * first touches are demand-zero, as the kernel's are). Call after an untimed run of the same
 * workload in this process, so the runtime's own code is warm.
 */
export async function runFirst(fm: Farmem, name: string, options: InstantiateOptions, sizeBytes: number, seed: number): Promise<Measured> {
  const r = await fm.farmem(name, options);
  try {
    const before = r.stats();
    const { ns, result } = r.run(sizeBytes, seed);
    return { ns, result, stats: diffStats(r.stats(), before) };
  } finally {
    await r.close();
  }
}

/** Gauges and ratios in `stats()`: taken from `after`, never subtracted. */
const NOT_COUNTERS = new Set(['pageSize', 'localBytes', 'reserveBytes', 'virtualBytes', 'residentPages', 'residentPeak', 'accuracy', 'coverage', 'latency']);

/** Counters of `after` minus `before` (also inside nested objects such as `prefetch`); gauges from `after`. */
export function diffStats(after: RuntimeStats, before: RuntimeStats): RuntimeStats {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(after)) {
    const b = (before as Record<string, unknown>)[k];
    if (NOT_COUNTERS.has(k)) out[k] = v; // gauges, ratios, and histograms (which cover both runs)
    else if (typeof v === 'number' && typeof b === 'number') out[k] = v - b;
    else if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object') out[k] = diffStats(v as RuntimeStats, b as RuntimeStats);
    else out[k] = v;
  }
  return out as RuntimeStats;
}

/** Total bytes moved between local memory and the store. */
export function bytesMoved(s: RuntimeStats): number {
  return (s.bytesIn ?? 0) + (s.bytesOut ?? 0);
}
