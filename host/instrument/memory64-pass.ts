/**
 * @fileoverview The memory pass for a 64-bit memory (memory64). Addresses are i64; physical memory
 * stays a 32-bit memory holding the page tables and frames, so the instrumented module needs no
 * memory64 support itself (it runs on Node 20 too). The tables cover the declared maximum rounded
 * up to a power of two of pages, N = layout.numPages (layout.ts).
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
 *       (if (result i32)
 *         (i32.or (i32.or (i32.or (i32.eqz (local.get $e))                         ;; unmapped
 *                                 (i64.ge_u (local.get $ea) (i64.const 0x200000000)))  ;; past the tables
 *                         (i32.gt_u (i32.and (i32.wrap_i64 (local.get $ea)) (i32.const 4095)) (i32.const 4092)))  ;; straddles
 *                 (i64.lt_u (local.get $ea) (i64.const 8)))                         ;; p + 8 wrapped past 2^64
 *         (then (call $farmem.fault64 (i32.wrap_i64 (local.get $ea)) (i32.wrap_i64 (i64.shr_u (local.get $ea) (i64.const 32)))
 *                 (i32.or (i32.const 4) (i32.shl (i64.lt_u (local.get $ea) (i64.const 8)) (i32.const 9)))))  ;; | FAULT_WRAP
 *         (else (i32.add (i32.wrap_i64 (local.get $ea)) (local.get $e))))))       ;; phys = ea + delta (mod 2^32)
 *
 * A delta entry works unchanged: frame - page ≡ phys - ea (mod 2^32), and the frame is below 4 GiB.
 * A store reads WT and passes FAULT_WRITE, as in memory-pass.ts, whose access table and operand
 * spilling rules (evaluation order kept: address, operands, access; `spillOperands`) this pass shares.
 *
 *   (memory.size)       ⇒ (i64.extend_i32_u (i32.load (i32.const 0)))   ;; control block slot 0
 *   (memory.grow $n)    ⇒ (call $farmem.grow64 $n)                       ;; and copy64/fill64/init64
 */
import { ABI_MODULE, AbiImport } from '../abi.js';
import { FAULT_ATOMIC, FAULT_WRAP, FAULT_WRITE, kVirtualPages, type Layout } from '../layout.js';
import { binaryen, C, type ExpressionRef, type FunctionRef, type Module, type Type } from './binaryen.js';
import { ACCESS, executes, IMPORT_NAMES, rewriteBulk, spillOperands, type AccessKind, type BulkImports, type PassCounts } from './memory-pass.js';
import { diagnostic } from './diagnostics.js';
import { offsetHigh } from './hidden-children.js';
import { Visitor } from './visitor.js';

const b = binaryen as unknown as Record<string, number>;
/** An i64 constant (binaryen 132's `i64.const` takes one BigInt). */
const i64 = (m: Module, value: number): ExpressionRef => (m.i64.const as unknown as (v: bigint) => ExpressionRef)(BigInt(value));

/** Internal names of the memory64 imports (module `farmem`). */
export const IMPORT64_NAMES = {
  fault: '$farmem.fault64', grow: '$farmem.grow64', copy: '$farmem.copy64', fill: '$farmem.fill64', init: '$farmem.init64',
} as const;

/** The bulk operations' imports: 64-bit ones, except drop (it takes a segment index only). */
const BULK64: BulkImports = { ...IMPORT64_NAMES, drop: IMPORT_NAMES.drop };

/** Adds the `farmem.*64` imports (the 32-bit ones, for drop and wait, come from addAbiImports). */
export function addAbi64Imports(module: Module): void {
  const { i32, i64, none } = binaryen;
  const t = binaryen.createType;
  module.addFunctionImport(IMPORT64_NAMES.fault, ABI_MODULE, AbiImport.Fault64, t([i32, i32, i32]), i32);
  module.addFunctionImport(IMPORT64_NAMES.grow, ABI_MODULE, AbiImport.Grow64, i64, i64);
  module.addFunctionImport(IMPORT64_NAMES.copy, ABI_MODULE, AbiImport.Copy64, t([i64, i64, i64]), none);
  module.addFunctionImport(IMPORT64_NAMES.fill, ABI_MODULE, AbiImport.Fill64, t([i64, i32, i64]), none);
  module.addFunctionImport(IMPORT64_NAMES.init, ABI_MODULE, AbiImport.Init64, t([i32, i64, i32, i32]), none);
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
  private readonly limit: number;
  /** The memory pass's counts; this pass does not chunk or outline (see memory-pass.ts). */
  readonly counts: PassCounts = { accesses: 0, bulk: 0, chunkedLoops: 0, chunkedAccesses: 0, outlinedChecks: 0 };

  constructor(
    private readonly module: Module,
    private readonly layout: Layout,
    private readonly memory: string,
    private readonly segmentIndex: ReadonlyMap<string, number>,
  ) {
    super();
    this.limit = layout.numPages * layout.pageSize;
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
    if (id === b.MemorySizeId) { // size = CB[kVirtualPages], as i64
      return m.i64.extend_u(m.i32.load(kVirtualPages * 4, 4, m.i32.const(0), this.memory));
    }
    const call = rewriteBulk(m, expr, id, BULK64, binaryen.i64, this.segmentIndex);
    if (call !== expr) this.counts.bulk++;
    return call;
  }

  /**
   * The 64-bit twin of `MemoryPass.rewriteAccess` (same steps, i64 addresses, `fault64`): kept apart
   * so the 32-bit fast path, which the loop optimizations build on, stays as it is.
   */
  private rewriteAccess(expr: ExpressionRef, id: number, kind: AccessKind): ExpressionRef {
    const m = this.module;
    const ptr = kind.ptr.get(expr);
    if (!executes(expr, kind)) return expr;
    this.counts.accesses++;
    const prelude = spillOperands(m, expr, kind, (type, slot) => this.spill(type, slot));
    const local = this.spill(binaryen.i64, 0);
    prelude.unshift(m.local.set(local, ptr));
    const base = () => m.local.get(local, binaryen.i64);

    const offset = offsetOf(kind, expr, id);
    const bytes = kind.bytes(expr);
    const write = kind.isWrite(expr);
    const atomic = id === b.LoadId ? C._BinaryenLoadIsAtomic!(expr) !== 0 : id === b.StoreId ? C._BinaryenStoreIsAtomic!(expr) !== 0
      : id !== b.SIMDLoadId && id !== b.SIMDLoadStoreLaneId;
    const physical = m.block(null, [...prelude, this.translate(base, offset, bytes, write, atomic)], binaryen.i32);
    if (id === b.AtomicNotifyId) {
      // Notify on the (unshared) original memory wakes nobody and returns 0; so does ours.
      return m.memory.atomic.notify(physical, kind.operands[0]!.get(expr), this.memory);
    }
    kind.ptr.set(expr, physical);
    kind.setOffset(expr, 0);
    if (id === b.AtomicWaitId) {
      // Waiting on an unshared memory traps after the bounds and alignment checks (memory-pass.ts).
      const check = bytes === 8 ? m.i64.atomic.load(0, kind.ptr.get(expr), this.memory) : m.i32.atomic.load(0, kind.ptr.get(expr), this.memory);
      const parts = [m.drop(check), ...kind.operands.map((op) => m.drop(op.get(expr)))];
      parts.push(m.call(IMPORT_NAMES.wait, [], binaryen.none), m.unreachable());
      return m.block(null, parts, binaryen.i32);
    }
    return expr;
  }

  /** Builds `phys(base + offset)` for an access of `bytes` bytes at an i64 address. */
  private translate(base: () => ExpressionRef, offset: number, bytes: number, write: boolean, atomic: boolean): ExpressionRef {
    const m = this.module;
    const { pageShift, pageSize, numPages } = this.layout;
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
    const table = write ? this.layout.writeTable : this.layout.readTable;
    // e = table[(ea >>> pageShift) & (numPages - 1)]
    const index = m.i32.and(m.i32.wrap(m.i64.shr_u(ea(), i64(m, pageShift))), m.i32.const((numPages - 1) | 0));
    parts.push(m.local.set(e, m.i32.load(table, 4, m.i32.shl(index, m.i32.const(2)), this.memory)));
    const eGet = () => m.local.get(e, binaryen.i32);
    // unmapped, or past the tables (ea >= numPages * pageSize)
    let slow = m.i32.or(m.i32.eqz(eGet()), m.i64.ge_u(ea(), i64(m, this.limit)));
    if (bytes > 1) { // straddles a page boundary
      slow = m.i32.or(slow, m.i32.gt_u(m.i32.and(low(), m.i32.const(pageSize - 1)), m.i32.const(pageSize - bytes)));
    }
    const wrapped = () => m.i64.lt_u(ea(), i64(m, offset)); // base + offset wrapped past 2^64
    if (offset !== 0) slow = m.i32.or(slow, wrapped());
    const flags = bytes | (write ? FAULT_WRITE : 0) | (atomic ? FAULT_ATOMIC : 0);
    const info = offset !== 0 ? m.i32.or(m.i32.const(flags), m.i32.shl(wrapped(), m.i32.const(Math.log2(FAULT_WRAP)))) : m.i32.const(flags);
    parts.push(m.if(slow,
      m.call(IMPORT64_NAMES.fault, [low(), m.i32.wrap(m.i64.shr_u(ea(), i64(m, 32))), info], binaryen.i32),
      m.i32.add(low(), eGet())));
    return m.block(null, parts, binaryen.i32);
  }
}
