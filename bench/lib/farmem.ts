/**
 * @fileoverview The bench's one door to the runtime and the workloads: loads `host/index.js`
 * (`instantiate`) and `host/workloads.js` (`WORKLOADS`, `loadWorkload`) and runs a workload as the
 * original module or under farmem, timing only the `run(sizeBytes, seed)` call.
 *
 * The workloads are imported dynamically so that a checkout where they are not built yet still runs
 * the suites that do not need them (peer, charts) and the others skip with a clear reason.
 * Instrumented modules are cached in a per-user temp directory, so the hundred instantiations of
 * a sweep instrument each workload once per page size.
 */
import os from 'node:os';
import path from 'node:path';
import { FarmemError } from '../../host/errors.js';
import { instantiate } from '../../host/index.js';

export type Prefetcher = 'none' | 'readahead' | 'stride' | 'leap';
export const PREFETCHERS: readonly Prefetcher[] = ['none', 'readahead', 'stride', 'leap'];

/** The part of `fm.stats()` the bench reads; every field is optional so older runtimes still work. */
export interface RuntimeStats {
  majorFaults?: number;
  minorFaults?: number;
  evictions?: number;
  writeBacks?: number;
  bytesIn?: number;
  bytesOut?: number;
  directReclaims?: number;
  prefetch?: { issued?: number; hits?: number; wasted?: number; late?: number };
  [key: string]: unknown;
}

export interface InstantiateOptions {
  pageSize: number;
  local: { fraction: number } | { bytes: number };
  prefetch?: Prefetcher;
}

interface WorkloadsModule {
  WORKLOADS: ReadonlyArray<string | { name: string }>;
  loadWorkload(name: string): Promise<Uint8Array> | Uint8Array;
}

/** The runtime or the workloads could not be loaded; suites that need them skip with this message. */
export class RuntimeUnavailableError extends FarmemError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FM_ERR_BENCH_UNAVAILABLE', message, options);
  }
}

// Kept in a variable so the type checker does not require the module to exist yet.
const WORKLOADS_PATH = '../../host/workloads.js';

export interface Farmem {
  /** Workload names, in the order `host/workloads` lists them. */
  workloads: string[];
  /** Module bytes of a workload, cached. */
  bytes(name: string): Promise<Uint8Array>;
  /** Runs the original (uninstrumented) module. */
  original(name: string): Promise<Runner>;
  /** Runs the module under farmem with these options. */
  farmem(name: string, options: InstantiateOptions): Promise<Runner>;
}

export interface Runner {
  /** Calls `run(size, seed)` and returns its checksum (as a string: i64 comes back as bigint) and time. */
  run(sizeBytes: number, seed: number): { result: string; ns: number };
  /** Runtime counters (zeros for the original module). */
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

function callRun(exports: Record<string, unknown>, sizeBytes: number, seed: number): { result: string; ns: number } {
  const run = exports.run;
  if (typeof run !== 'function') throw new RuntimeUnavailableError('the workload does not export run(sizeBytes, seed)');
  const t0 = process.hrtime.bigint();
  const r = (run as (a: number, b: number) => unknown)(sizeBytes, seed);
  const ns = Number(process.hrtime.bigint() - t0);
  return { result: String(r), ns };
}

const CACHE_DIR = path.join(os.tmpdir(), `farmem-bench-cache-${process.getuid?.() ?? 'user'}`);

let cached: Promise<Farmem> | null = null;

/** Loads the runtime and workloads once; rejects with RuntimeUnavailableError when either is missing. */
export function loadFarmem(): Promise<Farmem> {
  cached ??= load();
  return cached;
}

async function load(): Promise<Farmem> {
  let workloads: WorkloadsModule;
  try {
    workloads = (await import(WORKLOADS_PATH)) as WorkloadsModule;
  } catch (err) {
    throw new RuntimeUnavailableError(`the workloads (host/workloads) could not be loaded: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(workloads.WORKLOADS) || typeof workloads.loadWorkload !== 'function') {
    throw new RuntimeUnavailableError('host/workloads must export WORKLOADS and loadWorkload(name)');
  }
  const names = workloads.WORKLOADS.map((w) => (typeof w === 'string' ? w : w.name));
  const bytesCache = new Map<string, Uint8Array>();
  const bytes = async (name: string): Promise<Uint8Array> => {
    let b = bytesCache.get(name);
    if (!b) {
      try {
        b = await workloads.loadWorkload(name);
      } catch (err) {
        throw new RuntimeUnavailableError(`workload "${name}" could not be loaded (run \`npm run build:assembly\`?): ${(err as Error).message}`, { cause: err });
      }
      bytesCache.set(name, b);
    }
    return b;
  };
  return {
    workloads: names,
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
      return { run: (size, seed) => callRun(exports, size, seed), stats: () => fm.stats() as unknown as RuntimeStats, close: () => fm.close() };
    },
  };
}

/** Picks the workload that best matches one of `preferred` names (substring match), or null. */
export function pickWorkload(names: readonly string[], preferred: readonly string[]): string | null {
  for (const p of preferred) {
    const hit = names.find((n) => n === p) ?? names.find((n) => n.includes(p));
    if (hit) return hit;
  }
  return null;
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

/** Instantiates a fresh farmem instance, runs the workload once (timed) and closes it. */
export async function runFresh(fm: Farmem, name: string, options: InstantiateOptions, sizeBytes: number, seed: number): Promise<Measured> {
  const r = await fm.farmem(name, options);
  try {
    const { ns, result } = r.run(sizeBytes, seed);
    return { ns, result, stats: r.stats() };
  } finally {
    await r.close();
  }
}

/** Total bytes moved between local memory and the store. */
export function bytesMoved(s: RuntimeStats): number {
  return (s.bytesIn ?? 0) + (s.bytesOut ?? 0);
}
