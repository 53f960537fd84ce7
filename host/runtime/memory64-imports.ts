/**
 * @fileoverview The `farmem.*64` imports of a memory64 or multi-memory guest (abi.ts): the slow
 * path gets the 64-bit effective address as two i32 halves (no BigInt on the fault path) and the
 * memory index in its info; the rare bulk operations get the memory index and i64 operands as
 * BigInt. Every address is turned into an exact number and checked against its own memory's size
 * before the pager sees it; anything at or past 2^53 is far out of bounds and traps like the
 * original.
 *
 * With several memories, memory k's address a is page-space address `base_k·pageSize + a`
 * (layout.ts), and its size in wasm pages is control-block slot `memoryPagesSlot(k)` (memory 0's
 * is the pager's own). Memory 0 grows through the pager (which sizes a fractional pool by it);
 * the others only change their slot.
 */
import type { GuestMeta } from '../abi.js';
import {
  BOUNCE_ADDRESS, FAULT_ATOMIC, FAULT_MEMORY_SHIFT, FAULT_WRAP, memoryPagesSlot, OOB_ADDRESS, WASM_PAGE,
} from '../layout.js';
import type { Pager } from './pager.js';

const TWO_32 = 2 ** 32;

function oob(): WebAssembly.RuntimeError {
  return new WebAssembly.RuntimeError('memory access out of bounds'); // V8's message
}

/** A u64 operand (BigInt, read as signed by JS) as an exact number, or Infinity when too large to be in bounds. */
function u64(value: bigint): number {
  const v = BigInt.asUintN(64, value);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
}

/** Each memory's part of the page space, and its size slot. */
export class Memories {
  private readonly control: Int32Array;
  /** Byte address of each memory's first page in the page space. */
  private readonly base: number[];
  private readonly maximum: number[];

  /** `importedPages[k]`: the current size of memory k when it is imported (its initial size). */
  constructor(private readonly pager: Pager, meta: GuestMeta, importedPages: readonly (number | undefined)[]) {
    this.control = new Int32Array(pager.memory.buffer, 0, 64);
    const list = meta.memories ?? [{ initialPages: meta.initialPages, maximumPages: meta.maximumPages, basePage: 0 }];
    this.base = list.map((m) => m.basePage * pager.layout.pageSize);
    this.maximum = list.map((m) => m.maximumPages);
    list.forEach((m, k) => { if (k > 0) this.control[memoryPagesSlot(k)] = importedPages[k] ?? m.initialPages; });
  }

  /** Memory k's current size in bytes. */
  bytes(k: number): number {
    return k === 0 ? this.pager.virtualBytes : this.control[memoryPagesSlot(k)]! * WASM_PAGE;
  }

  /** Page-space address of memory k's byte `a`. */
  at(k: number, a: number): number {
    return this.base[k]! + a;
  }

  grow(k: number, delta: number): number {
    if (k === 0) return this.pager.grow(delta);
    this.pager.flushBounce();
    const slot = memoryPagesSlot(k);
    const old = this.control[slot]!;
    if (old + delta > this.maximum[k]!) return -1;
    this.control[slot] = old + delta;
    return old;
  }
}

/**
 * `initSegment(segment, dst, src, n, limit)` is memory.init with exact numbers at page-space
 * address `dst`, bounds-checked against `limit` (shared with the 32-bit import, which owns the
 * dropped-segment state).
 */
export function memory64Imports(pager: Pager, memories: Memories,
  initSegment: (segment: number, dst: number, src: number, n: number, limit: number) => void): Record<string, WebAssembly.ImportValue> {
  return {
    fault64: (low: number, high: number, info: number) => {
      const size = info & 0xff;
      const k = (info >>> FAULT_MEMORY_SHIFT) & 0xff;
      // addr + offset wrapped past 2^64, or is past 2^53 (not exact as a number): far out of bounds.
      const far = (info & FAULT_WRAP) !== 0 || high >>> 0 >= 0x20_0000;
      const ea = far ? Infinity : (high >>> 0) * TWO_32 + (low >>> 0);
      if (ea + size > memories.bytes(k)) {
        // A misaligned atomic traps as unaligned before its bounds are checked (see FAULT_ATOMIC).
        if (info & FAULT_ATOMIC && (low & (size - 1)) !== 0) return BOUNCE_ADDRESS + (low & 15);
        return (OOB_ADDRESS + (low & 15)) | 0;
      }
      return pager.faultAt(memories.at(k, ea), info, Infinity);
    },
    grow64: (k: number, delta: bigint) => {
      const d = u64(delta);
      return BigInt(d === Infinity ? -1 : memories.grow(k, d));
    },
    copy64: (kd: number, ks: number, dst: bigint, src: bigint, n: bigint) => {
      const [d, s, len] = [u64(dst), u64(src), u64(n)];
      if (d + len > memories.bytes(kd) || s + len > memories.bytes(ks)) throw oob();
      pager.host.copy(memories.at(kd, d), memories.at(ks, s), len, Infinity);
    },
    fill64: (k: number, dst: bigint, value: number, n: bigint) => {
      const [d, len] = [u64(dst), u64(n)];
      if (d + len > memories.bytes(k)) throw oob();
      pager.host.fill(memories.at(k, d), value, len, Infinity);
    },
    init64: (k: number, segment: number, dst: bigint, src: number, n: number) => {
      const d = u64(dst);
      if (d === Infinity) throw oob();
      initSegment(segment, memories.at(k, d), src >>> 0, n >>> 0, memories.at(k, memories.bytes(k)));
    },
  };
}
