/**
 * @fileoverview The `farmem.*64` imports of a memory64 guest (abi.ts): the slow path gets the
 * 64-bit effective address as two i32 halves (no BigInt on the fault path); the rare bulk
 * operations get i64 operands as BigInt. Every address is turned into an exact number before the
 * pager sees it; anything at or past 2^53 is far out of bounds and traps like the original.
 */
import { BOUNCE_ADDRESS, FAULT_ATOMIC, FAULT_WRAP, OOB_ADDRESS } from '../layout.js';
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

/**
 * `initSegment(segment, dst, src, n)` is the guest's memory.init with exact numbers (shared with
 * the 32-bit import, which owns the dropped-segment state).
 */
export function memory64Imports(pager: Pager, initSegment: (segment: number, dst: number, src: number, n: number) => void): Record<string, WebAssembly.ImportValue> {
  return {
    fault64: (low: number, high: number, info: number) => {
      const size = info & 0xff;
      // addr + offset wrapped past 2^64, or is past 2^53 (not exact as a number): far out of bounds.
      const far = (info & FAULT_WRAP) !== 0 || high >>> 0 >= 0x20_0000;
      const ea = far ? Infinity : (high >>> 0) * TWO_32 + (low >>> 0);
      if (ea + size > pager.virtualBytes) {
        // A misaligned atomic traps as unaligned before its bounds are checked (see FAULT_ATOMIC).
        if (info & FAULT_ATOMIC && (low & (size - 1)) !== 0) return BOUNCE_ADDRESS + (low & 15);
        return (OOB_ADDRESS + (low & 15)) | 0;
      }
      return pager.faultAt(ea, info);
    },
    grow64: (delta: bigint) => {
      const d = u64(delta);
      return BigInt(d === Infinity ? -1 : pager.grow(d));
    },
    copy64: (dst: bigint, src: bigint, n: bigint) => {
      const [d, s, len] = [u64(dst), u64(src), u64(n)];
      if (d === Infinity || s === Infinity || len === Infinity) throw oob();
      pager.copy(d, s, len);
    },
    fill64: (dst: bigint, value: number, n: bigint) => {
      const [d, len] = [u64(dst), u64(n)];
      if (d === Infinity || len === Infinity) throw oob();
      pager.fill(d, value, len);
    },
    init64: (segment: number, dst: bigint, src: number, n: number) => {
      const d = u64(dst);
      if (d === Infinity) throw oob();
      initSegment(segment, d, src >>> 0, n >>> 0);
    },
  };
}
