/**
 * @fileoverview Differential harness: runs a module as-is on V8 and instrumented under farmem, with
 * the same sequence of export calls and the same import behaviour, and lists every difference in
 * instantiation outcome, per-call result or trap, import-call log, memory size and memory bytes.
 *
 *   const diff = await runBoth(wat(`(module ...)`), [{ fn: 'load', args: [255] }], { pageSize: 256 });
 *   expect(diff.mismatches).toEqual([]);
 *
 * Values are normalised to strings so that comparisons are exact and failures readable:
 *   i32/f32/f64 (JS numbers) → `num:<f64 bit pattern>` (NaN payloads compared bit for bit),
 *   i64 → `i64:<value>`, multi-value → `[a, b]`, funcref → `func`, a trap → `trap <Class>: <message>`.
 *
 * Node 24 also runs this file, type-stripped against dist/ (node24-diff.ts, for memory64,
 * multi-memory and GC modules): keep it to erasable TypeScript (no enums, namespaces or
 * parameter properties) and import farmem only from `../../host/`.
 */
import binaryen from 'binaryen';
import { instantiate, loadWorkload, type FarmemInstance } from '../../host/index.js';
import type { WorkloadExports } from '../../host/workloads.js';
import type { FarmemOptions } from '../../host/runtime/instance.js';
import type { RuntimeStats } from '../../host/stats/counters.js';

export interface Call {
  readonly fn: string;
  readonly args?: readonly unknown[];
}

export interface DiffOptions {
  readonly pageSize: number;
  /** Frame pool size in frames (default 2); ignored when `local` is given. */
  readonly frames?: number;
  readonly local?: FarmemOptions['local'];
  /** Prefetch policy for the farmem run (default none). */
  readonly prefetch?: string;
  /** Builds the caller's imports for one run; `log` records import calls for comparison. */
  readonly imports?: (log: string[]) => WebAssembly.Imports;
  /** Export called (unlogged) before every call, e.g. ttf's `hangLimitInitializer`. */
  readonly before?: string;
  /** Compare memory after every call (`each`), only at the end (default), or not at all. */
  readonly memory?: 'each' | 'end' | 'none';
  /** Treat any two NaNs as equal (for generators that do not de-NaN). Default false: compare bits. */
  readonly nanEqual?: boolean;
  /** Memory servers for the farmem run (I/O worker + reclaimer) instead of the embedded store. */
  readonly remote?: FarmemOptions['remote'];
  /** Instrumenter optimizations switched off for the farmem run. */
  readonly optimize?: FarmemOptions['optimize'];
}

export interface RunRecord {
  /** `ok`, or `error <Class>: <message>` if instantiation failed. */
  instantiate: string;
  results: string[];
  logs: string[];
  /** Memory size in bytes after each call (`each`) or at the end; null if the memory is not exported. */
  memorySizes: (number | null)[];
  memories: (Uint8Array | null)[];
  /** Errors thrown while reading memory for a snapshot (never expected). */
  snapshotErrors: string[];
}

export interface DiffResult {
  readonly original: RunRecord;
  readonly farmem: RunRecord;
  readonly stats: RuntimeStats | null;
  readonly mismatches: string[];
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** Exact, comparable text for a value crossing the JS/Wasm boundary. */
export function normalize(value: unknown, nanEqual = false): string {
  if (value === undefined) return 'void';
  if (value === null) return 'null';
  if (typeof value === 'bigint') return `i64:${BigInt.asIntN(64, value)}`;
  if (typeof value === 'number') {
    if (nanEqual && Number.isNaN(value)) return 'num:nan';
    f64[0] = value;
    return `num:${u64[0]!.toString(16)}(${value})`;
  }
  if (Array.isArray(value)) return `[${value.map((v) => normalize(v, nanEqual)).join(', ')}]`;
  if (typeof value === 'function') return 'func';
  return `${typeof value}`;
}

/** `WebAssembly.instantiate(): ` and similar API prefixes are not part of the trap's meaning. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const message = err.message.replace(/^WebAssembly\.[A-Za-z.]+\(\): /, '');
    return `${err.constructor.name}: ${message}`;
  }
  return `non-error ${String(err)}`;
}

/** Imports that log every call (the fuzzer's `fuzzing-support.log-*`, and anything else named). */
export function loggingImports(module: WebAssembly.Module, log: string[], nanEqual = false): WebAssembly.Imports {
  const imports: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') continue;
    const name = `${imp.module}.${imp.name}`;
    (imports[imp.module] ??= {})[imp.name] = (...args: unknown[]) => {
      log.push(`${name}(${args.map((a) => normalize(a, nanEqual)).join(', ')})`);
    };
  }
  return imports;
}

function emptyRecord(): RunRecord {
  return { instantiate: 'ok', results: [], logs: [], memorySizes: [], memories: [], snapshotErrors: [] };
}

interface Runner {
  readonly exports: WebAssembly.Exports;
  snapshot(): { size: number; bytes: Uint8Array } | null;
}

async function drive(make: (imports: WebAssembly.Imports) => Promise<Runner>, importsFor: (log: string[]) => WebAssembly.Imports,
  calls: readonly Call[], options: DiffOptions): Promise<RunRecord> {
  const record = emptyRecord();
  const mode = options.memory ?? 'end';
  let runner: Runner;
  try {
    runner = await make(importsFor(record.logs));
  } catch (err) {
    record.instantiate = `error ${describeError(err)}`;
    return record;
  }
  const snap = () => {
    try {
      const s = runner.snapshot();
      record.memorySizes.push(s?.size ?? null);
      record.memories.push(s?.bytes ?? null);
    } catch (err) {
      record.snapshotErrors.push(describeError(err));
    }
  };
  for (const call of calls) {
    const before = options.before !== undefined ? runner.exports[options.before] : undefined;
    if (typeof before === 'function') (before as () => void)();
    const fn = runner.exports[call.fn];
    if (typeof fn !== 'function') {
      record.results.push(`missing export ${call.fn}`);
      continue;
    }
    try {
      record.results.push(normalize((fn as (...a: unknown[]) => unknown)(...(call.args ?? [])), options.nanEqual));
    } catch (err) {
      record.results.push(`trap ${describeError(err)}`);
    }
    if (mode === 'each') snap();
  }
  if (mode === 'end') snap();
  return record;
}

/** Runs `wasm` unmodified on V8. */
export async function runOriginal(wasm: Uint8Array, calls: readonly Call[], options: DiffOptions): Promise<RunRecord> {
  const module = await WebAssembly.compile(wasm as BufferSource);
  const importsFor = options.imports ?? ((log: string[]) => loggingImports(module, log, options.nanEqual));
  return drive(async (imports) => {
    const instance = await WebAssembly.instantiate(module, imports);
    const memory = Object.values(instance.exports).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined;
    return {
      exports: instance.exports,
      snapshot: () => (memory ? { size: memory.buffer.byteLength, bytes: new Uint8Array(memory.buffer).slice() } : null),
    };
  }, importsFor, calls, options);
}

/** Runs `wasm` instrumented under farmem with a tiny frame pool; returns the record and final stats. */
export async function runFarmem(wasm: Uint8Array, calls: readonly Call[], options: DiffOptions): Promise<{ record: RunRecord; stats: RuntimeStats | null }> {
  // With imports given, the original is never compiled here: Node 20 runs a memory64 module only instrumented.
  const module = options.imports ? null : await WebAssembly.compile(wasm as BufferSource);
  const importsFor = options.imports ?? ((log: string[]) => loggingImports(module!, log, options.nanEqual));
  let fm: FarmemInstance | null = null;
  const local = options.local ?? { bytes: options.pageSize * (options.frames ?? 2) };
  const record = await drive(async (imports) => {
    fm = await instantiate(wasm, imports, {
      pageSize: options.pageSize,
      local,
      ...(options.prefetch ? { prefetch: options.prefetch } : {}),
      ...(options.remote ? { remote: options.remote } : {}),
      ...(options.optimize ? { optimize: options.optimize } : {}),
    });
    const inst = fm;
    return {
      exports: inst.exports,
      snapshot: () => (inst.memory && inst.meta.memoryExport !== null
        ? { size: inst.memory.byteLength, bytes: inst.memory.read(0, inst.memory.byteLength) }
        : null),
    };
  }, importsFor, calls, options);
  const inst = fm as FarmemInstance | null;
  const stats = inst ? inst.stats() : null;
  if (inst) await inst.close();
  return { record, stats };
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function hex(bytes: Uint8Array, at: number): string {
  const from = Math.max(0, at - 4);
  return Array.from(bytes.subarray(from, at + 12), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Lists the differences between two records, most informative first. */
export function compareRecords(a: RunRecord, b: RunRecord, calls: readonly Call[]): string[] {
  const out: string[] = [];
  if (a.instantiate !== b.instantiate) out.push(`instantiate: original ${a.instantiate} / farmem ${b.instantiate}`);
  const n = Math.max(a.results.length, b.results.length);
  for (let i = 0; i < n; i++) {
    if (a.results[i] !== b.results[i]) {
      const call = calls[i];
      const args = (call?.args ?? []).map((x) => (typeof x === 'bigint' ? `${x}n` : String(x))).join(', ');
      out.push(`call #${i} ${call?.fn}(${args}): original ${a.results[i]} / farmem ${b.results[i]}`);
    }
  }
  const logs = Math.max(a.logs.length, b.logs.length);
  for (let i = 0; i < logs; i++) {
    if (a.logs[i] !== b.logs[i]) {
      out.push(`log #${i} (of ${a.logs.length}/${b.logs.length}): original ${a.logs[i]} / farmem ${b.logs[i]}`);
      break;
    }
  }
  for (const e of [...a.snapshotErrors, ...b.snapshotErrors]) out.push(`memory snapshot failed: ${e}`);
  const snaps = Math.max(a.memories.length, b.memories.length);
  for (let i = 0; i < snaps; i++) {
    const where = a.memories.length > 1 ? ` after call #${i} ${calls[i]?.fn}` : '';
    if (a.memorySizes[i] !== b.memorySizes[i]) out.push(`memory size${where}: original ${a.memorySizes[i]} / farmem ${b.memorySizes[i]}`);
    const ma = a.memories[i];
    const mb = b.memories[i];
    if ((ma === null) !== (mb === null)) out.push(`memory${where}: exported by one run only`);
    if (ma && mb) {
      const at = firstDifference(ma, mb);
      if (at >= 0) {
        out.push(`memory${where} differs first at byte ${at}: original [${hex(ma, at)}] / farmem [${hex(mb, at)}]`);
        break; // later snapshots usually repeat the same difference
      }
    }
  }
  return out;
}

/** Runs both and compares; see the file header. */
export async function runBoth(wasm: Uint8Array, calls: readonly Call[], options: DiffOptions): Promise<DiffResult> {
  const original = await runOriginal(wasm, calls, options);
  const { record: farmem, stats } = await runFarmem(wasm, calls, options);
  return { original, farmem, stats, mismatches: compareRecords(original, farmem, calls) };
}

/** WAT of an export `sum(n)`: stores 0..n-1 into the first n words, then sums them back (n(n-1)/2 mod 2^32). */
export const SUM_WORDS_FUNC = `  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $i))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.set $i (i32.const 0))
    (loop $l2 (local.set $s (i32.add (local.get $s) (i32.load (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l2 (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $s))
`;

/**
 * WAT → binary with every feature binaryen knows enabled (V8 decides what it accepts), or with
 * `features`: GC changes how `ref.null`/`ref.func` are encoded, which Node 20 cannot load.
 */
export function wat(text: string, features: number = binaryen.Features.All): Uint8Array {
  const module = binaryen.parseText(text);
  try {
    module.setFeatures(features);
    return module.emitBinary();
  } finally {
    module.dispose();
  }
}

/** What V8 in Node 20 runs: MVP plus reference types, bulk memory, SIMD, atomics, legacy EH, tail calls. */
export const NODE20_FEATURES = binaryen.Features.All & ~(binaryen.Features.GC | binaryen.Features.Strings
  | binaryen.Features.StackSwitching | binaryen.Features.SharedEverything);

/** The page sizes the differential tests run at: smallest, typical, largest. */
export const PAGE_SIZES = [256, 4096, 65536] as const;

/* ── the workload suite (assembly/workloads): checksum on plain V8 vs under farmem ───────────── */

const workloadChecksums = new Map<string, bigint>();

/** A workload's checksum run unmodified on V8 (cached per name, size and seed). */
export async function workloadReference(name: string, size: number, seed: number): Promise<bigint> {
  const key = `${name}/${size}/${seed}`;
  if (!workloadChecksums.has(key)) {
    const { instance } = await WebAssembly.instantiate(loadWorkload(name));
    workloadChecksums.set(key, (instance.exports as unknown as WorkloadExports).run(size, seed));
  }
  return workloadChecksums.get(key)!;
}

/** Runs a workload instrumented under farmem with `options` (any store); returns its checksum and final stats. */
export async function runWorkloadFar(name: string, size: number, seed: number, options: FarmemOptions): Promise<{ result: bigint; stats: RuntimeStats }> {
  const fm = await instantiate(loadWorkload(name), {}, options);
  try {
    const result = (fm.exports as unknown as WorkloadExports).run(size, seed);
    return { result, stats: fm.stats() };
  } finally {
    await fm.close();
  }
}
