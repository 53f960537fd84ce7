/**
 * @fileoverview The memory pass for a 64-bit memory (memory64) or several memories (multi-memory).
 * Addresses are handled as i64 (a 32-bit memory's are zero-extended); physical memory stays one
 * 32-bit memory holding the page tables and frames, so the instrumented module needs neither
 * memory64 nor multi-memory itself (it runs on Node 20 too). Each memory k has its part of the
 * tables, N_k entries from base_k, N_k a power of two covering its maximum (layout.ts); below,
 * one memory with base 0 and N = 2^21. With several memories every rewritten access is pointed
 * at the physical memory (hidden-children.ts), and the fault's info carries k in bits 16..23.
 *
 * One load, before and after (page size 4 KiB, RT at 4096, N = 2^21 pages = 8 GiB):
 *
 *   (i32.load offset=8 (local.get $p))            ;; $p: i64
 *   ⇒
 *   (i32.load
 *     (block (result i32)
 *       (local.set $ea (i64.add (local.get $p) (i64.const 8)))                    ;; ea = p + 8
 *       (local.set $e (i32.load offset=4096 (i32.shl                              ;; e = RT[(ea >> 12) & (N-1)]
 *         (i32.and (i32.wrap_i64 (i64.shr_u (local.get $ea) (i64.const 12))) (i32.const 0x1fffff)) (i32.const 2))))
 *       (if (result i32)                                                          ;; as one compare (guard.ts):
 *         (i32.gt_u (select (i32.const 4096)                                      ;; p + 8 wrapped past 2^64
 *                     (select (i32.const 4096)                                    ;; past the tables
 *                       (select (i32.and (i32.wrap_i64 (local.get $ea)) (i32.const 4095)) (i32.const 4096)
 *                         (local.get $e))                                         ;; unmapped
 *                       (i64.ge_u (local.get $ea) (i64.const 0x200000000)))
 *                     (i64.lt_u (local.get $ea) (i64.const 8)))
 *                   (i32.const 4092))                                             ;; straddles
 *         (then (call $farmem.fault64 (i32.wrap_i64 (local.get $ea)) (i32.wrap_i64 (i64.shr_u (local.get $ea) (i64.const 32)))
 *                 (i32.or (i32.const 4) (i32.shl (i64.lt_u (local.get $ea) (i64.const 8)) (i32.const 9)))))  ;; | FAULT_WRAP
 *         (else (i32.add (i32.wrap_i64 (local.get $ea)) (local.get $e))))))       ;; phys = ea + delta (mod 2^32)
 *
 * A delta entry works unchanged: frame - page ≡ phys - ea (mod 2^32), and the frame is below 4 GiB.
 * A store reads WT and passes FAULT_WRITE, as in memory-pass.ts, whose access table and operand
 * spilling rules (evaluation order kept: address, operands, access; `spillOperands`) this pass shares.
 *
 *   (memory.size)       ⇒ (i64.extend_i32_u (i32.load (i32.const 0)))   ;; control block: memoryPagesSlot(k)
 *   (memory.grow $n)    ⇒ (call $farmem.grow64 (i32.const k) $n)         ;; and copy64/fill64/init64
 */
import { ABI_MODULE, AbiImport } from '../abi.js';
import { FAULT_ATOMIC, FAULT_MEMORY_SHIFT, FAULT_WRAP, FAULT_WRITE, memoryPagesSlot, type Layout } from '../layout.js';
import { binaryen, C, type ExpressionRef, type FunctionRef, type Module, type Type } from './binaryen.js';
import { ACCESS, executes, IMPORT_NAMES, spillOperands, type AccessKind, type PassCounts } from './memory-pass.js';
import { diagnostic } from './diagnostics.js';
import { slowTest } from './guard.js';
import { memoryNameOf, offsetHigh, setMemoryName } from './hidden-children.js';
import { Visitor } from './visitor.js';

const b = binaryen as unknown as Record<string, number>;
/** An i64 constant (binaryen 132's `i64.const` takes one BigInt). */
const i64 = (m: Module, value: number): ExpressionRef => (m.i64.const as unknown as (v: bigint) => ExpressionRef)(BigInt(value));

/** Internal names of the memory64 imports (module `farmem`). */
export const IMPORT64_NAMES = {
  fault: '$farmem.fault64', grow: '$farmem.grow64', copy: '$farmem.copy64', fill: '$farmem.fill64', init: '$farmem.init64',
} as const;

/**
 * One memory as the pass sees it: its index, address type and part of the page space (layout.ts).
 * `name` is binaryen's interned pointer for the memory's name (0 when the module has one memory).
 */
export interface Region {
  readonly index: number;
  readonly memory64: boolean;
  readonly basePage: number;
  readonly spanPages: number;
  readonly name: number;
}

/** Adds the `farmem.*64` imports (the 32-bit ones, for drop and wait, come from addAbiImports). */
export function addAbi64Imports(module: Module): void {
  const { i32, i64, none } = binaryen;
  const t = binaryen.createType;
  module.addFunctionImport(IMPORT64_NAMES.fault, ABI_MODULE, AbiImport.Fault64, t([i32, i32, i32]), i32);
  module.addFunctionImport(IMPORT64_NAMES.grow, ABI_MODULE, AbiImport.Grow64, t([i32, i64]), i64);
  module.addFunctionImport(IMPORT64_NAMES.copy, ABI_MODULE, AbiImport.Copy64, t([i32, i32, i64, i64, i64]), none);
  module.addFunctionImport(IMPORT64_NAMES.fill, ABI_MODULE, AbiImport.Fill64, t([i32, i64, i32, i64]), none);
  module.addFunctionImport(IMPORT64_NAMES.init, ABI_MODULE, AbiImport.Init64, t([i32, i32, i64, i32, i32]), none);
}

/**
 * An access's constant offset as an exact number. binaryen keeps 64 bits but its C API returns the
 * low 32; the high word is read through the probed field (wait/notify offsets come from their
 * printed form, whole). An offset past 2^53 cannot be in bounds of a 16 GiB memory: refused.
 */
function offsetOf(kind: AccessKind, expr: ExpressionRef, id: number): number {
  if (id === b.AtomicWaitId || id === b.AtomicNotifyId) return kind.getOffset(expr);
  const high = offsetHigh(expr, id);
  if (high < 0) throw diagnostic('FM1018', `cannot read the 64-bit offset of expression ${id}`);
  return high * 2 ** 32 + (kind.getOffset(expr) >>> 0);
}

export class Memory64Pass extends Visitor {
  private depth = 0;
  private func: FunctionRef = 0;
  private ea = -1;
  private e = -1;
  private byDepth: Map<string, number>[] = [];
  /** The memory pass's counts; this pass does not chunk or outline (see memory-pass.ts). */
  readonly counts: PassCounts = { accesses: 0, bulk: 0, chunkedLoops: 0, chunkedAccesses: 0, outlinedChecks: 0, predicatedLoops: 0, sharedGroups: 0, sharedAccesses: 0 };

  constructor(
    private readonly module: Module,
    private readonly layout: Layout,
    private readonly memory: string,
    private readonly segmentIndex: ReadonlyMap<string, number>,
    /** Every memory of the module, in index order; one (memory64) or several. */
    private readonly regions: readonly Region[],
    /** Interned name pointer of the physical memory, which every rewritten access must name. */
    private readonly physicalName: number,
  ) {
    super();
    this.byName = new Map(regions.map((r) => [r.name, r]));
  }

  private readonly byName: Map<number, Region>;

  /** The memory an expression uses (its `which`-th for memory.copy). */
  private region(expr: ExpressionRef, id: number, which = 0): Region {
    if (this.regions.length === 1) return this.regions[0]!;
    const region = this.byName.get(memoryNameOf(expr, id, which));
    if (!region) throw diagnostic('FM1018', `expression ${id} names a memory the module does not declare`);
    return region;
  }

  /** An address or length operand as i64 (a 32-bit memory's are i32). */
  private wide(expr: ExpressionRef): ExpressionRef {
    return C._BinaryenExpressionGetType!(expr) === binaryen.i32 ? this.module.i64.extend_u(expr) : expr;
  }

  runOnFunction(func: FunctionRef): void {
    const body = C._BinaryenFunctionGetBody!(func);
    if (body === 0) return;
    this.func = func;
    this.ea = this.e = -1;
    this.byDepth = [];
    this.depth = 0;
    const next = this.walk(body);
    if (next !== body) C._BinaryenFunctionSetBody!(func, next);
  }

  private local(type: Type): number {
    return C._BinaryenFunctionAddVar!(this.func, type);
  }

  /** A scratch local for slot `slot` of the access at the current nesting depth. */
  private spill(type: Type, slot: number): number {
    const map = (this.byDepth[this.depth] ??= new Map());
    const key = `${type}:${slot}`;
    let index = map.get(key);
    if (index === undefined) map.set(key, (index = this.local(type)));
    return index;
  }

  protected override enter(_expr: ExpressionRef, id: number): void {
    if (ACCESS.has(id)) this.depth++;
  }

  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    const kind = ACCESS.get(id);
    if (kind !== undefined) {
      this.depth--;
      return this.rewriteAccess(expr, id, kind);
    }
    const m = this.module;
    const k = () => m.i32.const(this.region(expr, id).index);
    const segment = (name: string) => {
      const index = this.segmentIndex.get(name);
      if (index === undefined) throw new Error(`unknown data segment ${name}`);
      return m.i32.const(index);
    };
    const call = (name: string, operands: ExpressionRef[], type: Type) => {
      this.counts.bulk++;
      return m.call(name, operands, type);
    };
    switch (id) {
      case b.MemorySizeId: { // size = CB[memoryPagesSlot(k)], i64 for a 64-bit memory
        const region = this.region(expr, id);
        const size = m.i32.load(memoryPagesSlot(region.index) * 4, 4, m.i32.const(0), this.memory);
        return region.memory64 ? m.i64.extend_u(size) : size;
      }
      case b.MemoryGrowId: {
        const region = this.region(expr, id);
        const old = call(IMPORT64_NAMES.grow, [k(), this.wide(C._BinaryenMemoryGrowGetDelta!(expr))], binaryen.i64);
        return region.memory64 ? old : m.i32.wrap(old);
      }
      case b.MemoryCopyId:
        return call(IMPORT64_NAMES.copy, [k(), m.i32.const(this.region(expr, id, 1).index), this.wide(C._BinaryenMemoryCopyGetDest!(expr)),
          this.wide(C._BinaryenMemoryCopyGetSource!(expr)), this.wide(C._BinaryenMemoryCopyGetSize!(expr))], binaryen.none);
      case b.MemoryFillId:
        return call(IMPORT64_NAMES.fill, [k(), this.wide(C._BinaryenMemoryFillGetDest!(expr)), C._BinaryenMemoryFillGetValue!(expr),
          this.wide(C._BinaryenMemoryFillGetSize!(expr))], binaryen.none);
      case b.MemoryInitId:
        return call(IMPORT64_NAMES.init, [k(), segment((binaryen as any).MemoryInit.getSegment(expr) as string), this.wide(C._BinaryenMemoryInitGetDest!(expr)),
          C._BinaryenMemoryInitGetOffset!(expr), C._BinaryenMemoryInitGetSize!(expr)], binaryen.none);
      case b.DataDropId:
        return call(IMPORT_NAMES.drop, [segment((binaryen as any).DataDrop.getSegment(expr) as string)], binaryen.none);
      default:
        return expr;
    }
  }

  /**
   * The 64-bit twin of `MemoryPass.rewriteAccess` (same steps, i64 addresses, `fault64`): kept apart
   * so the 32-bit fast path, which the loop optimizations build on, stays as it is.
   */
  private rewriteAccess(expr: ExpressionRef, id: number, kind: AccessKind): ExpressionRef {
    const m = this.module;
    const ptr = kind.ptr.get(expr);
    if (!executes(expr, kind)) { // never runs, but must name a memory that still exists
      if (this.regions.length > 1) setMemoryName(expr, id, this.physicalName);
      return expr;
    }
    this.counts.accesses++;
    const region = this.region(expr, id);
    const prelude = spillOperands(m, expr, kind, (type, slot) => this.spill(type, slot));
    const local = this.spill(binaryen.i64, 0);
    prelude.unshift(m.local.set(local, this.wide(ptr)));
    const base = () => m.local.get(local, binaryen.i64);

    const offset = offsetOf(kind, expr, id);
    const bytes = kind.bytes(expr);
    const write = kind.isWrite(expr);
    const atomic = id === b.LoadId ? C._BinaryenLoadIsAtomic!(expr) !== 0 : id === b.StoreId ? C._BinaryenStoreIsAtomic!(expr) !== 0
      : id !== b.SIMDLoadId && id !== b.SIMDLoadStoreLaneId;
    const physical = m.block(null, [...prelude, this.translate(region, base, offset, bytes, write, atomic)], binaryen.i32);
    if (id === b.AtomicNotifyId) {
      // Notify on the (unshared) original memory wakes nobody and returns 0; so does ours.
      return m.memory.atomic.notify(physical, kind.operands[0]!.get(expr), this.memory);
    }
    kind.ptr.set(expr, physical);
    kind.setOffset(expr, 0);
    if (this.regions.length > 1) setMemoryName(expr, id, this.physicalName); // the access now reads physical memory
    if (id === b.AtomicWaitId) {
      // Waiting on an unshared memory traps after the bounds and alignment checks (memory-pass.ts).
      const check = bytes === 8 ? m.i64.atomic.load(0, kind.ptr.get(expr), this.memory) : m.i32.atomic.load(0, kind.ptr.get(expr), this.memory);
      const parts = [m.drop(check), ...kind.operands.map((op) => m.drop(op.get(expr)))];
      parts.push(m.call(IMPORT_NAMES.wait, [], binaryen.none), m.unreachable());
      return m.block(null, parts, binaryen.i32);
    }
    return expr;
  }

  /** Builds `phys(base + offset)` for an access of `bytes` bytes at an i64 address of `region`. */
  private translate(region: Region, base: () => ExpressionRef, offset: number, bytes: number, write: boolean, atomic: boolean): ExpressionRef {
    const m = this.module;
    const { pageShift, pageSize } = this.layout;
    const numPages = region.spanPages;
    if (this.e < 0) this.e = this.local(binaryen.i32);
    if (this.ea < 0) this.ea = this.local(binaryen.i64);
    const e = this.e;
    const parts: ExpressionRef[] = [];
    let ea = base;
    if (offset !== 0) {
      parts.push(m.local.set(this.ea, m.i64.add(base(), i64(m, offset)))); // ea = base + offset
      ea = () => m.local.get(this.ea, binaryen.i64);
    }
    const low = () => m.i32.wrap(ea());
    const table = (write ? this.layout.writeTable : this.layout.readTable) + 4 * region.basePage;
    // e = table[base + ((ea >>> pageShift) & (span - 1))]
    const index = m.i32.and(m.i32.wrap(m.i64.shr_u(ea(), i64(m, pageShift))), m.i32.const((numPages - 1) | 0));
    parts.push(m.local.set(e, m.i32.load(table, 4, m.i32.shl(index, m.i32.const(2)), this.memory)));
    const eGet = () => m.local.get(e, binaryen.i32);
    // unmapped, or past the tables (ea >= numPages * pageSize)
    const wrapped = () => m.i64.lt_u(ea(), i64(m, offset)); // base + offset wrapped past 2^64
    const failed = [m.i64.ge_u(ea(), i64(m, numPages * pageSize))]; // past the tables
    if (offset !== 0) failed.push(wrapped());
    const inPage = bytes > 1 ? m.i32.and(low(), m.i32.const(pageSize - 1)) : null; // straddles a page boundary
    const slow = slowTest(m, pageSize, eGet(), inPage, pageSize - bytes, failed);
    const flags = bytes | (write ? FAULT_WRITE : 0) | (atomic ? FAULT_ATOMIC : 0) | (region.index << FAULT_MEMORY_SHIFT);
    const info = offset !== 0 ? m.i32.or(m.i32.const(flags), m.i32.shl(wrapped(), m.i32.const(Math.log2(FAULT_WRAP)))) : m.i32.const(flags);
    parts.push(m.if(slow,
      m.call(IMPORT64_NAMES.fault, [low(), m.i32.wrap(m.i64.shr_u(ea(), i64(m, 32))), info], binaryen.i32),
      // entries hold frame - (page-space address of the page): memory k's addresses are offset by base_k
      region.basePage === 0 ? m.i32.add(low(), eGet()) : m.i32.add(m.i32.add(low(), m.i32.const((region.basePage * pageSize) | 0)), eGet())));
    return m.block(null, parts, binaryen.i32);
  }
}
