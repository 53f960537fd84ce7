/**
 * @fileoverview The physical-memory layout shared by the instrumenter and the runtime: where the
 * control block, bounce buffer, page tables and frame pool live, and how a page-table entry is
 * encoded. Nothing else in farmem hard-codes these offsets.
 *
 * Physical memory is one shared `WebAssembly.Memory` imported by the instrumented guest as
 * `farmem.memory`. The guest's own memory becomes virtual: its size is a control-block slot.
 *
 *   0                 256                        4096                                   frameBase
 *   ┌─────────────────┬──────────────────────────┬─────────────────┬─────────────────┬───────────────┐
 *   │ control block   │ bounce buffers           │ read table  RT   │ write table WT   │ frame pool ... │
 *   │ Int32 slots     │ 64 B per guest thread    │ i32 × numPages   │ i32 × numPages   │ pageSize each  │
 *   └─────────────────┴──────────────────────────┴─────────────────┴─────────────────┴───────────────┘
 *
 * Page-table entry (RT and WT alike), one i32 per virtual page:
 *
 *   entry = (frameAddress - pageAddress) mod 2^32     when mapped
 *   entry = 0                                         when not mapped (fault)
 *
 * so the guest's fast path is `e = RT[ea >>> shift]; if (e == 0) fault; access(ea + e)`. Frames sit
 * FRAME_SKEW (64) bytes past a page boundary of physical memory, so frameAddress - pageAddress is
 * ≡ 64 (mod pageSize) and a mapped entry is never 0; physical and virtual addresses stay equal
 * modulo 64, so alignment (atomics) and cache-line placement are those of the original. RT maps pages
 * that may be read; WT only pages that are resident *and* dirty, so the first store to a clean page
 * takes a cheap minor fault that marks it dirty.
 *
 * The tables cover the whole 32-bit space (2^32 / pageSize entries, whatever the module's maximum):
 * an access past the maximum finds a zero entry and faults, and the fault handler traps it. Pages
 * of the tables that are never touched cost no memory.
 *
 * A 64-bit memory (memory64) gets tables covering its declared maximum (at most V8's 16 GiB),
 * rounded up to a power of two of pages (`memory64TablePages`), so the guest indexes them with
 * `(ea >>> shift) & (numPages - 1)` and sends any `ea >= numPages * pageSize` to the slow path.
 * Physical memory stays a 32-bit memory: only the tables and the frame pool live there.
 *
 * Several memories (multi-memory) share one page space: memory k owns the table entries
 * [base_k, base_k + span_k), span_k a power of two covering its maximum, so its tables start at
 * `readTable + 4·base_k` and its pages are page numbers base_k + p everywhere else (frame table,
 * store). Its size in wasm pages is control-block slot `memoryPagesSlot(k)`.
 */

/** Bytes in a WebAssembly page. */
import { OptionError } from './errors.js';

export const WASM_PAGE = 65536;
/** Largest 32-bit virtual memory, in wasm pages (4 GiB). */
export const MAX_WASM_PAGES = 65536;
/** Largest 64-bit memory V8 (Node 24) lets a module grow to, in wasm pages (16 GiB). */
export const MAX_WASM64_PAGES = 262144;
/**
 * Physical memory never reaches 4 GiB, so `OOB_ADDRESS` (+ any access of ≤16 bytes) is always out
 * of its bounds: the fault handler returns it to make the guest trap exactly like the original.
 */
export const MAX_PHYS_WASM_PAGES = 65535;
export const OOB_ADDRESS = 0xffff_fff0;

export const MIN_PAGE_SIZE = 256;
export const MAX_PAGE_SIZE = 65536;

/* Control block: Int32 slot indices (byte address = slot * 4). */
/** Virtual memory size in wasm pages; `memory.size` reads it inline. */
export const kVirtualPages = 0;
/** Eviction generation published by the reclaimer (threaded runtime). */
export const kGeneration = 1;
/* Slot 2 is unused: guest threads acknowledge generations in runtime/guest-threads.ts. */
/** Most memories of one module (multi-memory): their sizes take the last control-block slots. */
export const MAX_MEMORIES = 8;
/** Control-block slot of memory k's size in wasm pages (memory 0: kVirtualPages). */
export function memoryPagesSlot(k: number): number {
  return k === 0 ? kVirtualPages : CONTROL_BLOCK_BYTES / 4 - MAX_MEMORIES + k;
}
/** Fault `info` bits 16..23: which memory the access uses (multi-memory). */
export const FAULT_MEMORY_SHIFT = 16;
/** Number of control-block slots in use; the block is 256 bytes. */
export const CONTROL_BLOCK_BYTES = 256;

/**
 * A straddling access is served through a 64-byte buffer of its guest thread; data sits at
 * `bounceAddress(thread) + (ea & 15)`. Guest thread 0 (the one `instantiate` runs) uses BOUNCE_ADDRESS.
 */
export const BOUNCE_ADDRESS = 256;
export const BOUNCE_BYTES = 64;
export const READ_TABLE_ADDRESS = 4096;
/** Guest threads sharing one physical memory: as many as there are bounce buffers below RT. */
export const MAX_GUEST_THREADS = (READ_TABLE_ADDRESS - BOUNCE_ADDRESS) / BOUNCE_BYTES;

export function bounceAddress(thread: number): number {
  return BOUNCE_ADDRESS + thread * BOUNCE_BYTES;
}
/** Offset of frame 0 from the 64 KiB-aligned frame area; see the header. */
export const FRAME_SKEW = 64;

/** Fault `info` argument: access size in bytes in the low byte, write flag above it. */
export const FAULT_WRITE = 0x100;
/** Fault `info` flag (memory64): the 64-bit `addr + offset` wrapped past 2^64, so the access traps. */
export const FAULT_WRAP = 0x200;
/**
 * Fault `info` flag (memory64): an atomic access. The original checks its alignment before its
 * bounds, but V8 may check the bounds of the physical access first; a misaligned atomic that is
 * also out of bounds is therefore given a misaligned address *inside* physical memory, so it
 * traps as unaligned, as the original does.
 */
export const FAULT_ATOMIC = 0x400;

export interface Layout {
  readonly pageSize: number;
  readonly pageShift: number;
  /** Virtual pages covered by the page tables: the whole 32-bit space, or a memory64's (power of two). */
  readonly numPages: number;
  readonly readTable: number;
  readonly writeTable: number;
  /** Address of frame 0 (64 KiB aligned + FRAME_SKEW). */
  readonly frameBase: number;
  /** Most frames physical memory can hold. */
  readonly maxFrames: number;
}

export function isValidPageSize(pageSize: number): boolean {
  return Number.isInteger(pageSize) && pageSize >= MIN_PAGE_SIZE && pageSize <= MAX_PAGE_SIZE && (pageSize & (pageSize - 1)) === 0;
}

/** Throws an OptionError naming `what` (an option or a flag) unless `pageSize` is valid. */
export function checkPageSize(pageSize: number, what: string): void {
  if (!isValidPageSize(pageSize)) {
    throw new OptionError(`${what} must be a power of two between ${MIN_PAGE_SIZE} and ${MAX_PAGE_SIZE}, got ${pageSize}`);
  }
}

/** Table entries for a memory of at most `maximumPages` wasm pages: a power of two of pages. */
export function memory64TablePages(pageSize: number, maximumPages: number, memory64 = true): number {
  const pages = Math.ceil((Math.min(maximumPages, memory64 ? MAX_WASM64_PAGES : MAX_WASM_PAGES) * WASM_PAGE) / pageSize);
  return 2 ** Math.ceil(Math.log2(Math.max(pages, 1)));
}

/** The layout of a guest: tables for the 32-bit space, for a memory64's maximum, or for all memories' spans. */
export function guestLayout(pageSize: number, memory64: boolean, maximumPages: number, spans?: readonly number[]): Layout {
  if (spans) return computeLayout(pageSize, spans.reduce((a, b) => a + b, 0));
  return memory64 ? computeLayout(pageSize, memory64TablePages(pageSize, maximumPages)) : computeLayout(pageSize);
}

/** Computes the layout for a page size, with tables of `numPages` entries (default: the 32-bit space). */
export function computeLayout(pageSize: number, numPages = (MAX_WASM_PAGES * WASM_PAGE) / pageSize): Layout {
  if (!isValidPageSize(pageSize)) throw new RangeError(`page size must be a power of two between ${MIN_PAGE_SIZE} and ${MAX_PAGE_SIZE}`);
  const pageShift = Math.log2(pageSize);
  const readTable = READ_TABLE_ADDRESS;
  const writeTable = readTable + numPages * 4;
  const frameBase = Math.ceil((writeTable + numPages * 4) / WASM_PAGE) * WASM_PAGE + FRAME_SKEW;
  const maxFrames = Math.floor((MAX_PHYS_WASM_PAGES * WASM_PAGE - frameBase) / pageSize);
  return { pageSize, pageShift, numPages, readTable, writeTable, frameBase, maxFrames };
}

export function frameAddress(layout: Layout, frame: number): number {
  return layout.frameBase + frame * layout.pageSize;
}

/** Wasm pages of physical memory needed for `frames` frames. */
export function physicalWasmPages(layout: Layout, frames: number): number {
  return Math.ceil((layout.frameBase + frames * layout.pageSize) / WASM_PAGE);
}
