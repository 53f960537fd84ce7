/**
 * @fileoverview Shared translations (optimization `share`): accesses off one base value with
 * different constant offsets (`offsets[u]` and `offsets[u+1]`, struct fields `p->a`, `p->b`, a
 * load and a store of the same slot) share one page-table check when no safepoint lies between
 * them. An analysis over a function body, in evaluation order, groups them; the memory pass then
 * emits one check at the group's first access (the head) and a cached physical base for the rest.
 *
 * A group's accesses read `x + t_i` (u32 `x`, the value of one local, or 0 for constant
 * addresses; `t_i` the constant added in the address plus the instruction's offset). Before and
 * after, for `a = p[1]; b = p[0]` (page size 4 KiB; tmin = 0, span = 8):
 *
 *   (i32.load offset=4 (local.get $p))  (i32.load (local.get $p))
 *   ⇒
 *   (i32.load (block (result i32)                                  ;; the head
 *     (local.set $ea (local.get $p))                               ;; lo = x + tmin
 *     (local.set $e (i32.load offset=RT (ea >>> 12 << 2)))          ;; e = RT[lo >>> 12]
 *     (if (result i32) (i32.gt_u (select (i32.and $ea 4095) (i32.const 4096) $e) (4096 - 8))  ;; guard.ts
 *       (then (local.set $g (i32.const 0)) (call $farmem.fault (local.get $p) (i32.const 4) (i32.const 4)))
 *       (else (i32.add (local.tee $g (i32.add $ea $e)) (i32.const 4))))))  ;; g = phys(lo)
 *   (i32.load (if (result i32) (local.get $g)                     ;; a member
 *     (then (local.get $g))                                        ;; phys = g + (t - tmin)
 *     (else (call $farmem.fault (local.get $p) (i32.const 0) (i32.const 4)))))
 *
 * The head's test is the single-page test of the whole group: mapped, `(lo & mask) + span ≤
 * pageSize`, and no u32 wrap-around anywhere (`lo ≥ tmin` when tmin > 0; `x ≥ -kmin` when an
 * address adds a negative constant kmin). When it fails, `g = 0` and every access of the group
 * calls the fault handler with its own address, which maps the page if need be and returns the
 * physical address, a bounce buffer for a straddle, or traps, exactly as without the optimization.
 * (The slow path is the call alone, not the per-access check: half the code, and it runs only
 * for a group straddling a page end, spans being at most pageSize/64, or after a fault.) In a
 * chunked loop's fast body an outlined check keeps its own test and leaves the loop instead.
 *
 * Eviction safety (docs/architecture.md): `g` is used only until the next safepoint. A group ends
 * at every call, host operation, loop or try boundary (so no back edge reaches a member without
 * passing its head), at the end of an `if` arm or named block holding its head (so the head ran
 * before every member), and its members all read the base local at the head's version (no write
 * in between). Any access between the head and a member that may fault (a head, a non-member,
 * a member taking its per-access path) zeroes the `g` of every group open around it first, in its
 * slow path: a fault acknowledges the reclaimer's generation and may evict the page `g` points
 * into, so after it the members translate again. With `g ≠ 0` no member faults, so a member never
 * uses `g` after a frame could be reused.
 */
import { binaryen, C, type ExpressionRef } from '../binaryen.js';
import { Visitor } from '../visitor.js';

const b = binaryen as unknown as Record<string, number>;
const ID = {
  Block: b.BlockId!, If: b.IfId!, Loop: b.LoopId!, Try: b.TryId!, Call: b.CallId!, CallIndirect: b.CallIndirectId!,
  CallRef: b.CallRefId!, Const: b.ConstId!, LocalGet: b.LocalGetId!, LocalSet: b.LocalSetId!, Binary: b.BinaryId!,
  Load: b.LoadId!, Store: b.StoreId!, SIMDLoad: b.SIMDLoadId!, SIMDLoadStoreLane: b.SIMDLoadStoreLaneId!,
  AtomicRMW: b.AtomicRMWId!, AtomicCmpxchg: b.AtomicCmpxchgId!, AtomicWait: b.AtomicWaitId!, AtomicNotify: b.AtomicNotifyId!,
  MemoryGrow: b.MemoryGrowId!, MemoryCopy: b.MemoryCopyId!, MemoryFill: b.MemoryFillId!, MemoryInit: b.MemoryInitId!,
  DataDrop: b.DataDropId!, Throw: b.ThrowId!, Rethrow: b.RethrowId!, TryTable: C._BinaryenTryTableId?.() ?? -1,
};
const OP = { add: b.AddInt32!, sub: b.SubInt32! };

/** Expressions that end every group: they enter the host or other code (safepoints), or jump. */
const BARRIERS = new Set([ID.Call, ID.CallIndirect, ID.CallRef, ID.MemoryGrow, ID.MemoryCopy, ID.MemoryFill,
  ID.MemoryInit, ID.DataDrop, ID.AtomicWait, ID.Throw, ID.Rethrow]);
/** Accesses the memory pass translates. */
const ACCESSES = new Set([ID.Load, ID.Store, ID.SIMDLoad, ID.SIMDLoadStoreLane, ID.AtomicRMW, ID.AtomicCmpxchg,
  ID.AtomicWait, ID.AtomicNotify]);
/** Per expression id: 1 an access, 2 a barrier (ends every group). */
const KIND = new Uint8Array(256);
for (const id of ACCESSES) KIND[id] = 1;
for (const id of [...BARRIERS, ID.Loop, ID.Try, ID.TryTable]) if (id >= 0) KIND[id] = 2;
const NO_GROUPS: readonly CheckGroup[] = Object.freeze([]) as readonly CheckGroup[];
/** Groups open at once, at most; opening one more closes the oldest. */
const MAX_OPEN = 4;

const getId = C._BinaryenExpressionGetId!;
const getType = C._BinaryenExpressionGetType!;

/** How the analysis reads an access (the memory pass's table). */
export interface SharedAccessInfo {
  ptr(expr: ExpressionRef, id: number): ExpressionRef;
  offset(expr: ExpressionRef, id: number): number;
  bytes(expr: ExpressionRef, id: number): number;
  write(expr: ExpressionRef, id: number): boolean;
  atomic(expr: ExpressionRef, id: number): boolean;
  /** Some operand is unreachable: the access never runs. */
  dead(expr: ExpressionRef, id: number): boolean;
}

/** One group of accesses sharing a check; `local` is the cached physical base, made on first use. */
export interface CheckGroup {
  /** The base local, or -1 for constant addresses (x = 0). */
  readonly base: number;
  readonly tmin: number;
  readonly span: number;
  /** Smallest constant added in an address (before the instruction's offset); < 0 needs `x ≥ -kmin`. */
  readonly kmin: number;
  /** Some access writes: the group checks the write table. */
  readonly write: boolean;
  local: number;
}

/** An access's part in a group: the head checks, the members use `group.local + delta`. */
export interface GroupRole {
  readonly group: CheckGroup;
  readonly head: boolean;
  readonly delta: number;
}

interface Candidate {
  readonly key: number;
  readonly base: number;
  readonly ordinal: number;
  readonly accesses: { expr: ExpressionRef; t: number; k: number; end: number; write: boolean }[];
  tmin: number;
  tmaxEnd: number;
  group: CheckGroup | null;
}

/** The address of an access as `x + k` with x a local's current value (or 0), or null. */
interface BaseForm { readonly key: number; readonly base: number; readonly k: number }

/** Analyses one body at a time; see the file header. */
export class SharedChecks extends Visitor {
  readonly roles = new Map<ExpressionRef, GroupRole>();
  /** Accesses whose slow path may fault while groups are open: the groups whose `local` it zeroes. */
  private readonly zeroes = new Map<ExpressionRef, readonly Candidate[]>();
  readonly stats = { groups: 0, members: 0 };
  private open: Candidate[] = [];
  /** A copy of `open`, replaced (not changed) when `open` changes: shared by the accesses that see it. */
  private openSnapshot: readonly Candidate[] | null = null;
  private ordinal = 0;
  private setSeq = 0;
  /** Per local: the walk's set count at its last write, and that write (valid while stamp = this body's). */
  private lastSet = new Int32Array(256);
  private lastSetRef = new Float64Array(256);
  private stamp = new Int32Array(256);
  private body = 0;
  /** Walk state per access being visited (set count at its entry), and per named block / if. */
  private readonly accessSeq: number[] = [];
  private readonly scopes: { expr: ExpressionRef; ordinal: number; cond: ExpressionRef; arms: ExpressionRef[] }[] = [];
  private readonly maxSpan: number;
  private streams: ReadonlyMap<ExpressionRef, number> | null = null;

  constructor(private readonly access: SharedAccessInfo, pageSize: number) {
    super();
    // A group straddling a page end takes the fault handler on every access: keep that rare.
    this.maxSpan = Math.max(8, pageSize >>> 6);
  }

  /** Forgets the previous function and analyses its `body`. */
  analyse(body: ExpressionRef): void {
    this.roles.clear();
    this.zeroes.clear();
    this.analyseMore(body, null);
  }

  /**
   * Analyses one more body of the same function: a chunked loop's fast body, whose `streams` use
   * the chunk's cached translation (they neither fault nor join a group).
   */
  analyseMore(body: ExpressionRef, streams: ReadonlyMap<ExpressionRef, number> | null): void {
    this.streams = streams;
    this.body++;
    this.open = [];
    this.openSnapshot = null;
    this.ordinal = 0;
    this.setSeq = 0;
    this.walk(body);
    this.closeAll();
  }

  /** The cached bases to zero before `expr` may fault. */
  zeroed(expr: ExpressionRef): readonly CheckGroup[] {
    const open = this.zeroes.get(expr);
    if (open === undefined) return NO_GROUPS;
    const out: CheckGroup[] = [];
    for (const c of open) if (c.group !== null && this.roles.get(expr)?.group !== c.group) out.push(c.group);
    return out;
  }

  protected override enter(expr: ExpressionRef, id: number): void {
    this.ordinal++;
    if (KIND[id] === 1) this.accessSeq.push(this.setSeq);
    else if (id === ID.Loop || id === ID.Try || id === ID.TryTable) this.closeAll();
    else if (id === ID.If) {
      this.scopes.push({ expr, ordinal: 0, cond: C._BinaryenIfGetCondition!(expr), arms: [C._BinaryenIfGetIfTrue!(expr), C._BinaryenIfGetIfFalse!(expr)] });
    } else if (id === ID.Block && C._BinaryenBlockGetName!(expr) !== 0) {
      this.scopes.push({ expr, ordinal: this.ordinal, cond: 0, arms: [] });
    }
  }

  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    const scope = this.scopes.length > 0 ? this.scopes[this.scopes.length - 1]! : null;
    if (scope !== null) {
      if (scope.expr === expr) {
        this.scopes.pop();
        if (id === ID.Block) this.closeAfter(scope.ordinal); // a br may leave it before the head
      } else if (scope.cond === expr) {
        scope.ordinal = this.ordinal; // heads in the condition run before either arm
      } else if (scope.arms.includes(expr)) {
        this.closeAfter(scope.ordinal); // a head in an arm does not run before what follows it
      }
    }
    if (id === ID.LocalSet) {
      const index = C._BinaryenLocalSetGetIndex!(expr);
      if (index >= this.stamp.length) this.growLocals(index);
      this.stamp[index] = this.body;
      this.lastSet[index] = ++this.setSeq;
      this.lastSetRef[index] = expr;
    } else if (KIND[id] === 1) {
      this.visitAccess(expr, id, this.accessSeq.pop()!);
    } else if (KIND[id] === 2 && this.open.length > 0) {
      this.closeAll();
    }
    return expr;
  }

  private visitAccess(expr: ExpressionRef, id: number, seqAtEntry: number): void {
    const a = this.access;
    if (a.dead(expr, id) || this.streams?.has(expr)) return; // never runs, or cannot fault
    const form = a.atomic(expr, id) ? null : this.baseForm(a.ptr(expr, id), seqAtEntry);
    const offset = a.offset(expr, id) >>> 0;
    if (form === null || offset >= 0x4000_0000) {
      this.mayFault(expr);
      return;
    }
    const t = form.k + offset;
    const end = t + a.bytes(expr, id);
    const write = a.write(expr, id);
    const into = this.open.find((c) => c.key === form.key);
    if (into !== undefined && Math.max(into.tmaxEnd, end) - Math.min(into.tmin, t) <= this.maxSpan) {
      into.accesses.push({ expr, t, k: form.k, end, write });
      into.tmin = Math.min(into.tmin, t);
      into.tmaxEnd = Math.max(into.tmaxEnd, end);
      this.mayFault(expr); // only on its per-access path, when the group's check failed
      return;
    }
    this.mayFault(expr);
    if (into !== undefined) this.close(into);
    if (this.open.length >= MAX_OPEN) this.close(this.open[0]!);
    this.openSnapshot = null;
    this.open.push({ key: form.key, base: form.base, ordinal: this.ordinal, accesses: [{ expr, t, k: form.k, end, write }], tmin: t, tmaxEnd: end, group: null });
  }

  /** Records the groups open around an access that may fault. */
  private mayFault(expr: ExpressionRef): void {
    if (this.open.length === 0) return;
    this.openSnapshot ??= this.open.slice();
    this.zeroes.set(expr, this.openSnapshot);
  }

  private growLocals(index: number): void {
    const n = Math.max(index + 1, this.stamp.length * 2);
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => { const b = make(n); b.set(a); return b; };
    this.stamp = grow(this.stamp, (k) => new Int32Array(k));
    this.lastSet = grow(this.lastSet, (k) => new Int32Array(k));
    this.lastSetRef = grow(this.lastSetRef, (k) => new Float64Array(k));
  }

  /** The set count at the last write of `index` in this body (0: none). */
  private setOf(index: number): number {
    return index < this.stamp.length && this.stamp[index] === this.body ? this.lastSet[index]! : 0;
  }

  /**
   * `x + k` for an i32 address `local.get $x` (not written since the access began), `local.tee
   * $x` (the last write of $x), `i32.const`, or one of those ± a constant.
   */
  private baseForm(ptr: ExpressionRef, seqAtEntry: number): BaseForm | null {
    if (getType(ptr) !== binaryen.i32) return null;
    let k = 0;
    let x = ptr;
    if (getId(ptr) === ID.Binary) {
      const op = C._BinaryenBinaryGetOp!(ptr);
      const l = C._BinaryenBinaryGetLeft!(ptr);
      const r = C._BinaryenBinaryGetRight!(ptr);
      if (op === OP.add && getId(r) === ID.Const) { x = l; k = C._BinaryenConstGetValueI32!(r); }
      else if (op === OP.add && getId(l) === ID.Const) { x = r; k = C._BinaryenConstGetValueI32!(l); }
      else if (op === OP.sub && getId(r) === ID.Const) { x = l; k = -C._BinaryenConstGetValueI32!(r); }
      else return null;
      if (k < -0x4000_0000 || k >= 0x4000_0000) return null;
    }
    const xid = getId(x);
    if (xid === ID.Const) {
      if (x !== ptr) return null; // const + const: left to binaryen
      const v = C._BinaryenConstGetValueI32!(x);
      return v >= 0 && v < 0x4000_0000 ? { key: -1, base: -1, k: v } : null;
    }
    if (xid === ID.LocalGet) {
      const index = C._BinaryenLocalGetGetIndex!(x);
      const seq = this.setOf(index);
      return seq <= seqAtEntry ? { key: index * 0x1_0000_0000 + seq, base: index, k } : null;
    }
    if (xid === ID.LocalSet && getType(x) === binaryen.i32) { // a tee
      const index = C._BinaryenLocalSetGetIndex!(x);
      const seq = this.setOf(index);
      return seq > 0 && this.lastSetRef[index] === x ? { key: index * 0x1_0000_0000 + seq, base: index, k } : null;
    }
    return null;
  }

  private closeAfter(ordinal: number): void {
    for (const c of this.open.slice()) if (c.ordinal > ordinal) this.close(c);
  }

  private closeAll(): void {
    for (const c of this.open.slice()) this.close(c);
  }

  /** Ends a candidate; with two accesses or more it becomes a group. */
  private close(c: Candidate): void {
    this.open.splice(this.open.indexOf(c), 1);
    this.openSnapshot = null;
    if (c.accesses.length < 2) return;
    const span = c.tmaxEnd - c.tmin;
    let kmin = 0;
    for (const x of c.accesses) kmin = Math.min(kmin, x.k);
    if (c.base < 0 && ((c.tmin & 0xffff) + span > 0x10000 || kmin < 0)) return; // constant: never in one page
    const group: CheckGroup = { base: c.base, tmin: c.tmin, span, kmin, write: c.accesses.some((x) => x.write), local: -1 };
    c.group = group;
    this.stats.groups++;
    c.accesses.forEach((x, i) => {
      this.roles.set(x.expr, { group, head: i === 0, delta: x.t - c.tmin });
      if (i > 0) this.stats.members++;
    });
  }
}
