/**
 * @fileoverview The memory pass: rewrites every memory-touching instruction of a function so that it
 * translates its virtual address through farmem's page tables (see layout.ts for the encoding).
 *
 * Over 400 lines because every memory-touching expression kind is rewritten here around one shared
 * translation and spill sequence; the optional loop optimizations live in passes/.
 *
 * One load, before and after (page size 4 KiB, RT at 4096):
 *
 *   (i32.load offset=8 (local.get $p))
 *   ⇒
 *   (i32.load                                                    ;; offset 0: ea already has it
 *     (block (result i32)
 *       (local.set $ea (i32.add (local.get $p) (i32.const 8)))   ;; ea = p + 8
 *       (local.set $e (i32.load offset=4096                       ;; e = RT[ea >>> 12]
 *         (i32.shl (i32.shr_u (local.get $ea) (i32.const 12)) (i32.const 2))))
 *       (if (result i32)                                          ;; unmapped | straddles | wrapped,
 *         (i32.gt_u                                               ;; as one compare (guard.ts)
 *           (select (i32.const 4096)
 *             (select (i32.and (local.get $ea) (i32.const 4095)) (i32.const 4096) (local.get $e))
 *             (i32.lt_u (local.get $ea) (i32.const 8)))
 *           (i32.const 4092))
 *         (then (call $farmem.fault (local.get $p) (i32.const 8) (i32.const 4)))  ;; slow path
 *         (else (i32.add (local.get $ea) (local.get $e))))))     ;; phys = ea + delta
 *
 * A store reads WT instead of RT and passes `4 | FAULT_WRITE`. Its value is evaluated into a local
 * before the translation (unless it is a constant or a local.get), so evaluation order, and thus
 * trap order, stays as in the original: address, value, then the access.
 *
 *   (memory.grow (local.get $n))   ⇒  (call $farmem.grow (local.get $n))
 *   (memory.size)                  ⇒  (i32.load (i32.const 0))        ;; control block slot 0
 *   memory.copy/fill/init, data.drop ⇒ calls to farmem.copy/fill/init/drop
 *
 * The slow path `farmem.fault(addr, offset, size|write)` maps the page (major or minor fault) and
 * returns the physical address to access, a bounce buffer for an access straddling two pages, or
 * an address past physical memory so the access traps exactly like the original.
 *
 * Scratch locals: `$ea` and `$e` live only inside one translation, so one pair per function
 * suffices; the spilled address and operands of an access live while its operands are evaluated,
 * which may contain other accesses, so they are indexed by access nesting depth.
 */
import { ABI_MODULE, AbiImport } from '../abi.js';
import { FAULT_WRITE, kVirtualPages, type Layout } from '../layout.js';
import { binaryen, C, type ExpressionRef, type FunctionRef, type Module, type Type } from './binaryen.js';
import type { Optimizations } from './optimizations.js';
import { LoopChunker, type AccessInfo } from './passes/chunk.js';
import { SharedChecks, type CheckGroup, type GroupRole } from './passes/shared-checks.js';
import { slowTest } from './guard.js';
import { flushAfterStore, sharedWaitNotify } from './shared-memory.js';
import { STRADDLE_HELPER } from './straddle.js';
import { Visitor } from './visitor.js';

const b = binaryen as unknown as Record<string, number>;
const ID = {
  Load: b.LoadId!, Store: b.StoreId!, AtomicRMW: b.AtomicRMWId!, AtomicCmpxchg: b.AtomicCmpxchgId!,
  AtomicWait: b.AtomicWaitId!, AtomicNotify: b.AtomicNotifyId!, SIMDLoad: b.SIMDLoadId!,
  SIMDLoadStoreLane: b.SIMDLoadStoreLaneId!, MemorySize: b.MemorySizeId!, MemoryGrow: b.MemoryGrowId!,
  MemoryCopy: b.MemoryCopyId!, MemoryFill: b.MemoryFillId!, MemoryInit: b.MemoryInitId!, DataDrop: b.DataDropId!,
  Const: b.ConstId!, LocalGet: b.LocalGetId!, GlobalGet: b.GlobalGetId!, Pop: b.PopId!, Loop: b.LoopId!,
};

/** Scratch slot (per depth) holding a shared-memory store's physical address for its flush check. */
const FLUSH_SLOT = 100;

/** An access takes an operand straight from a catch's `pop` (see rewriteAccess). */
export class NestedPop extends Error {}

/** Internal names of the functions the pass calls; imported from module `farmem`. */
export const IMPORT_NAMES = {
  fault: '$farmem.fault', grow: '$farmem.grow', copy: '$farmem.copy', fill: '$farmem.fill',
  init: '$farmem.init', drop: '$farmem.drop', wait: '$farmem.wait',
} as const;

/** Adds the `farmem.*` function imports the pass calls. */
export function addAbiImports(module: Module): void {
  const { i32, none } = binaryen;
  const t = binaryen.createType;
  module.addFunctionImport(IMPORT_NAMES.fault, ABI_MODULE, AbiImport.Fault, t([i32, i32, i32]), i32);
  module.addFunctionImport(IMPORT_NAMES.grow, ABI_MODULE, AbiImport.Grow, i32, i32);
  module.addFunctionImport(IMPORT_NAMES.copy, ABI_MODULE, AbiImport.Copy, t([i32, i32, i32]), none);
  module.addFunctionImport(IMPORT_NAMES.fill, ABI_MODULE, AbiImport.Fill, t([i32, i32, i32]), none);
  module.addFunctionImport(IMPORT_NAMES.init, ABI_MODULE, AbiImport.Init, t([i32, i32, i32, i32]), none);
  module.addFunctionImport(IMPORT_NAMES.drop, ABI_MODULE, AbiImport.Drop, i32, none);
  module.addFunctionImport(IMPORT_NAMES.wait, ABI_MODULE, AbiImport.Wait, none, none);
}

/** An operand of an access other than its address, evaluated after the address. */
interface Operand {
  readonly get: (e: ExpressionRef) => ExpressionRef;
  readonly set: (e: ExpressionRef, v: ExpressionRef) => void;
}
function operand(kind: string, field: string): Operand {
  return { get: C[`_Binaryen${kind}Get${field}`]!, set: C[`_Binaryen${kind}Set${field}`]! };
}

/** How to read one kind of access: address slot, offset, size, write flag, other operands. */
export interface AccessKind {
  readonly ptr: Operand;
  readonly getOffset: (e: ExpressionRef) => number;
  readonly setOffset: (e: ExpressionRef, o: number) => void;
  readonly bytes: (e: ExpressionRef) => number;
  readonly isWrite: (e: ExpressionRef) => boolean;
  readonly operands: readonly Operand[];
}

function access(kind: string, bytes: AccessKind['bytes'], isWrite: AccessKind['isWrite'], operands: string[]): AccessKind {
  return {
    ptr: operand(kind, 'Ptr'),
    getOffset: C[`_Binaryen${kind}GetOffset`] ?? (() => 0),
    setOffset: C[`_Binaryen${kind}SetOffset`] ?? (() => {}),
    bytes,
    isWrite,
    operands: operands.map((f) => operand(kind, f)),
  };
}

const simdLoadBytes = new Map<number, number>([
  [b.Load8SplatVec128!, 1], [b.Load16SplatVec128!, 2], [b.Load32SplatVec128!, 4], [b.Load64SplatVec128!, 8],
  [b.Load8x8SVec128!, 8], [b.Load8x8UVec128!, 8], [b.Load16x4SVec128!, 8], [b.Load16x4UVec128!, 8],
  [b.Load32x2SVec128!, 8], [b.Load32x2UVec128!, 8], [b.Load32ZeroVec128!, 4], [b.Load64ZeroVec128!, 8],
]);
const laneBytes = new Map<number, number>([
  [b.Load8LaneVec128!, 1], [b.Load16LaneVec128!, 2], [b.Load32LaneVec128!, 4], [b.Load64LaneVec128!, 8],
  [b.Store8LaneVec128!, 1], [b.Store16LaneVec128!, 2], [b.Store32LaneVec128!, 4], [b.Store64LaneVec128!, 8],
]);
const atomicWaitBytes = (e: ExpressionRef) => (C._BinaryenAtomicWaitGetExpectedType!(e) === binaryen.i64 ? 8 : 4);

export const ACCESS = new Map<number, AccessKind>([
  [ID.Load, access('Load', C._BinaryenLoadGetBytes!, () => false, [])],
  [ID.Store, access('Store', C._BinaryenStoreGetBytes!, () => true, ['Value'])],
  [ID.AtomicRMW, access('AtomicRMW', C._BinaryenAtomicRMWGetBytes!, () => true, ['Value'])],
  [ID.AtomicCmpxchg, access('AtomicCmpxchg', C._BinaryenAtomicCmpxchgGetBytes!, () => true, ['Expected', 'Replacement'])],
  [ID.AtomicWait, { ...access('AtomicWait', atomicWaitBytes, () => false, ['Expected', 'Timeout']), getOffset: offsetFromText }],
  [ID.AtomicNotify, { ...access('AtomicNotify', () => 4, () => false, ['NotifyCount']), getOffset: offsetFromText }],
  [ID.SIMDLoad, access('SIMDLoad', (e) => simdLoadBytes.get(C._BinaryenSIMDLoadGetOp!(e))!, () => false, [])],
  [ID.SIMDLoadStoreLane, access('SIMDLoadStoreLane', (e) => laneBytes.get(C._BinaryenSIMDLoadStoreLaneGetOp!(e))!,
    (e) => C._BinaryenSIMDLoadStoreLaneIsStore!(e) !== 0, ['Vec'])],
]);

/**
 * binaryen.js has no offset getter for memory.atomic.wait/notify; the printed form has it
 * (`(memory.atomic.notify offset=8 ...`). These instructions are rare, so printing one is fine.
 */
function offsetFromText(expr: ExpressionRef): number {
  const head = binaryen.emitText(expr).slice(0, 200);
  const m = /^\(memory\.atomic\.(?:notify|wait32|wait64)(?: \$\S+)? offset=(\d+)/.exec(head);
  return m ? Number(m[1]) : 0;
}

/** The chunker's view of an access, from the table above. */
const ACCESS_INFO: AccessInfo = {
  ptr: (e, id) => ACCESS.get(id)!.ptr.get(e),
  offset: (e, id) => ACCESS.get(id)!.getOffset(e),
  bytes: (e, id) => ACCESS.get(id)!.bytes(e),
  write: (e, id) => ACCESS.get(id)!.isWrite(e),
  atomic: (e, id) => (id === ID.Load ? C._BinaryenLoadIsAtomic!(e) !== 0
    : id === ID.Store ? C._BinaryenStoreIsAtomic!(e) !== 0
    : id !== ID.SIMDLoad && id !== ID.SIMDLoadStoreLane),
};

const getId = C._BinaryenExpressionGetId!;
const getType = C._BinaryenExpressionGetType!;
const isDead = (e: ExpressionRef, id: number) => hasUnreachableOperand(e, ACCESS.get(id)!);
const getDataDropSegment = (e: ExpressionRef) => (binaryen as any).DataDrop.getSegment(e) as string;

/** Per-function scratch locals, created on first use. */
class Scratch {
  ea = -1;
  e = -1;
  /** `byDepth[depth]` maps "type:slot" to a local index. */
  private readonly byDepth: Map<string, number>[] = [];
  constructor(private readonly func: FunctionRef) {}
  add(type: Type): number {
    return C._BinaryenFunctionAddVar!(this.func, type);
  }
  i32(which: 'ea' | 'e'): number {
    if (this[which] < 0) this[which] = this.add(binaryen.i32);
    return this[which];
  }
  at(depth: number, type: Type, slot: number): number {
    const map = (this.byDepth[depth] ??= new Map());
    const key = `${type}:${slot}`;
    let index = map.get(key);
    if (index === undefined) map.set(key, (index = this.add(type)));
    return index;
  }
}

export interface PassCounts {
  accesses: number;
  bulk: number;
  /** Loops versioned (chunked and/or outlined), fast-body accesses with a cached translation, and checks branching out of the loop. */
  chunkedLoops: number;
  chunkedAccesses: number;
  outlinedChecks: number;
  /** Chunked loops whose page bound is folded into their exit test (`predicate`). */
  predicatedLoops: number;
  /** Groups of accesses sharing one check, and the accesses that use a group's check (not the heads). */
  sharedGroups: number;
  sharedAccesses: number;
}

export class MemoryPass extends Visitor {
  private depth = 0;
  private scratch: Scratch | null = null;
  private readonly pageMask: number;
  private readonly chunker: LoopChunker | null;
  private readonly share: boolean;
  /** Slow paths call `$farmem.slow` (straddle.ts) rather than the fault import. */
  readonly straddle: boolean;
  private readonly shared: SharedChecks;
  private readonly counters: Pick<PassCounts, 'accesses' | 'bulk'> = { accesses: 0, bulk: 0 };
  /** The module's memory is shared (threads): see shared-memory.ts. */
  sharedMemory = false;

  constructor(
    private readonly module: Module,
    private readonly layout: Layout,
    private readonly memory: string,
    private readonly segmentIndex: ReadonlyMap<string, number>,
    optimize: Optimizations,
  ) {
    super();
    this.pageMask = layout.pageSize - 1;
    this.chunker = optimize.chunk || optimize.outline ? new LoopChunker(module, layout, memory, ACCESS_INFO, optimize) : null;
    this.share = optimize.share;
    this.straddle = optimize.straddle;
    this.shared = new SharedChecks({ ...ACCESS_INFO, dead: isDead }, layout.pageSize);
  }

  get counts(): PassCounts {
    const c = this.chunker?.stats;
    const s = this.shared.stats;
    return { ...this.counters, chunkedLoops: c?.loops ?? 0, chunkedAccesses: c?.streams ?? 0, outlinedChecks: c?.outlined ?? 0,
      predicatedLoops: c?.predicated ?? 0, sharedGroups: s.groups, sharedAccesses: s.members };
  }

  /** Instruments one function body in place. */
  runOnFunction(func: FunctionRef): void {
    const body = C._BinaryenFunctionGetBody!(func);
    if (body === 0) return;
    this.scratch = new Scratch(func);
    this.depth = 0;
    this.chunker?.reset();
    // Threaded guests keep per-access checks: another thread's straddling store flushes at its own time.
    if (this.share && !this.sharedMemory) this.shared.analyse(body);
    else this.shared.roles.clear();
    const next = this.walk(body);
    if (next !== body) C._BinaryenFunctionSetBody!(func, next);
    this.scratch = null;
  }

  protected override enter(expr: ExpressionRef, id: number): void {
    if (ACCESS.has(id)) this.depth++;
    else if (id === ID.Loop && this.chunker) {
      const scratch = this.scratch!;
      const chunked = this.chunker.tryChunk(expr, () => scratch.add(binaryen.i32), () => scratch.i32('ea'));
      if (chunked && this.share && !this.sharedMemory) this.shared.analyseMore(this.chunker.fastBody, this.chunker.streams);
      this.chunker.enterLoop(expr);
    }
  }

  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    const kind = ACCESS.get(id);
    if (kind !== undefined) {
      this.depth--;
      if (this.chunker?.raw.has(expr)) return expr; // a page-table load the chunker emitted
      return this.rewriteAccess(expr, id, kind);
    }
    if (id === ID.Loop) this.chunker?.leaveLoop(expr);
    if (id === ID.MemorySize) { // size = CB[kVirtualPages]
      return this.module.i32.load(kVirtualPages * 4, 4, this.module.i32.const(0), this.memory);
    }
    const call = rewriteBulk(this.module, expr, id, IMPORT_NAMES, binaryen.i32, this.segmentIndex);
    if (call !== expr) this.counters.bulk++;
    return call;
  }

  /** Replaces the access's address by its translation; see the file header. */
  private rewriteAccess(expr: ExpressionRef, id: number, kind: AccessKind): ExpressionRef {
    const m = this.module;
    const ptr = kind.ptr.get(expr);
    if (!executes(expr, kind)) return expr;
    this.counters.accesses++;
    const delta = this.chunker?.streams.get(expr);
    if (delta !== undefined) return this.rewriteStream(expr, kind, ptr, delta);

    const scratch = this.scratch!;
    const prelude = spillOperands(m, expr, kind, (type, slot) => scratch.at(this.depth, type, slot));
    const spilled = prelude.length > 0;
    // The address: re-evaluable if constant, or a local.get with nothing evaluated in between.
    let base: () => ExpressionRef;
    const ptrId = getId(ptr);
    if (ptrId === ID.Const || (ptrId === ID.LocalGet && !spilled)) {
      base = ptrId === ID.Const
        ? (() => { const v = C._BinaryenConstGetValueI32!(ptr); return () => m.i32.const(v); })()
        : (() => { const i = C._BinaryenLocalGetGetIndex!(ptr); return () => m.local.get(i, binaryen.i32); })();
    } else {
      const local = scratch.at(this.depth, binaryen.i32, 0);
      prelude.unshift(m.local.set(local, ptr));
      base = () => m.local.get(local, binaryen.i32);
    }

    const offset = kind.getOffset(expr) >>> 0;
    const bytes = kind.bytes(expr);
    const write = kind.isWrite(expr);
    const outline = this.chunker?.outlined.get(expr) ?? null;
    // A fault drops the chunks' cached translations and those of the shared checks open around it.
    const chunkDrops = this.chunker?.dropOnFault(expr) ?? [];
    const groups = this.shared.zeroed(expr);
    const drops = groups.length === 0 ? chunkDrops : [...chunkDrops, ...groups.map((g) => this.groupLocal(g))];
    const role = this.shared.roles.get(expr);
    const alone = () => this.translate(base, offset, bytes, write, drops, outline);
    // A shared check's slow path calls the fault handler at once (it serves a mapped page too):
    // short code; only an outlined check keeps its own test, to leave the loop without a call.
    const slow = outline === null ? () => this.faultCall(base, offset, bytes, write, drops) : alone;
    const translated = role === undefined ? alone() : this.translateShared(role, slow);
    const physical = prelude.length === 0 ? translated : m.block(null, [...prelude, translated], binaryen.i32);
    if (this.sharedMemory && (id === ID.AtomicWait || id === ID.AtomicNotify)) {
      const ea = offset === 0 ? base() : m.i32.add(base(), m.i32.const(offset | 0));
      return sharedWaitNotify(m, this.memory, id === ID.AtomicNotify, bytes, physical, ea, kind.operands.map((op) => op.get(expr)));
    }
    if (id === ID.AtomicNotify) {
      // No offset setter in binaryen.js: rebuild the notify with offset 0 on the translated address.
      // Notify on the (unshared) original memory wakes nobody and returns 0; so does ours.
      return m.memory.atomic.notify(physical, kind.operands[0]!.get(expr), this.memory);
    }
    kind.ptr.set(expr, physical);
    kind.setOffset(expr, 0);

    if (id === ID.AtomicWait) {
      // Waiting on the original (unshared) memory traps after the bounds and alignment checks:
      // check them with an atomic load of the translated address, then trap like V8.
      const type = bytes === 8 ? binaryen.i64 : binaryen.i32;
      const check = bytes === 8
        ? m.i64.atomic.load(0, kind.ptr.get(expr), this.memory)
        : m.i32.atomic.load(0, kind.ptr.get(expr), this.memory);
      const parts = [m.drop(check)];
      for (const op of kind.operands) parts.push(m.drop(op.get(expr)));
      void type;
      parts.push(m.call(IMPORT_NAMES.wait, [], binaryen.none), m.unreachable());
      return m.block(null, parts, binaryen.i32);
    }
    if (this.sharedMemory && write && bytes > 1 && (id === ID.SIMDLoadStoreLane || (id === ID.Store && !C._BinaryenStoreIsAtomic!(expr)))) {
      return flushAfterStore(m, expr, kind.ptr.get, kind.ptr.set, scratch.at(this.depth, binaryen.i32, FLUSH_SLOT));
    }
    return expr;
  }

  /**
   * An access of a chunked loop's fast body: its page was translated at the top of the chunk, so
   * phys = ptr + delta (+ offset, kept in the instruction when it cannot wrap: phys ≥ frameBase).
   */
  private rewriteStream(expr: ExpressionRef, kind: AccessKind, ptr: ExpressionRef, delta: number): ExpressionRef {
    const m = this.module;
    const base = this.chunker!.bases.get(expr);
    if (base) {
      // ptr = X + Y with X invariant: Y + (X + delta), the sum kept in a local since the refill
      const y = base.side === 0 ? C._BinaryenBinaryGetRight!(ptr) : C._BinaryenBinaryGetLeft!(ptr);
      ptr = y;
      delta = base.local;
    }
    const d = m.local.get(delta, binaryen.i32);
    const offset = kind.getOffset(expr) >>> 0;
    if (offset <= this.layout.frameBase) {
      kind.ptr.set(expr, m.i32.add(ptr, d)); // ptr + delta; the instruction adds the offset
    } else {
      kind.ptr.set(expr, m.i32.add(m.i32.add(ptr, m.i32.const(offset | 0)), d)); // (ptr + offset) + delta
      kind.setOffset(expr, 0);
    }
    return expr;
  }

  /** The cached physical base of a group of shared checks (passes/shared-checks.ts). */
  private groupLocal(group: CheckGroup): number {
    if (group.local < 0) group.local = this.scratch!.add(binaryen.i32);
    return group.local;
  }

  /**
   * An access of a group sharing one check (see passes/shared-checks.ts): the head tests the
   * group's whole span at once and sets g = phys(x + tmin), or g = 0 and takes its own slow path;
   * a member uses g + delta, or its own slow path when g = 0. `alone` is that slow path: the fault
   * call (or an outlined check), which returns the access's physical address or traps.
   */
  private translateShared(role: GroupRole, alone: () => ExpressionRef): ExpressionRef {
    const m = this.module;
    const i32 = binaryen.i32;
    const { group, delta } = role;
    const g = this.groupLocal(group);
    const cached = () => (delta === 0 ? m.local.get(g, i32) : m.i32.add(m.local.get(g, i32), m.i32.const(delta)));
    if (!role.head) return m.if(m.local.get(g, i32), cached(), alone()); // phys = g ? g + delta : alone
    const { pageShift, pageSize } = this.layout;
    const scratch = this.scratch!;
    const x = () => (group.base < 0 ? m.i32.const(0) : m.local.get(group.base, i32));
    const parts: ExpressionRef[] = [];
    let lo = x;
    if (group.tmin !== 0 || group.base < 0) { // lo = x + tmin
      const local = scratch.i32('ea');
      parts.push(m.local.set(local, m.i32.add(x(), m.i32.const(group.tmin))));
      lo = () => m.local.get(local, i32);
    }
    const e = scratch.i32('e');
    const table = group.write ? this.layout.writeTable : this.layout.readTable;
    // e = table[lo >>> pageShift]
    parts.push(m.local.set(e, m.i32.load(table, 4, m.i32.shl(m.i32.shr_u(lo(), m.i32.const(pageShift)), m.i32.const(2)), this.memory)));
    // unmapped | the span leaves lo's page | x + tmin wrapped | x + k wrapped below 0
    const wrapped: ExpressionRef[] = [];
    if (group.tmin > 0) wrapped.push(m.i32.lt_u(lo(), m.i32.const(group.tmin)));
    if (group.kmin < 0) wrapped.push(m.i32.lt_u(x(), m.i32.const(-group.kmin)));
    const slow = slowTest(m, pageSize, m.local.get(e, i32), m.i32.and(lo(), m.i32.const(this.pageMask)), pageSize - group.span, wrapped);
    const fast = m.local.tee(g, m.i32.add(lo(), m.local.get(e, i32)), i32); // g = phys(lo)
    parts.push(m.if(slow,
      m.block(null, [m.local.set(g, m.i32.const(0)), alone()], i32),
      delta === 0 ? fast : m.i32.add(fast, m.i32.const(delta))));
    return m.block(null, parts, i32);
  }

  /** Builds `phys(base + offset)` for an access of `bytes` bytes. */
  private translate(base: () => ExpressionRef, offset: number, bytes: number, write: boolean, dropCache: readonly number[], outline: string | null): ExpressionRef {
    const m = this.module;
    const { pageShift, pageSize } = this.layout;
    const scratch = this.scratch!;
    const e = scratch.i32('e');
    const parts: ExpressionRef[] = [];
    let ea = base;
    if (offset !== 0) {
      const local = scratch.i32('ea');
      parts.push(m.local.set(local, m.i32.add(base(), m.i32.const(offset | 0)))); // ea = base + offset
      ea = () => m.local.get(local, binaryen.i32);
    }
    const table = write ? this.layout.writeTable : this.layout.readTable;
    // e = table[ea >>> pageShift]
    parts.push(m.local.set(e, m.i32.load(table, 4, m.i32.shl(m.i32.shr_u(ea(), m.i32.const(pageShift)), m.i32.const(2)), this.memory)));
    const eGet = () => m.local.get(e, binaryen.i32);
    // unmapped | straddles: (ea & mask) > pageSize - bytes | base + offset wrapped past 2^32
    const inPage = bytes > 1 ? m.i32.and(ea(), m.i32.const(this.pageMask)) : null;
    const slow = slowTest(m, pageSize, eGet(), inPage, pageSize - bytes, offset !== 0 ? [m.i32.lt_u(ea(), m.i32.const(offset | 0))] : []);
    if (outline !== null) {
      // Out of line: leave the fast loop and re-run this iteration on the ordinary body.
      parts.push(m.br(outline, slow), m.i32.add(ea(), eGet()));
      return m.block(null, parts, binaryen.i32);
    }
    parts.push(m.if(slow, this.faultCall(base, offset, bytes, write, dropCache), m.i32.add(ea(), eGet())));
    return m.block(null, parts, binaryen.i32);
  }

  /** `fault(base, offset, info)`, the slow path; first zeroes the `drops` locals (cached translations). */
  private faultCall(base: () => ExpressionRef, offset: number, bytes: number, write: boolean, drops: readonly number[]): ExpressionRef {
    const m = this.module;
    const info = bytes | (write ? FAULT_WRITE : 0);
    // Through the in-wasm straddle helper (straddle.ts), except in shared memories.
    const target = this.straddle && !this.sharedMemory ? STRADDLE_HELPER : IMPORT_NAMES.fault;
    const fault = m.call(target, [base(), m.i32.const(offset | 0), m.i32.const(info)], binaryen.i32);
    // In a chunked loop's fast body a fault is a safepoint: the chunks' cached translations go.
    if (drops.length === 0) return fault;
    return m.block(null, [...drops.map((c) => m.local.set(c, m.i32.const(0))), fault], binaryen.i32);
  }
}

/**
 * Whether a rewrite of this access can run: false if an operand is unreachable (the access never
 * executes). Throws NestedPop if an operand is a catch's `pop`: spilling it into a block would nest
 * it, which is invalid, and binaryen.js does not expose the utility that hoists such pops.
 */
export function executes(expr: ExpressionRef, kind: AccessKind): boolean {
  if (hasUnreachableOperand(expr, kind)) return false;
  if (getId(kind.ptr.get(expr)) === ID.Pop || kind.operands.some((op) => getId(op.get(expr)) === ID.Pop)) throw new NestedPop();
  return true;
}

/** The address or another operand of the access is unreachable: the access never runs. */
function hasUnreachableOperand(expr: ExpressionRef, kind: AccessKind): boolean {
  return getType(kind.ptr.get(expr)) === binaryen.unreachable || kind.operands.some((op) => getType(op.get(expr)) === binaryen.unreachable);
}

/**
 * Spills the operands evaluated after the address, in order, up to the last one that is not
 * trivially pure (a later operand may write a local an earlier local.get reads), into the locals
 * `local(type, slot)` gives (slot 1.. for operand 0..); trailing trivial operands (constants,
 * local.get, global.get) keep their place after the translation. Returns the `local.set`s.
 */
export function spillOperands(m: Module, expr: ExpressionRef, kind: AccessKind, local: (type: Type, slot: number) => number): ExpressionRef[] {
  const prelude: ExpressionRef[] = [];
  let lastImpure = -1;
  kind.operands.forEach((op, slot) => { if (!isTrivial(op.get(expr))) lastImpure = slot; });
  kind.operands.forEach((op, slot) => {
    if (slot > lastImpure) return;
    const value = op.get(expr);
    const type = getType(value);
    const index = local(type, slot + 1);
    prelude.push(m.local.set(index, value));
    op.set(expr, m.local.get(index, type));
  });
  return prelude;
}

/** The imports `rewriteBulk` calls. */
export interface BulkImports {
  readonly grow: string;
  readonly copy: string;
  readonly fill: string;
  readonly init: string;
  readonly drop: string;
}

/**
 * memory.grow/copy/fill/init and data.drop as calls to the host, operands in place:
 *   (memory.grow $n) ⇒ (call grow $n)        (memory.init $seg d s n) ⇒ (call init (i32.const seg#) d s n)
 * `address` is the type of grow's result (i32, or i64 for memory64). Other expressions are returned as they are.
 */
export function rewriteBulk(m: Module, expr: ExpressionRef, id: number, names: BulkImports, address: Type,
  segments: ReadonlyMap<string, number>): ExpressionRef {
  const segment = (name: string) => {
    const index = segments.get(name);
    if (index === undefined) throw new Error(`unknown data segment ${name}`);
    return index;
  };
  switch (id) {
    case ID.MemoryGrow:
      return m.call(names.grow, [C._BinaryenMemoryGrowGetDelta!(expr)], address);
    case ID.MemoryCopy:
      return m.call(names.copy, [C._BinaryenMemoryCopyGetDest!(expr), C._BinaryenMemoryCopyGetSource!(expr), C._BinaryenMemoryCopyGetSize!(expr)], binaryen.none);
    case ID.MemoryFill:
      return m.call(names.fill, [C._BinaryenMemoryFillGetDest!(expr), C._BinaryenMemoryFillGetValue!(expr), C._BinaryenMemoryFillGetSize!(expr)], binaryen.none);
    case ID.MemoryInit: {
      const index = segment((binaryen as any).MemoryInit.getSegment(expr) as string);
      return m.call(names.init, [m.i32.const(index), C._BinaryenMemoryInitGetDest!(expr), C._BinaryenMemoryInitGetOffset!(expr), C._BinaryenMemoryInitGetSize!(expr)], binaryen.none);
    }
    case ID.DataDrop:
      return m.call(names.drop, [m.i32.const(segment(getDataDropSegment(expr)))], binaryen.none);
    default:
      return expr;
  }
}

export function isTrivial(expr: ExpressionRef): boolean {
  const id = getId(expr);
  return id === ID.Const || id === ID.LocalGet || id === ID.GlobalGet;
}
