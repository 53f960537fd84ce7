/**
 * @fileoverview The contract between an instrumented module and the runtime that hosts it: the
 * imports the instrumenter adds (module `farmem`), and the metadata it records in custom sections.
 * Shared by `host/instrument` (writer) and `host/runtime` (reader); neither imports the other.
 *
 * Imports added to every instrumented module:
 *   farmem.memory                       shared physical memory (see layout.ts)
 *   farmem.fault(addr, offset, info) → physical address to access (or OOB_ADDRESS to trap)
 *   farmem.grow(deltaPages) → old size in pages, or -1
 *   farmem.copy(dst, src, n)   farmem.fill(dst, byte, n)   — bounds-checked like memory.copy/fill
 *   farmem.init(segment, dst, src, n)   farmem.drop(segment) — memory.init / data.drop
 *   farmem.wait()                           trap of memory.atomic.wait on unshared memory
 * and for a memory64 or multi-memory module (addresses are i64; i64 arguments arrive in JS as
 * BigInt, except fault's; `mem` is the memory index, also in fault's info bits 16..23):
 *   farmem.fault64(eaLow, eaHigh, info) → physical address   (info may carry FAULT_WRAP)
 *   farmem.grow64(mem, delta) → old size or -1   farmem.copy64(dstMem, srcMem, dst, src, n)
 *   farmem.fill64(mem, dst, byte, n)   farmem.init64(mem, segment, dst, src, n)
 * and, only in modules whose memory is shared (threads):
 *   farmem.wait32(ea, expected, timeoutNs) → 0 ok | 1 not-equal | 2 timed-out   memory.atomic.wait32
 *   farmem.wait64(ea, expected, timeoutNs) → same                               memory.atomic.wait64
 *   farmem.notify(ea, count) → waiters woken                                   memory.atomic.notify
 *   farmem.flush()                          after a store that may have gone to the bounce buffer
 *
 * Custom sections:
 *   "farmem.meta"  UTF-8 JSON `GuestMeta`
 *   "farmem.data"  the bytes of every data segment, concatenated in segment order
 */

import { MAX_U32_ULEB_BYTES, readUleb } from './leb128.js';

export const ABI_MODULE = 'farmem';
export const ABI_VERSION = 1;
export const META_SECTION = 'farmem.meta';
export const DATA_SECTION = 'farmem.data';

/** The import names, one per line: a table (`duplicates` sees its lines as alike; they are data). */
export const enum AbiImport {
  Memory = 'memory',
  Fault = 'fault',
  Grow = 'grow',
  Copy = 'copy',
  Fill = 'fill',
  Init = 'init',
  Drop = 'drop',
  Wait = 'wait',
  /** memory64 and multi-memory modules: `fault64(eaLow, eaHigh, info)`, and grow/copy/fill/init with i64 addresses. */
  Fault64 = 'fault64',
  Grow64 = 'grow64',
  Copy64 = 'copy64',
  Fill64 = 'fill64',
  Init64 = 'init64',
  Wait32 = 'wait32',
  Wait64 = 'wait64',
  Notify = 'notify',
  Flush = 'flush',
}

/** Where an active data segment starts: a constant, or the value of a global (e.g. `__memory_base`). */
export type SegmentOffset =
  | { readonly kind: 'const'; readonly value: number }
  | { readonly kind: 'global'; readonly module: string; readonly name: string }
  | { readonly kind: 'global-const'; readonly value: number };

export interface SegmentMeta {
  /** Byte range inside the "farmem.data" section. */
  readonly start: number;
  readonly length: number;
  /** Absent for passive segments. */
  readonly offset?: SegmentOffset;
  /** The memory an active segment initializes (multi-memory; absent: memory 0). */
  readonly memory?: number;
}

/** One memory of a multi-memory module: its limits and its part of the page space (layout.ts). */
export interface MemoryMeta {
  readonly initialPages: number;
  readonly maximumPages: number;
  readonly hasMaximum: boolean;
  readonly memory64: boolean;
  /** Where an imported memory comes from (its contents become the initial image). */
  readonly import?: { readonly module: string; readonly name: string };
  /** First page-table entry (page number) and number of entries, a power of two. */
  readonly basePage: number;
  readonly spanPages: number;
}

export interface GuestMeta {
  readonly abiVersion: number;
  readonly instrumenterVersion: string;
  readonly pageSize: number;
  /** Whether the original module has a memory at all. */
  readonly hasMemory: boolean;
  /** The original memory's limits, in wasm pages. */
  readonly initialPages: number;
  readonly maximumPages: number;
  readonly hasMaximum: boolean;
  /** The original memory is a 64-bit memory (absent: 32-bit). */
  readonly memory64?: boolean;
  /** Several memories (multi-memory): all of them, memory 0 first (its limits are also above). */
  readonly memories?: readonly MemoryMeta[];
  /** The original memory was shared (threads): atomics wait/notify and guest threads are served. */
  readonly sharedMemory?: boolean;
  /** Export name of the original memory, if it was exported (removed from the instrumented module). */
  readonly memoryExport: string | null;
  /** Import of the original memory, if it was imported (replaced by farmem.memory). */
  readonly memoryImport: { readonly module: string; readonly name: string } | null;
  readonly segments: readonly SegmentMeta[];
  /** Signatures of exported functions (`i32`, `i64`, `f32`, `f64`, `v128`, `externref`, ...), for the CLI. */
  readonly functions: Readonly<Record<string, { readonly params: readonly string[]; readonly results: readonly string[] }>>;
}

export function encodeMeta(meta: GuestMeta): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(meta));
}

export function decodeMeta(bytes: ArrayBuffer | Uint8Array): GuestMeta {
  const meta = JSON.parse(new TextDecoder().decode(bytes)) as GuestMeta;
  if (meta.abiVersion !== ABI_VERSION) throw new Error(`instrumented module has ABI version ${meta.abiVersion}, this farmem expects ${ABI_VERSION}; instrument it again`);
  return meta;
}

/** Does this binary carry farmem metadata (was it produced by the instrumenter)? Reads section headers only. */
export function isInstrumentedBinary(bytes: Uint8Array): boolean {
  const name = new TextEncoder().encode(META_SECTION);
  const at = { pos: 8 };
  while (at.pos < bytes.length) {
    const id = bytes[at.pos++]!;
    const size = readUleb(bytes, at, bytes.length, MAX_U32_ULEB_BYTES);
    if (size < 0) return false;
    const end = at.pos + size;
    if (id === 0) {
      const length = readUleb(bytes, at, end, MAX_U32_ULEB_BYTES);
      if (length === name.length && name.every((b, i) => bytes[at.pos + i] === b)) return true;
    }
    at.pos = end;
  }
  return false;
}
