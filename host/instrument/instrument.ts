/**
 * @fileoverview `instrument(bytes, { pageSize })`: turns a module into one that runs on far memory.
 * Steps: check framing and memory kind (sections.ts), validate with V8, read with binaryen, record
 * the memory's limits and data segments as metadata, replace the memory by the imported physical
 * memory `farmem.memory`, add the `farmem.*` imports, run the memory pass over every function,
 * validate, and emit. Data segments are removed from the module: the runtime writes active ones into
 * the backing store as the initial image and serves memory.init from the recorded bytes.
 */
import { ABI_VERSION, DATA_SECTION, META_SECTION, encodeMeta, type GuestMeta, type SegmentMeta } from '../abi.js';
import { encodeUleb } from '../leb128.js';
import { checkPageSize, guestLayout, MAX_PHYS_WASM_PAGES, MAX_WASM64_PAGES, MAX_WASM_PAGES, type Layout } from '../layout.js';
import { OptionError } from '../errors.js';
import { binaryen, C, FEATURES_ALL, VERSION, type Module } from './binaryen.js';
import { diagnostic } from './diagnostics.js';
import { emitFeatures } from './features.js';
import { addAbiImports, IMPORT_NAMES, MemoryPass, NestedPop, type PassCounts } from './memory-pass.js';
import { addStraddleHelper } from './straddle.js';
import { optimizationsKey, resolveOptimizations, type Optimizations } from './optimizations.js';
import { memoryNamePointer, planMemories } from './memories.js';
import { addAbi64Imports, Memory64Pass, type Region } from './memory64-pass.js';
import { readSegments } from './segments.js';
import { scanMemories } from './sections.js';
import { addSharedImports } from './shared-memory.js';
import { expressionName, UnsupportedExpression } from './visitor.js';

/** Bump when the emitted code changes: it is part of the instrumentation cache key. */
export const INSTRUMENTER_VERSION = `1.0.0+binaryen${VERSION}`;

export interface InstrumentOptions {
  /** Page size in bytes, a power of two from 256 to 65536. Default 4096. */
  pageSize?: number;
  /** Run binaryen's validator on the output (default true). */
  validate?: boolean;
  /** Called after each function with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Optimizations to switch off (all are on by default), e.g. `{ chunk: false }`; see optimizations.ts. */
  optimize?: Partial<Optimizations>;
}

export interface InstrumentResult {
  readonly binary: Uint8Array;
  readonly meta: GuestMeta;
  readonly layout: Layout;
  readonly counts: PassCounts & { functions: number };
}

const OPTION_KEYS = new Set(['pageSize', 'validate', 'onProgress', 'optimize']);

export function checkInstrumentOptions(options: InstrumentOptions): { pageSize: number; optimize: Optimizations } {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new OptionError(`Invalid option in instrument() call: "${key}"`);
  }
  const pageSize = options.pageSize ?? 4096;
  checkPageSize(pageSize, '"pageSize"');
  return { pageSize, optimize: resolveOptimizations(options.optimize, 'instrument() call') };
}

export function instrument(bytes: Uint8Array, options: InstrumentOptions = {}): InstrumentResult {
  const { pageSize, optimize } = checkInstrumentOptions(options);
  const memories = scanMemories(bytes);
  const memory64 = memories.some((m) => m.memory64);
  const multi = memories.length > 1;
  const sharedMemory = memories.some((m) => m.shared);
  if (sharedMemory && (memory64 || multi)) throw diagnostic('FM1012');
  // An engine without memory64 or multi-memory (Node 20) cannot validate such a module, but can
  // run its instrumented form (one 32-bit physical memory): binaryen validates it instead.
  let binaryenValidates = false;
  if (!WebAssembly.validate(bytes as BufferSource)) {
    let reason = 'rejected by the WebAssembly validator';
    try {
      new WebAssembly.Module(bytes as BufferSource);
    } catch (err) {
      reason = (err as Error).message.replace(/^WebAssembly\.Module\(\): /, '');
    }
    const engineLacks = (memory64 && /memory64/.test(reason)) || (multi && /memory count of \d+ exceeds|At most one memory/.test(reason));
    if (!engineLacks) throw diagnostic('FM1005', reason);
    binaryenValidates = true;
  }

  let module: Module;
  try {
    module = (binaryen.readBinary as (data: Uint8Array, features: number) => Module)(bytes, FEATURES_ALL);
  } catch (err) {
    throw diagnostic('FM1014', describe(err));
  }
  try {
    if (binaryenValidates) {
      module.setFeatures(FEATURES_ALL);
      if (!module.validate()) throw diagnostic('FM1005', 'rejected by binaryen\'s validator (this Node has no memory64 to ask)');
    }
    return rewrite(module, pageSize, optimize, options, memories.length, sharedMemory);
  } catch (err) {
    // binaryen.js throws C++ exceptions as plain objects: every thrown value leaves as an Error with a code.
    if (err instanceof Error) throw err;
    throw diagnostic('FM1018', describe(err));
  } finally {
    module.dispose();
  }
}

/** Text for a thrown value that may not be an Error (binaryen.js throws C++ exceptions as objects). */
function describe(err: unknown): string {
  return err instanceof Error ? err.message : `non-Error exception ${JSON.stringify(err) ?? String(err)}`;
}

function rewrite(module: Module, pageSize: number, optimize: Optimizations, options: InstrumentOptions, memoryCount: number, sharedMemory: boolean): InstrumentResult {
  module.setFeatures(FEATURES_ALL);
  const hasMemory = module.hasMemory();
  const plan = memoryCount > 1 ? planMemories(module, pageSize, memoryCount) : null;
  const info = plan ? module.getMemoryInfo(plan.names[0]) : hasMemory ? module.getMemoryInfo() : null;
  const initialPages = info?.initial ?? 0;
  const hasMaximum = info?.max !== undefined && info.max !== null;
  const memory64 = info?.is64 === true;
  const maxPages = memory64 ? MAX_WASM64_PAGES : MAX_WASM_PAGES;
  const maximumPages = hasMaximum ? Math.min(info!.max!, maxPages) : maxPages;
  const layout = guestLayout(pageSize, memory64, maximumPages, plan?.memories.map((m) => m.spanPages));

  // Data segments: recorded in metadata, removed from the module.
  const { meta: segments, data, index: segmentIndex } = readSegments(module, plan?.regions);

  const functions: Record<string, { params: string[]; results: string[] }> = {};
  for (let i = 0; i < module.getNumExports(); i++) {
    const exp = binaryen.getExportInfo(module.getExportByIndex(i));
    if (exp.kind !== binaryen.ExternalFunction) continue;
    const fn = binaryen.getFunctionInfo(module.getFunction(exp.value));
    functions[exp.name] = { params: typeNames(fn.params), results: typeNames(fn.results) };
  }

  let memoryExport: string | null = null;
  let memoryName = 'farmem.physical';
  if (hasMemory) {
    for (let i = module.getNumExports() - 1; i >= 0; i--) {
      const exp = binaryen.getExportInfo(module.getExportByIndex(i));
      if (exp.kind === binaryen.ExternalMemory) {
        if (!plan || exp.value === plan.names[0]) memoryExport ??= exp.name; // fm.memory is memory 0
        module.removeExport(exp.name);
      }
    }
    memoryName = plan ? plan.names[0]! : firstMemoryName(module);
  }
  // Physical memory: imported, shared, limits wide enough for any frame count the runtime picks.
  module.setMemory(Math.ceil(layout.frameBase / 65536), MAX_PHYS_WASM_PAGES, null, [], true, false, memoryName);
  module.addMemoryImport(memoryName, 'farmem', 'memory', true);
  addAbiImports(module);
  const wide = memory64 || plan !== null;
  if (wide) addAbi64Imports(module);
  if (sharedMemory) addSharedImports(module);

  const regions: Region[] = plan?.regions ?? [{ index: 0, memory64: true, basePage: 0, spanPages: layout.numPages, name: 0 }];
  const pass = wide
    ? new Memory64Pass(module, layout, memoryName, segmentIndex, regions, plan ? memoryNamePointer(module, memoryName) : 0)
    : new MemoryPass(module, layout, memoryName, segmentIndex, optimize);
  if (pass instanceof MemoryPass) pass.sharedMemory = sharedMemory;
  const total = module.getNumFunctions();
  let instrumented = 0;
  for (let i = 0; i < total; i++) {
    const func = module.getFunctionByIndex(i);
    if (C._BinaryenFunctionGetBody!(func) === 0) continue; // an import
    try {
      pass.runOnFunction(func);
    } catch (err) {
      if (err instanceof UnsupportedExpression) throw diagnostic('FM1013', expressionName(err.id), binaryen.getFunctionInfo(func).name);
      if (err instanceof NestedPop) throw diagnostic('FM1016', binaryen.getFunctionInfo(func).name);
      throw err;
    }
    instrumented++;
    options.onProgress?.(i + 1, total);
  }
  if (pass instanceof MemoryPass && pass.straddle && !sharedMemory) addStraddleHelper(module, layout, memoryName, IMPORT_NAMES.fault);
  const seen = pass.seen;
  if (segments.length > 0 && (seen[binaryen.ArrayNewDataId] || seen[binaryen.ArrayInitDataId])) {
    keepSegmentsForArrays(module, layout, memoryName, segments, segmentIndex, data, seen[binaryen.DataDropId] === 1);
  }

  const meta: GuestMeta = {
    abiVersion: ABI_VERSION,
    instrumenterVersion: INSTRUMENTER_VERSION + (optimizationsKey(optimize) ? ` ${optimizationsKey(optimize)}` : ''),
    pageSize,
    hasMemory,
    initialPages,
    maximumPages,
    hasMaximum,
    ...(memory64 ? { memory64 } : {}),
    ...(plan ? { memories: plan.memories } : {}),
    ...(sharedMemory ? { sharedMemory } : {}),
    memoryExport,
    memoryImport: info?.module ? { module: info.module, name: info.base ?? '' } : null,
    segments,
    functions,
  };
  module.setFeatures(emitFeatures(module, seen));
  if (options.validate !== false && !module.validate()) {
    throw diagnostic('FM1015', 'binaryen validation failed');
  }
  // Custom sections are appended to the emitted bytes: binaryen.js's addCustomSection copies its
  // payload through the C stack, which megabytes of data segments overflow.
  const binary = appendCustomSections(module.emitBinary(), [[META_SECTION, encodeMeta(meta)], [DATA_SECTION, data]]);
  return { binary, meta, layout, counts: { ...pass.counts, functions: instrumented } };
}

/**
 * GC arrays read data segments (`array.new_data`, `array.init_data`), so a module using them keeps
 * its segments, passive, next to the recorded copy the runtime serves memory.init from. Only
 * passive segments and no data.drop: an active segment is dropped at instantiation and data.drop
 * drops the runtime's copy only, so array reads of those would differ from the original (FM1019).
 */
function keepSegmentsForArrays(module: Module, layout: Layout, memoryName: string, segments: readonly SegmentMeta[],
  index: ReadonlyMap<string, number>, data: Uint8Array, drops: boolean): void {
  if (drops || segments.some((s) => s.offset)) throw diagnostic('FM1019');
  const kept = [...index].map(([name, i]) => ({ name, data: data.subarray(segments[i]!.start, segments[i]!.start + segments[i]!.length), offset: 0, passive: true }));
  module.setMemory(Math.ceil(layout.frameBase / 65536), MAX_PHYS_WASM_PAGES, null, kept, true, false, memoryName);
  module.addMemoryImport(memoryName, 'farmem', 'memory', true);
}

/** Appends custom sections: id 0 | size uleb | name (uleb length + UTF-8) | payload. */
function appendCustomSections(binary: Uint8Array, sections: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [binary];
  for (const [name, payload] of sections) {
    const nameBytes = new TextEncoder().encode(name);
    const nameLength = encodeUleb(nameBytes.length);
    parts.push(Uint8Array.of(0), encodeUleb(nameLength.length + nameBytes.length + payload.length), nameLength, nameBytes, payload);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Internal name of the module's memory. binaryen.js has no getter for it, but a `memory.size` built
 * without a name refers to the first memory and prints it: `(memory.size $name)`.
 */
function firstMemoryName(module: Module): string {
  const text = binaryen.emitText(module.memory.size());
  const m = /^\(memory\.size \$(?:"((?:[^"\\]|\\.)*)"|(\S+))\)\s*$/.exec(text);
  if (!m) throw new Error(`cannot determine the memory's name from ${JSON.stringify(text)}`);
  return m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2]!;
}

const TYPE_NAMES = new Map<number, string>([
  [binaryen.i32, 'i32'], [binaryen.i64, 'i64'], [binaryen.f32, 'f32'], [binaryen.f64, 'f64'], [binaryen.v128, 'v128'],
  [binaryen.funcref, 'funcref'], [binaryen.externref, 'externref'],
]);

function typeNames(type: number): string[] {
  return binaryen.expandType(type).map((t) => TYPE_NAMES.get(t) ?? 'ref');
}
