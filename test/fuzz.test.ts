/**
 * @fileoverview Fuzz differential: random modules from binaryen's translate-to-fuzz (`wasm-opt -ttf`)
 * run unmodified on V8 and instrumented under farmem with a tiny frame pool, at page sizes 256,
 * 4096 and 65536, with every prefetcher; every export's result or trap, every logged value and the final memory must match.
 *
 * Modules are generated here from a fixed seed list (seed → pseudo-random input bytes → wasm-opt,
 * every fourth seed also with -O2, which folds constants into offsets and reshapes accesses), so a
 * run is deterministic for a given wasm-opt. The native Debian `wasm-opt` (binaryen 108) is
 * preferred: it takes ~40 ms per module where the npm package's JS build takes ~1.4 s.
 * ttf is asked for threads so it emits atomics; the memory it then declares shared is turned back
 * into an unshared one (atomics are valid on unshared memories; farmem refuses shared ones).
 *
 * Failing seeds are kept under test/fixtures/fuzz-regressions/: `<seed>.bin` (the input bytes) and
 * `<seed>.wasm` (the generated module, so the case survives a different wasm-opt). Environment:
 *   FARMEM_FUZZ_SEEDS=n    number of seeds (default 200)      FARMEM_FUZZ_START=s  first seed (default 1)
 *   FARMEM_FUZZ_SAVE=1     save new failing seeds as fixtures  FARMEM_FUZZ_VERBOSE=1  print every mismatch
 *   FARMEM_FUZZ_FEATURES="--enable-..."  extra ttf feature flags   FARMEM_FUZZ_PREFETCH=leap  prefetch policy
 *   FARMEM_FUZZ_WASM_OPT=path   another generator, e.g. node_modules/binaryen/bin/wasm-opt (binaryen 132)
 * `scripts/fuzz-soak.mjs` runs thousands of seeds this way.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import binaryen from 'binaryen';
import { afterAll, describe, expect, it } from 'vitest';
import { runBoth, type Call, type DiffResult } from './support/differential.js';

const run = promisify(execFile);

const FIXTURES = join(import.meta.dirname, 'fixtures', 'fuzz-regressions');
const wasmOpt = findWasmOpt();
/** The npm package's JS wasm-opt takes ~1.4 s per module: without the native one, run fewer. */
const NATIVE = wasmOpt !== null && wasmOpt.length === 1;
const SEEDS = Number(process.env.FARMEM_FUZZ_SEEDS ?? (NATIVE ? 200 : 40));
const START = Number(process.env.FARMEM_FUZZ_START ?? 1);
const SAVE = process.env.FARMEM_FUZZ_SAVE === '1';
const VERBOSE = process.env.FARMEM_FUZZ_VERBOSE === '1';

/** Features ttf may use: what farmem instruments and Node 20's V8 runs. */
const FEATURE_FLAGS = [
  '--enable-sign-ext', '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-simd',
  '--enable-mutable-globals', '--enable-multivalue', '--enable-threads',
  // More flags for a soak, e.g. "--enable-reference-types --enable-tail-call --enable-exception-handling".
  ...(process.env.FARMEM_FUZZ_FEATURES ?? '').split(/\s+/).filter(Boolean),
];

function findWasmOpt(): string[] | null {
  const chosen = process.env.FARMEM_FUZZ_WASM_OPT;
  if (chosen) return chosen.endsWith('.js') || chosen.includes('node_modules') ? [process.execPath, chosen] : [chosen];
  if (existsSync('/usr/bin/wasm-opt')) return ['/usr/bin/wasm-opt'];
  const local = join(import.meta.dirname, '..', 'node_modules', 'binaryen', 'bin', 'wasm-opt');
  return existsSync(local) ? [process.execPath, local] : null;
}

/** Deterministic input bytes for a seed (xorshift32), 256 B to ~6 KiB so module sizes vary. */
export function seedBytes(seed: number): Uint8Array {
  let x = (Math.imul(seed, 0x9e3779b1) ^ 0xdeadbeef) >>> 0 || 1;
  const next = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>>= 0); };
  const out = new Uint8Array(256 + (next() % 6000));
  for (let i = 0; i < out.length; i++) out[i] = next() & 0xff;
  return out;
}

/** Clears the `shared` bit of a module's (first, defined) memory in place. */
function unshareMemory(bytes: Uint8Array): void {
  let at = 8;
  const leb = () => { let v = 0; let shift = 0; let b: number; do { b = bytes[at++]!; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80); return v >>> 0; };
  while (at < bytes.length) {
    const id = bytes[at++]!;
    const size = leb();
    const end = at + size;
    if (id === 5) {
      if (leb() > 0 && (bytes[at]! & 2)) bytes[at] = bytes[at]! & ~2;
      return;
    }
    at = end;
  }
}

let workDir = '';

async function generate(seed: number, input: Uint8Array): Promise<Uint8Array> {
  workDir ||= await mkdtemp(join(tmpdir(), 'farmem-fuzz-'));
  const inPath = join(workDir, `${seed}.bin`);
  const outPath = join(workDir, `${seed}.wasm`);
  await writeFile(inPath, input);
  // Every fourth seed is also optimized, which folds constants into offsets, merges accesses, etc.
  const optimize = seed % 4 === 3 ? ['-O2'] : [];
  await run(wasmOpt![0]!, [...wasmOpt!.slice(1), inPath, '-ttf', ...FEATURE_FLAGS, ...optimize, '-o', outPath], { timeout: 60_000 });
  const bytes = new Uint8Array(await readFile(outPath));
  unshareMemory(bytes);
  return bytes;
}

type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'other';

/** Exported functions and their parameter types, in export order. */
function exportedFunctions(bytes: Uint8Array): { name: string; params: ValType[] }[] {
  const module = binaryen.readBinary(bytes);
  try {
    const out: { name: string; params: ValType[] }[] = [];
    for (let i = 0; i < module.getNumExports(); i++) {
      const exp = binaryen.getExportInfo(module.getExportByIndex(i));
      if (exp.kind !== binaryen.ExternalFunction) continue;
      const fn = binaryen.getFunctionInfo(module.getFunction(exp.value));
      const params = binaryen.expandType(fn.params).map((t): ValType =>
        t === binaryen.i32 ? 'i32' : t === binaryen.i64 ? 'i64' : t === binaryen.f32 ? 'f32' : t === binaryen.f64 ? 'f64' : 'other');
      out.push({ name: exp.name, params });
    }
    return out;
  } finally {
    module.dispose();
  }
}

function argFor(type: ValType, k: number): unknown {
  const ints = [0, 1, -1, 7, 0x7fffffff, -0x80000000, 65536, 255];
  switch (type) {
    case 'i32': return ints[k % ints.length];
    case 'i64': return BigInt(ints[k % ints.length]!) * 0x1_0000_0001n;
    case 'f32': case 'f64': return [0, -0, 1.5, -3.25, Infinity, NaN, 1e-40][k % 7];
    default: return null;
  }
}

/** ttf's harness calls every export once, resetting the hang limit before each call. */
function callsFor(bytes: Uint8Array, seed: number): Call[] {
  const calls: Call[] = [];
  for (const { name, params } of exportedFunctions(bytes)) {
    if (name === 'hangLimitInitializer') continue;
    calls.push({ fn: name, args: params.map((t, i) => argFor(t, seed + i)) });
  }
  return calls;
}

const PAGE_SIZES = [256, 4096, 65536] as const;

const PREFETCH = ['none', 'leap', 'stride', 'readahead'] as const;

/**
 * Page size, pool size and prefetcher for a seed: every page size; mostly 2 to 5 frames, and one
 * seed in five a roomy 4 MiB pool (larger than the module's memory, so physical memory extends far
 * past the page tables and stray accesses cannot rely on landing outside it); every prefetcher.
 * `FARMEM_FUZZ_PREFETCH` and `FARMEM_FUZZ_FRAMES` force one.
 */
export function configFor(seed: number): FuzzConfig {
  const pageSize = PAGE_SIZES[seed % 3]!;
  const prefetch = process.env.FARMEM_FUZZ_PREFETCH ?? PREFETCH[(seed >>> 3) % 4]!;
  let frames = seed % 5 === 4 ? (4 << 20) / pageSize : 2 + ((seed >>> 2) % 4);
  if (process.env.FARMEM_FUZZ_FRAMES) frames = Number(process.env.FARMEM_FUZZ_FRAMES);
  return { pageSize, frames, prefetch };
}

interface FuzzConfig {
  readonly pageSize: number;
  readonly frames: number;
  readonly prefetch: string;
}

type Outcome =
  | { kind: 'ok'; diff: DiffResult }
  | { kind: 'skipped'; reason: string }
  | { kind: 'mismatch'; diff: DiffResult };

async function runModule(bytes: Uint8Array, seed: number, config: FuzzConfig = configFor(seed)): Promise<Outcome> {
  if (!WebAssembly.validate(bytes as BufferSource)) return { kind: 'skipped', reason: 'V8 rejects it' };
  const { pageSize, frames, prefetch } = config;
  const diff = await runBoth(bytes, callsFor(bytes, seed), { pageSize, frames, prefetch, before: 'hangLimitInitializer' });
  // A module farmem refuses by design (an unsupported feature) is skipped, not a failure.
  if (diff.farmem.instantiate.startsWith('error InstrumentError')) return { kind: 'skipped', reason: diff.farmem.instantiate };
  return diff.mismatches.length === 0 ? { kind: 'ok', diff } : { kind: 'mismatch', diff };
}

/**
 * Saved regression seeds: 1, 2, 6 failed when every data segment was lost; 6097, 6162, 6513 with
 * stride prefetching and two frames, when a prefetch could clash with the zero-delta frame. Both
 * fixed; each must now run clean.
 */

/** Saved cases: `<seed>.bin` input, `<seed>.wasm` module, optional `<seed>.json` config it failed with. */
async function loadRegressions(): Promise<{ seed: number; bytes: Uint8Array; config: FuzzConfig }[]> {
  if (!existsSync(FIXTURES)) return [];
  const names = (await readdir(FIXTURES)).filter((n) => n.endsWith('.bin'));
  const out: { seed: number; bytes: Uint8Array; config: FuzzConfig }[] = [];
  for (const name of names) {
    const seed = Number(name.slice(0, -4));
    const wasmPath = join(FIXTURES, `${seed}.wasm`);
    const bytes = existsSync(wasmPath)
      ? new Uint8Array(await readFile(wasmPath))
      : await generate(seed, new Uint8Array(await readFile(join(FIXTURES, name))));
    const configPath = join(FIXTURES, `${seed}.json`);
    const config = existsSync(configPath) ? JSON.parse(await readFile(configPath, 'utf8')) as FuzzConfig : configFor(seed);
    out.push({ seed, bytes, config });
  }
  return out.sort((a, b) => a.seed - b.seed);
}

describe.skipIf(wasmOpt === null)('fuzz differential (wasm-opt -ttf)', () => {
  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  if (!NATIVE) console.warn('fuzz: native wasm-opt not found (apt-get install -y binaryen); using the slow JS build and 40 seeds');
  it(`${SEEDS} random modules from seeds ${START}..${START + SEEDS - 1} behave identically`, async () => {
    const seeds = Array.from({ length: SEEDS }, (_, i) => START + i);
    // Generate two at a time (wasm-opt is a separate process), run as they arrive.
    const modules = new Map<number, Promise<Uint8Array>>();
    const want = (i: number) => {
      const seed = seeds[i];
      if (seed !== undefined && !modules.has(seed)) modules.set(seed, generate(seed, seedBytes(seed)));
    };
    want(0);
    want(1);
    const skipped: string[] = [];
    const failures: { seed: number; mismatches: string[] }[] = [];
    let known = 0;
    let calls = 0;
    let faults = 0;
    for (let i = 0; i < seeds.length; i++) {
      const seed = seeds[i]!;
      want(i + 1);
      want(i + 2);
      const bytes = await modules.get(seed)!;
      modules.delete(seed);
      const outcome = await runModule(bytes, seed);
      if (outcome.kind === 'skipped') {
        skipped.push(`${seed}: ${outcome.reason}`);
        continue;
      }
      calls += outcome.diff.original.results.length;
      faults += outcome.diff.stats?.majorFaults ?? 0;
      if (outcome.kind === 'mismatch') {
        if (SAVE) {
          await mkdir(FIXTURES, { recursive: true });
          await writeFile(join(FIXTURES, `${seed}.bin`), seedBytes(seed));
          await writeFile(join(FIXTURES, `${seed}.wasm`), bytes);
          await writeFile(join(FIXTURES, `${seed}.json`), `${JSON.stringify(configFor(seed))}\n`);
        }
        failures.push({ seed, mismatches: outcome.diff.mismatches });
        if (VERBOSE) console.log(`seed ${seed} (${JSON.stringify(configFor(seed))}):\n  ${outcome.diff.mismatches.slice(0, 8).join('\n  ')}`);
      }
    }
    console.log(`fuzz: ${seeds.length} seeds, ${skipped.length} skipped, ${failures.length} failing; ${calls} export calls, ${faults} major faults`);
    if (skipped.length > 0) console.log(`skipped:\n  ${skipped.slice(0, 10).join('\n  ')}`);
    // Most generated modules must really run, and really fault with a tiny pool.
    expect(skipped.length).toBeLessThan(seeds.length * 0.1);
    expect(calls).toBeGreaterThan(seeds.length);
    expect(faults).toBeGreaterThan(seeds.length);
    expect(failures.map((f) => `seed ${f.seed} (${JSON.stringify(configFor(f.seed))}): ${f.mismatches[0]}`)).toEqual([]);
  }, 600_000);

  describe('regressions', async () => {
    const cases = await loadRegressions();
    if (cases.length === 0) it.skip('no regression seeds saved yet', () => {});
    it.each(cases.map((c) => [c.seed, c] as const))('seed %i', async (_seed, { seed, bytes, config }) => {
      const outcome = await runModule(bytes, seed, config);
      expect(outcome.kind === 'skipped' ? outcome.reason : 'ran').toBe('ran');
      expect(outcome.kind === 'mismatch' ? outcome.diff.mismatches : []).toEqual([]);
    });
  });
});
