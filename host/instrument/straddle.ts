/**
 * @fileoverview The slow path's first stop, in wasm: an access that straddles two pages whose
 * frames are adjacent in physical memory needs no bounce buffer. A check's slow path calls
 * `$farmem.slow(base, offset, info)` (same arguments as the `farmem.fault` import), which returns
 * `ea + e` when the access's page and the next are mapped (for writing, if it writes) with the
 * same entry, and calls the fault handler otherwise:
 *
 *   entry = frame − page, so entry(vpn) == entry(vpn + 1) ⇔ frame(vpn + 1) = frame(vpn) + pageSize
 *
 * Both mapped means both are inside the guest's memory, so the access cannot trap either. Frames
 * are handed out in first-touch order, so a program that fills its memory front to back gets
 * adjacent frames and its straddles (8-byte values at 4-byte-aligned addresses, packed structs,
 * graph's rank/next, grow's sweep) stay in wasm: a wasm-to-wasm call instead of a call into the
 * host, which copies through the bounce buffer. Anything else (unmapped, a wrapped `base + offset`,
 * frames apart after eviction, the last page of the tables) goes to the host as before.
 *
 * Not a safepoint when it returns without calling the host, exactly like the inline fast path:
 * it reads the tables the same way and hands back the same kind of address. Shared (threaded)
 * memories keep the plain import: their straddling stores go through the bounce buffer and a
 * flush (shared-memory.ts).
 */
import { FAULT_WRITE, type Layout } from '../layout.js';
import { binaryen, type ExpressionRef, type Module } from './binaryen.js';

export const STRADDLE_HELPER = '$farmem.slow';

/** Adds `$farmem.slow` (calling `fault`, the import's internal name) to the module. */
export function addStraddleHelper(m: Module, layout: Layout, memory: string, fault: string): void {
  const { i32 } = binaryen;
  const [base, offset, info, ea, vpn, e, table] = [0, 1, 2, 3, 4, 5, 6];
  const get = (l: number) => m.local.get(l, i32);
  const entryAt = (page: ExpressionRef) => m.i32.load(0, 4, m.i32.add(m.i32.shl(page, m.i32.const(2)), get(table)), memory);
  const mapped = m.block(null, [
    // fits in its page (a shared check's member, whose group failed): ea + e
    m.if(m.i32.le_u(m.i32.add(m.i32.and(get(ea), m.i32.const(layout.pageSize - 1)), m.i32.and(get(info), m.i32.const(0xff))), m.i32.const(layout.pageSize)),
      m.return(m.i32.add(get(ea), get(e)))),
    // straddles into the next page, mapped to the adjacent frame
    m.if(m.i32.and(m.i32.lt_u(get(vpn), m.i32.const((layout.numPages - 1) | 0)), m.i32.eq(entryAt(m.i32.add(get(vpn), m.i32.const(1))), get(e))),
      m.return(m.i32.add(get(ea), get(e)))),
  ], binaryen.none);
  const body = m.block(null, [
    m.local.set(ea, m.i32.add(get(base), get(offset))),
    m.if(m.i32.ge_u(get(ea), get(offset)), m.block(null, [ // base + offset did not wrap
      m.local.set(vpn, m.i32.shr_u(get(ea), m.i32.const(layout.pageShift))),
      m.local.set(table, m.select(m.i32.and(get(info), m.i32.const(FAULT_WRITE)), m.i32.const(layout.writeTable), m.i32.const(layout.readTable))),
      m.local.set(e, entryAt(get(vpn))),
      m.if(get(e), mapped),
    ], binaryen.none)),
    m.call(fault, [get(base), get(offset), get(info)], i32),
  ], i32);
  m.addFunction(STRADDLE_HELPER, binaryen.createType([i32, i32, i32]), i32, [i32, i32, i32, i32], body);
}
