/**
 * @fileoverview The catalog of guest workloads: the AssemblyScript modules under
 * `assembly/workloads/`, built by `npm run build:assembly` to `build/assembly/<name>.wasm`.
 *
 * Every workload module has the same contract, which tests and benchmarks rely on:
 * - it imports nothing, exports `memory` (no maximum) and `run(sizeBytes: i32, seed: i32): i64`;
 * - `run` touches a working set of about `sizeBytes` (at least MIN_WORKLOAD_SIZE, up to
 *   512 MiB and beyond) and returns a checksum that depends only on its two arguments, also
 *   when called again in the same instance;
 * - it checks its own result where that is cheap and traps (`unreachable`) if a check fails,
 *   so an instrumented module that computes a wrong value usually traps before it returns.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FarmemError, OptionError } from './errors.js';

/** The dominant page-level access pattern of a workload, as a prefetcher sees it. */
export type AccessPattern =
  | 'sequential' // ascending page after page
  | 'strided' // a constant page delta other than 1
  | 'random' // independent uniform accesses
  | 'pointer-chase' // random, and each address depends on the previous load
  | 'mixed' // several streams at once, some sequential, some random
  | 'growing'; // memory.grow between phases, sequential sweeps over all of it

export interface WorkloadInfo {
  readonly name: string;
  /** One line: what the workload computes. */
  readonly description: string;
  readonly pattern: AccessPattern;
  /** A working set for benchmarks: big enough to leave the CPU caches, ~0.1–1 s all-local. */
  readonly defaultSize: number;
}

/** The exports of every workload module. */
export interface WorkloadExports {
  readonly memory: WebAssembly.Memory;
  /** Runs the workload over ~sizeBytes of memory and returns its checksum. */
  run(sizeBytes: number, seed: number): bigint;
}

/** Smallest `sizeBytes` a workload accepts: one wasm page. Smaller sizes trap. */
export const MIN_WORKLOAD_SIZE = 64 * 1024;

const MiB = 1024 * 1024;

export const WORKLOADS: readonly WorkloadInfo[] = Object.freeze([
  {
    name: 'seqscan',
    description: 'fill a u64 array from a PRNG, then sum it in four passes (scalar, read-modify-write, SIMD, unaligned)',
    pattern: 'sequential',
    defaultSize: 64 * MiB,
  },
  {
    name: 'stride',
    description: 'visit 64-byte lines 4 KiB + 64 B apart, wrapping to the next line: fill, then two read-modify-write passes',
    pattern: 'strided',
    defaultSize: 32 * MiB,
  },
  {
    name: 'hashtable',
    description: 'open-addressing hash table of packed 12-byte entries: insert to 70% load, then look up hits and misses',
    pattern: 'random',
    defaultSize: 16 * MiB,
  },
  {
    name: 'sort',
    description: 'in-place quicksort of random i32, verified sorted and sum-preserving',
    pattern: 'mixed',
    defaultSize: 16 * MiB,
  },
  {
    name: 'matmul',
    description: 'dense f64 matrix multiply C = A x B (i-k-j order), n = sqrt(sizeBytes / 24)',
    pattern: 'sequential',
    defaultSize: 8 * MiB,
  },
  {
    name: 'graph',
    description: 'generated CSR graph (8 edges per node): BFS from node 0, then five push-style PageRank iterations',
    pattern: 'mixed',
    defaultSize: 16 * MiB,
  },
  {
    name: 'pointerchase',
    description: 'walk a linked list of packed 12-byte nodes over a random single-cycle permutation, twice around',
    pattern: 'pointer-chase',
    defaultSize: 16 * MiB,
  },
  {
    name: 'grow',
    description: 'memory.grow in 16 steps, filling each new region and rewriting all earlier ones',
    pattern: 'growing',
    defaultSize: 64 * MiB,
  },
] satisfies WorkloadInfo[]);

/** The catalog entry of `name`; throws OptionError naming the known workloads if there is none. */
export function getWorkload(name: string): WorkloadInfo {
  const info = WORKLOADS.find((w) => w.name === name);
  if (info === undefined) {
    throw new OptionError(`Unknown workload "${name}": expected one of ${WORKLOADS.map((w) => w.name).join(', ')}`);
  }
  return info;
}

let packageRoot: string | undefined;

/**
 * The package root: the nearest ancestor directory of this file holding farmem's package.json.
 * Found by walking up, so it is the same from `host/workloads.ts` and `dist/host/workloads.js`.
 */
function findPackageRoot(): string {
  if (packageRoot !== undefined) return packageRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === 'farmem') return (packageRoot = dir);
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new FarmemError('FM_ERR_PACKAGE_ROOT', `Cannot find farmem's package.json above ${fileURLToPath(import.meta.url)}`);
    }
    dir = parent;
  }
}

/** Absolute path of the built module of workload `name` (which may not exist yet). */
export function workloadPath(name: string): string {
  getWorkload(name);
  return join(findPackageRoot(), 'build', 'assembly', `${name}.wasm`);
}

/** The bytes of the built module of workload `name`. Throws if it was not built. */
export function loadWorkload(name: string): Uint8Array {
  const path = workloadPath(name);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new FarmemError(
        'FM_ERR_WORKLOAD_NOT_BUILT',
        `Workload "${name}" is not built (${path} is missing): run "npm run build:assembly"`,
        { cause: err },
      );
    }
    throw err;
  }
}
