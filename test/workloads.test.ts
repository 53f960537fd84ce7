/**
 * @fileoverview Tests of the guest workload suite (assembly/workloads) and its catalog
 * (host/workloads.ts), on plain V8 with no instrumentation: the module contract (no imports,
 * exported memory without a maximum, `run` deterministic and seed-dependent), the self-checks,
 * and JS reference implementations of three workloads that pin their checksums exactly.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FarmemError, OptionError } from '../host/errors.js';
import {
  MIN_WORKLOAD_SIZE,
  WORKLOADS,
  getWorkload,
  loadWorkload,
  workloadPath,
  type WorkloadExports,
} from '../host/workloads.js';

const root = join(import.meta.dirname, '..');
const KiB = 1024;
const MiB = 1024 * KiB;

beforeAll(() => {
  // Fast when the modules are up to date (the script compares modification times).
  execFileSync(process.execPath, [join(root, 'scripts', 'build-assembly.mjs')], { cwd: root, stdio: 'pipe' });
}, 120_000);

function instantiate(name: string): WorkloadExports {
  const module = new WebAssembly.Module(loadWorkload(name));
  return new WebAssembly.Instance(module, {}).exports as unknown as WorkloadExports;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

// ---- A reader for the memory section, to check the module declares no maximum. ----

function readLeb(bytes: Uint8Array, pos: { at: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[pos.at++]!;
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return result;
    shift += 7;
  }
}

function memoryLimits(bytes: Uint8Array): { min: number; max?: number }[] {
  const pos = { at: 8 }; // after magic and version
  const memories: { min: number; max?: number }[] = [];
  while (pos.at < bytes.length) {
    const id = bytes[pos.at++]!;
    const size = readLeb(bytes, pos);
    const end = pos.at + size;
    if (id === 5) {
      for (let count = readLeb(bytes, pos); count > 0; count--) {
        const flags = bytes[pos.at++]!;
        const min = readLeb(bytes, pos);
        memories.push((flags & 1) !== 0 ? { min, max: readLeb(bytes, pos) } : { min });
      }
    }
    pos.at = end;
  }
  return memories;
}

// ---- JS references: SplitMix64 and fold, as in assembly/lib, on BigInt. ----

const M64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const CHECKSUM_BASIS = 0xcbf29ce484222325n;

function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}

function randomStream(seed: number, stream: number): () => bigint {
  let state = mix64((BigInt(seed >>> 0) << 32n) | BigInt(stream));
  return () => {
    state = (state + GAMMA) & M64;
    return mix64(state);
  };
}

function below(r: bigint, n: number): number {
  return Number(((r & 0xffffffffn) * BigInt(n)) >> 32n);
}

function fold(h: bigint, v: bigint): bigint {
  h = ((h ^ BigInt.asUintN(64, v)) * GAMMA) & M64;
  return h ^ (h >> 32n);
}

function seqscanReference(sizeBytes: number, seed: number): bigint {
  const n = Math.floor(sizeBytes / 8);
  const next = randomStream(seed, 0);
  const words = Array.from({ length: n }, next);
  let sum1 = 0n;
  for (const w of words) sum1 += w;
  let sum3 = 0n;
  for (let i = 0; i < n; i++) {
    words[i] = (words[i]! * GAMMA + BigInt(i)) & M64;
    sum3 += words[i]!;
  }
  let sum4 = 0n; // u64 at byte 4 + 8k: high half of word k, low half of word k + 1
  for (let k = 0; k + 1 < n; k++) sum4 += (words[k]! >> 32n) | ((words[k + 1]! & 0xffffffffn) << 32n);
  let h = fold(CHECKSUM_BASIS, BigInt(n));
  for (const s of [sum1, sum1, sum3, sum4]) h = fold(h, s & M64);
  return BigInt.asIntN(64, h);
}

function sortReference(sizeBytes: number, seed: number): bigint {
  const n = sizeBytes >> 2;
  const next = randomStream(seed, 0);
  const a = Int32Array.from({ length: n }, () => Number(BigInt.asIntN(32, next())));
  a.sort();
  let sum = 0n;
  let weighted = 0n;
  for (let i = 0; i < n; i++) {
    sum += BigInt(a[i]!);
    weighted = (weighted + BigInt(i + 1) * BigInt(a[i]!)) & M64;
  }
  let h = fold(CHECKSUM_BASIS, BigInt(n));
  h = fold(h, weighted);
  h = fold(h, sum);
  h = fold(h, BigInt(a[n >> 1]!));
  return BigInt.asIntN(64, h);
}

function matmulReference(sizeBytes: number, seed: number): bigint {
  const n = Math.floor(Math.sqrt(sizeBytes / 24));
  const next = randomStream(seed, 0);
  const a = Float64Array.from({ length: n * n }, () => below(next(), 17) - 8);
  const b = Float64Array.from({ length: n * n }, () => below(next(), 17) - 8);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      for (let j = 0; j < n; j++) c[i * n + j]! += aik * b[k * n + j]!;
    }
  }
  let weighted = 0n;
  for (let i = 0; i < n * n; i++) weighted = (weighted + BigInt(i + 1) * BigInt(c[i]!)) & M64;
  let h = fold(CHECKSUM_BASIS, BigInt(n));
  h = fold(h, weighted);
  h = fold(h, new BigUint64Array(c.buffer, (n * n - 1) * 8, 1)[0]!);
  return BigInt.asIntN(64, h);
}

// ---- Tests ----

describe('workload catalog', () => {
  it('lists exactly the workloads under assembly/workloads', () => {
    const sources = readdirSync(join(root, 'assembly', 'workloads'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3))
      .sort();
    expect(WORKLOADS.map((w) => w.name).sort()).toEqual(sources);
    for (const w of WORKLOADS) {
      expect(w.description.length).toBeGreaterThan(10);
      expect(w.defaultSize).toBeGreaterThanOrEqual(MIN_WORKLOAD_SIZE);
    }
  });

  it('resolves built modules by absolute path', () => {
    for (const w of WORKLOADS) {
      const path = workloadPath(w.name);
      expect(isAbsolute(path)).toBe(true);
      expect(path).toBe(join(root, 'build', 'assembly', `${w.name}.wasm`));
      expect(existsSync(path)).toBe(true);
    }
  });

  it('rejects an unknown workload name, listing the known ones', () => {
    expect(() => getWorkload('nope')).toThrow(OptionError);
    expect(() => workloadPath('nope')).toThrow(/Unknown workload "nope": expected one of seqscan, stride,/);
    const err = catchError(() => loadWorkload('nope'));
    expect(err).toBeInstanceOf(FarmemError);
    expect((err as FarmemError).code).toBe('FM_ERR_INVALID_OPTION');
  });
});

describe.each(WORKLOADS.map((w) => w.name))('workload %s', (name) => {
  it('has no imports, exports run and memory, and declares no maximum memory', () => {
    const bytes = loadWorkload(name);
    const module = new WebAssembly.Module(bytes);
    expect(WebAssembly.Module.imports(module)).toEqual([]);
    expect(WebAssembly.Module.exports(module)).toEqual(
      expect.arrayContaining([
        { name: 'run', kind: 'function' },
        { name: 'memory', kind: 'memory' },
      ]),
    );
    const limits = memoryLimits(bytes);
    expect(limits).toHaveLength(1);
    expect(limits[0]!.max).toBeUndefined();
  });

  it('is deterministic, depends on seed and size, and uses about sizeBytes of memory', () => {
    const size = 512 * KiB;
    const a = instantiate(name);
    const first = a.run(size, 1);
    expect(typeof first).toBe('bigint');
    expect(a.run(size, 1)).toBe(first); // again in the same, already grown instance
    expect(instantiate(name).run(size, 1)).toBe(first); // and in a fresh one
    expect(a.run(size, 2)).not.toBe(first);
    expect(a.run(size, -1)).not.toBe(a.run(size, 0x7fffffff));
    expect(a.run(2 * MiB, 1)).not.toBe(first);
    // A smaller run after a bigger one must not see the bigger run's leftovers.
    expect(a.run(size, 1)).toBe(first);

    const fresh = instantiate(name);
    fresh.run(2 * MiB, 3);
    const bytes = fresh.memory.buffer.byteLength;
    expect(bytes).toBeGreaterThanOrEqual(2 * MiB - 64 * KiB);
    expect(bytes).toBeLessThanOrEqual(2 * MiB + 2 * 64 * KiB);
  });

  it('runs at the minimum size and traps below it', () => {
    const w = instantiate(name);
    expect(typeof w.run(MIN_WORKLOAD_SIZE, 5)).toBe('bigint');
    expect(() => w.run(MIN_WORKLOAD_SIZE - 1, 5)).toThrow(WebAssembly.RuntimeError);
  });
});

describe('workload checksums match JS references', () => {
  it.each([
    ['seqscan', seqscanReference, 256 * KiB + 8], // an odd word count: exercises the SIMD tail
    ['sort', sortReference, 256 * KiB],
    ['matmul', matmulReference, 256 * KiB],
  ] as const)('%s', (name, reference, size) => {
    const w = instantiate(name);
    for (const seed of [0, 1, -7]) expect(w.run(size, seed)).toBe(reference(size, seed));
  });
});

describe('big working sets', () => {
  it('grow reaches 64 MiB of memory through memory.grow and stays deterministic', () => {
    const w = instantiate('grow');
    const before = w.memory.buffer.byteLength;
    const first = w.run(64 * MiB, 11);
    expect(before).toBeLessThan(64 * KiB * 2);
    expect(w.memory.buffer.byteLength).toBeGreaterThanOrEqual(64 * MiB);
    expect(w.run(64 * MiB, 11)).toBe(first);
  });
});
