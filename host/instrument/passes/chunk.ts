/**
 * @fileoverview Loop chunking (optimization `chunk`): an innermost loop whose accesses walk affine
 * address streams is split into a check-free fast loop that translates each stream once per page,
 * and the ordinary instrumented body for the iterations in between. Runs inside the memory pass:
 * `tryChunk(loop)` rewrites the loop before the pass walks into it, and tells the pass which
 * accesses of the fast body use a cached translation (`streams`) and which slow paths must drop
 * the cache (`zeroOnSlow`).
 *
 * Over 400 lines because the loop analysis (affine streams, bounds) and the rewrite it drives are
 * one transformation; neither is used alone.
 *
 * A stream is an access whose address is `c + Σ coef·inv + k·iv` (u32), where the `inv` locals are
 * not written in the loop and `iv` is written once, `iv = iv + step`. Before and after:
 *
 *   (loop $L (if (i32.lt_u (local.get $p) (local.get $end)) (then
 *     (local.set $s (i64.add (local.get $s) (i64.load (local.get $p))))
 *     (local.set $p (i32.add (local.get $p) (i32.const 8)))
 *     (br $L))))
 *   ⇒
 *   (loop $L
 *     (block $done
 *       (block $slow
 *         (loop $refill                                   ;; once per chunk, outside the hot loop:
 *           (local.set $n (i32.const 0x7fffffff))
 *           (local.set $ea (local.get $p))                                ;; stream's address now
 *           (local.set $d (i32.load offset=RT (ea >>> 12 << 2)))           ;; its delta
 *           (br_if $slow (i32.eqz (local.get $d)))                         ;; unmapped: slow iteration
 *           ;; n = min(n, iterations left in the page) = (4096 - 8 - (ea & 4095)) / 8 + 1
 *           (br_if $slow (i32.eqz (local.get $n)))
 *           (block $end
 *             (loop $fast                                                 ;; the hot loop
 *               (br_if $end (i32.eqz (local.get $n)))                     ;; chunk used up: refill
 *               (local.set $n (i32.sub (local.get $n) (i32.const 1)))
 *               (if (i32.lt_u (local.get $p) (local.get $end)) (then      ;; the body, check-free:
 *                 (local.set $s (i64.add (local.get $s) (i64.load (i32.add (local.get $p) (local.get $d)))))
 *                 (local.set $p (i32.add (local.get $p) (i32.const 8)))
 *                 (br $fast))))                                           ;; br $L → br $fast
 *             (br_if $done (i32.const 1)))                                ;; the loop ended
 *           (br $refill)))
 *       BODY))                      ;; one iteration, instrumented as usual; its br $L re-enters
 *
 * Why it is exact: the iv moves by `step` at most once per iteration, so `n` iterations from the
 * refill touch `a0 + m·stride` (m ≤ n, or ≤ n-1 when the access is known to run before or after the
 * increment) inside the page of `a0`; `n` is computed so that none of them leaves the page or
 * straddles its end. A refill never traps or faults: an unmapped page, a straddle or a wrapped
 * address sends this one iteration to BODY, which faults (or traps) exactly as before.
 *
 * Eviction safety (docs/architecture.md): a cached delta is used only until the next safepoint.
 * Accesses after the first possible safepoint of the body (a call, a host operation, a checked
 * access that may fault) are never streams, and every such safepoint sets `n = 0`, so the next
 * iteration translates again; BODY runs with `n = 0` too. The guest acknowledges evictions only at
 * safepoints, so between two of them no frame it caches can be written back or reused.
 *
 * Outer loops (optimization `outer`): a loop around inner loops is versioned the same way when its
 * own accesses before the first possible safepoint are streams of its iv (graph's `offsets[u]`,
 * `offsets[u+1]`, `rank[u]` before the edge loop). Locals written inside an inner loop are not
 * affine, accesses inside one are never streams of the outer loop and count as possible faults, so
 * accesses after the first inner loop with an access stay checked. A local written several times
 * per iteration (`$k = u << 2; ... $k = offsets[...]`) has the form of its last write when that
 * write dominates the read. Faults inside the fast copy zero the outer counter wherever they are,
 * in inner loops and in the chunked copies the pass makes of those later: the memory pass asks
 * `dropOnFault` for every check, and `enterLoop`/`leaveLoop` track the outer fast loops it is in.
 * An outer loop whose inner loops call out (a call, memory.grow, a host operation) is not
 * versioned: every iteration would drop the chunk.
 *
 * Loop predication (optimization `predicate`): when the loop is `(if (i32.lt_u iv B) (then ...
 * (br $L)))` with B invariant and iv advanced once per iteration (see `exitTest`), the fast loop
 * drops the countdown and tests `iv <u limit` instead, `limit = min(B, iv + n·step)` computed at
 * the refill (`limit`); a safepoint sets limit = 0, like n = 0. When the fast test fails, the
 * original one decides: the loop ended, or the chunk did and the refill runs.
 */
import type { Layout } from '../../layout.js';
import { binaryen, C, type ExpressionRef, type Module } from '../binaryen.js';
import { Visitor } from '../visitor.js';

const b = binaryen as unknown as Record<string, number>;
const ID = {
  Block: b.BlockId!, If: b.IfId!, Loop: b.LoopId!, Break: b.BreakId!, Switch: b.SwitchId!, Try: b.TryId!,
  Call: b.CallId!, GlobalSet: b.GlobalSetId!, CallIndirect: b.CallIndirectId!, CallRef: b.CallRefId!, Const: b.ConstId!,
  LocalGet: b.LocalGetId!, LocalSet: b.LocalSetId!, Binary: b.BinaryId!, Load: b.LoadId!, Store: b.StoreId!,
  SIMDLoad: b.SIMDLoadId!, SIMDLoadStoreLane: b.SIMDLoadStoreLaneId!, AtomicRMW: b.AtomicRMWId!,
  AtomicCmpxchg: b.AtomicCmpxchgId!, AtomicWait: b.AtomicWaitId!, AtomicNotify: b.AtomicNotifyId!,
  MemoryGrow: b.MemoryGrowId!, MemoryCopy: b.MemoryCopyId!, MemoryFill: b.MemoryFillId!,
  MemoryInit: b.MemoryInitId!, DataDrop: b.DataDropId!, Pop: b.PopId!, Throw: b.ThrowId!, Rethrow: b.RethrowId!,
};
const OP = { add: b.AddInt32!, sub: b.SubInt32!, mul: b.MulInt32!, shl: b.ShlInt32!, ltU: b.LtUInt32!, gtU: b.GtUInt32! };

/** Expressions after which a cached translation may be stale: they enter the host or other code. */
const SAFEPOINTS = new Set([ID.Call, ID.CallIndirect, ID.CallRef, ID.MemoryGrow, ID.MemoryCopy, ID.MemoryFill,
  ID.MemoryInit, ID.DataDrop, ID.AtomicWait, ID.Throw, ID.Rethrow]);
/** Accesses the memory pass translates; each one not a stream is a checked access (may fault). */
const ACCESSES = new Set([ID.Load, ID.Store, ID.SIMDLoad, ID.SIMDLoadStoreLane, ID.AtomicRMW, ID.AtomicCmpxchg,
  ID.AtomicWait, ID.AtomicNotify]);

/**
 * Loop bodies bigger than this are left alone: duplicating them costs instrumentation time more
 * than it saves at run time. No loop of the workloads comes near (their largest chunked body is
 * under 200 nodes); on Yosys, 400 keeps 46,712 of the 47,928 loops 2000 versioned and takes
 * instrumentation from 34.1–35.0 to 32.6–32.9 s CPU (pre-issue-10 pass: 22.8–23.5 s, interleaved,
 * load 4–5).
 */
const MAX_BODY_NODES = 400;
/** "No page limit" for a stream that does not move (step 0). */
const UNBOUNDED = 0x3fffffff;

/** binaryen.js's label getters/setters (not in its typings). */
const Names = binaryen as unknown as {
  Loop: { getName(e: ExpressionRef): string | null; setName(e: ExpressionRef, name: string): void };
  Block: { getName(e: ExpressionRef): string | null; setName(e: ExpressionRef, name: string): void };
  Break: { getName(e: ExpressionRef): string; setName(e: ExpressionRef, name: string): void };
  Switch: {
    getNameAt(e: ExpressionRef, i: number): string; setNameAt(e: ExpressionRef, i: number, name: string): void;
    getDefaultName(e: ExpressionRef): string; setDefaultName(e: ExpressionRef, name: string): void;
  };
};

const getId = C._BinaryenExpressionGetId!;
const getType = C._BinaryenExpressionGetType!;
const localIndex = (e: ExpressionRef) => C._BinaryenLocalSetGetIndex!(e);

/**
 * `c + Σ coef·local + k·iv_top + phase·ku·step(iv)` (u32), where iv_top is the iv at the top of the
 * iteration and phase ∈ {0, 1} is unknown (the access may run before or after the increment).
 */
interface Affine {
  readonly c: number;
  /** [local, coef] pairs, sorted by local. */
  readonly terms: readonly (readonly [number, number])[];
  readonly iv: number;
  readonly k: number;
  readonly ku: number;
}

const CONST = (c: number): Affine => ({ c: c | 0, terms: [], iv: -1, k: 0, ku: 0 });

function add(a: Affine, x: Affine, sign: 1 | -1): Affine | null {
  if (a.iv >= 0 && x.iv >= 0 && a.iv !== x.iv) return null;
  const terms = new Map<number, number>(a.terms.map(([l, f]) => [l, f]));
  for (const [l, f] of x.terms) terms.set(l, ((terms.get(l) ?? 0) + sign * f) | 0);
  return {
    c: (a.c + sign * x.c) | 0,
    terms: [...terms].filter(([, f]) => f !== 0).sort((p, q) => p[0] - q[0]),
    iv: a.iv >= 0 ? a.iv : x.iv,
    k: (a.k + sign * x.k) | 0,
    ku: (a.ku + sign * x.ku) | 0,
  };
}

function scale(a: Affine, f: number): Affine {
  return {
    c: Math.imul(a.c, f), terms: a.terms.map(([l, g]) => [l, Math.imul(g, f)] as const).filter(([, g]) => g !== 0),
    iv: a.iv, k: Math.imul(a.k, f), ku: Math.imul(a.ku, f),
  };
}

/** Pass A over a loop body: sets per local, increments, size; throws Reject when not a candidate. */
class Reject extends Error {}

class BodyScan extends Visitor {
  nodes = 0;
  /** Loops nested in the body (only scanned when `nested`), and whether a call-like safepoint sits in one. */
  innerLoops = 0;
  innerSafepoint = false;
  private depth = 0;
  constructor(private readonly nested: boolean) {
    super();
  }
  readonly sets = new Map<number, number>();
  /** iv candidates: local → step, for `local.set $x (i32.add (local.get $x) (i32.const c))`. */
  readonly steps = new Map<number, number>();
  /**
   * ivs advanced through a copy, `y = x + c; ...; x = y` (LLVM's and AssemblyScript's `p = next`):
   * x → c. Pass B checks that y's write surely ran before x's with x's old value.
   */
  readonly copySteps = new Map<number, number>();
  private readonly lastSet = new Map<number, ExpressionRef>();
  /** Branches per label (br, br_if, br_table targets), for the exit test of `predicate`. */
  readonly branches = new Map<string, number>();
  accesses = 0;
  protected override enter(expr: ExpressionRef, id: number): void {
    if (++this.nodes > MAX_BODY_NODES || id === ID.Try || id === ID.Pop) throw new Reject();
    if (id === ID.Loop) {
      if (!this.nested) throw new Reject();
      this.innerLoops++;
      this.depth++;
    }
    if (ACCESSES.has(id)) this.accesses++;
    if (id === ID.Break) this.branch(Names.Break.getName(expr));
    else if (id === ID.Switch) {
      for (let i = 0, n = C._BinaryenSwitchGetNumNames!(expr); i < n; i++) this.branch(Names.Switch.getNameAt(expr, i));
      this.branch(Names.Switch.getDefaultName(expr));
    }
    if (this.depth > 0) {
      // Inside an inner loop: a local written there changes any number of times per iteration.
      if (SAFEPOINTS.has(id)) this.innerSafepoint = true;
      if (id === ID.LocalSet) {
        const index = localIndex(expr);
        this.sets.set(index, (this.sets.get(index) ?? 0) + 2);
        this.lastSet.set(index, expr);
      }
    } else if (id === ID.LocalSet) {
      const index = localIndex(expr);
      this.sets.set(index, (this.sets.get(index) ?? 0) + 1);
      this.lastSet.set(index, expr);
      const step = incrementStep(expr, index);
      if (step !== null) this.steps.set(index, step);
    }
  }

  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    if (id === ID.Loop) this.depth--;
    return expr;
  }

  private branch(name: string): void {
    this.branches.set(name, (this.branches.get(name) ?? 0) + 1);
  }

  /** Finds the copy-advanced ivs once the whole body is scanned. */
  findCopies(): void {
    for (const [x, set] of this.lastSet) {
      const v = C._BinaryenLocalSetGetValue!(set);
      if (this.sets.get(x) !== 1 || getId(v) !== ID.LocalGet || getType(v) !== binaryen.i32) continue;
      const y = C._BinaryenLocalGetGetIndex!(v);
      const ySet = this.lastSet.get(y);
      if (y === x || this.sets.get(y) !== 1 || !ySet || this.steps.has(y)) continue;
      const step = incrementStep(ySet, x);
      if (step !== null) {
        this.steps.set(x, step);
        this.copySteps.set(x, step);
      }
    }
  }
}

/** The step of `x = x + c` / `x = c + x` / `x = x - c` (i32), or null. */
function incrementStep(set: ExpressionRef, index: number): number | null {
  // `set` writes some local; its value must be `index ± c`.
  const v = C._BinaryenLocalSetGetValue!(set);
  if (getId(v) !== ID.Binary || getType(v) !== binaryen.i32) return null;
  const op = C._BinaryenBinaryGetOp!(v);
  const l = C._BinaryenBinaryGetLeft!(v);
  const r = C._BinaryenBinaryGetRight!(v);
  const isIv = (e: ExpressionRef) => getId(e) === ID.LocalGet && C._BinaryenLocalGetGetIndex!(e) === index;
  const konst = (e: ExpressionRef) => (getId(e) === ID.Const ? C._BinaryenConstGetValueI32!(e) : null);
  if (op === OP.add && isIv(l) && konst(r) !== null) return konst(r)!;
  if (op === OP.add && isIv(r) && konst(l) !== null) return konst(l)!;
  if (op === OP.sub && isIv(l) && konst(r) !== null) return -konst(r)! | 0;
  return null;
}

/** A write of a local seen in pass B: where it happened (walk position and ancestors). */
interface Def {
  readonly expr: ExpressionRef;
  readonly seq: number;
  readonly path: readonly ExpressionRef[];
  readonly form: Affine | null;
}

/** One stream access found by pass B, by its position in walk order. */
interface StreamSite {
  readonly ordinal: number;
  readonly form: Affine;
  readonly offset: number;
  readonly bytes: number;
  readonly write: boolean;
  readonly step: number;
  /** The access itself, and for a load the nearest store it is an operand of (0: none). */
  readonly expr: ExpressionRef;
  readonly store: ExpressionRef;
}

/** An access or a call of the body, in evaluation order, for the classification after pass B. */
interface Event {
  readonly ordinal: number;
  readonly seq: number;
  /** A call-like safepoint (not an access). */
  readonly call: boolean;
  /** An access that may be a stream (affine address), or null. */
  readonly site: StreamSite | null;
  /** An atomic access: never a stream, never outlined. */
  readonly atomic: boolean;
}

/** Which optimizations the chunker applies. */
export interface ChunkOptions {
  readonly chunk: boolean;
  readonly outline: boolean;
  /** Outer-loop chunking: loops around inner loops (see the file header). */
  readonly outer: boolean;
  /** Loop predication: the page bound folded into the loop's exit test (see `exitTest`). */
  readonly predicate: boolean;
}

/**
 * Pass B: affine forms in evaluation order, accesses, calls and side effects; then `classify`
 * decides which accesses are streams, which checks branch out of the loop, which stay inline.
 */
class StreamAnalysis extends Visitor {
  private seq = 0;
  private ordinal = 0;
  private readonly path: ExpressionRef[] = [];
  private readonly ordinals: number[] = [];
  private readonly forms = new Map<ExpressionRef, Affine>();
  private readonly defs = new Map<number, Def>();
  private readonly events: Event[] = [];
  /** Walk positions of side effects that make an iteration not re-runnable from its top. */
  private firstEffect = Infinity;
  /** Single-set locals read where their write may not have run (their value crosses iterations). */
  private readonly carried = new Set<number>();
  private readonly setSeqs: [number, number][] = [];
  readonly streams: StreamSite[] = [];
  /** Ordinals of checked accesses whose slow path calls the fault handler inline (safepoints). */
  readonly checked: number[] = [];
  /** Ordinals of checked accesses whose slow path re-runs the iteration on the ordinary body. */
  readonly outlined: number[] = [];
  /** Ordinals of calls (safepoints). */
  readonly calls: number[] = [];

  constructor(private readonly scan: BodyScan, private readonly access: AccessInfo, private readonly pageSize: number) {
    super();
  }

  /** Inner loops around the current position (outer-loop chunking). */
  private depth = 0;
  /** The last write in walk order of each local written more than once, outside inner loops. */
  private readonly lastDefs = new Map<number, Def>();

  protected override enter(expr: ExpressionRef, id: number): void {
    this.path.push(expr);
    this.ordinals.push(this.ordinal++);
    if (id === ID.Loop) this.depth++;
  }

  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    const seq = ++this.seq;
    const ordinal = this.ordinals.pop()!;
    if (id === ID.Loop) this.depth--;
    const form = this.formOf(expr, id, seq);
    if (form) this.forms.set(expr, form);
    if (id === ID.LocalSet) {
      const index = localIndex(expr);
      this.setSeqs.push([index, seq]);
      const copyStep = this.scan.copySteps.get(index);
      if (copyStep !== undefined) {
        // x = y must store x's top-of-iteration value + step, or x is no iv after all.
        const f = this.forms.get(C._BinaryenLocalSetGetValue!(expr));
        if (!f || f.iv !== index || f.k !== 1 || f.ku !== 0 || f.c !== copyStep || f.terms.length !== 0) throw new Reject();
      }
      if (this.scan.sets.get(index) === 1) {
        const value = this.forms.get(C._BinaryenLocalSetGetValue!(expr)) ?? null;
        this.defs.set(index, { expr, seq, path: this.path.slice(0, -1), form: this.scan.steps.has(index) ? null : value });
      } else if (this.scan.innerLoops > 0) {
        // Outer loops only (innermost ones keep their analysis): a def inside an inner loop has no form.
        const value = this.depth === 0 ? this.forms.get(C._BinaryenLocalSetGetValue!(expr)) ?? null : null;
        this.lastDefs.set(index, { expr, seq, path: this.path.slice(0, -1), form: value });
      }
    } else if (id === ID.LocalGet) {
      const index = C._BinaryenLocalGetGetIndex!(expr);
      const def = this.defs.get(index);
      if (this.scan.sets.get(index) === 1 && !(def && this.dominates(def))) this.carried.add(index);
    } else if (id === ID.GlobalSet) {
      this.effect(seq);
    }
    if (ACCESSES.has(id)) {
      const atomic = this.access.atomic(expr, id);
      // An access inside an inner loop runs any number of times per iteration: never a stream.
      const site = atomic || this.depth > 0 ? null : this.streamSite(expr, id, ordinal);
      this.events.push({ ordinal, seq, call: false, site, atomic });
      if (atomic || this.access.write(expr, id)) this.effect(seq);
    } else if (SAFEPOINTS.has(id)) {
      const call = id !== ID.Throw && id !== ID.Rethrow;
      this.events.push({ ordinal: call ? ordinal : -1, seq, call, site: null, atomic: false });
      this.effect(seq);
    }
    this.path.pop();
    return expr;
  }

  private effect(seq: number): void {
    if (seq < this.firstEffect) this.firstEffect = seq;
  }

  /**
   * Classifies the accesses, in evaluation order. A stream needs an affine address and no
   * safepoint before it in the iteration. A check is outlined when nothing before it in the
   * iteration has a side effect (a store, a call, a global write, or a write of a local whose
   * value another part of the iteration, or the next one, reads): re-running the iteration from
   * its top on the ordinary body is then the same as continuing it. Other checks fault inline
   * and are safepoints.
   */
  classify(options: ChunkOptions): void {
    let firstEffect = this.firstEffect;
    for (const [index, seq] of this.setSeqs) {
      if ((this.scan.sets.get(index)! > 1 || this.carried.has(index)) && seq < firstEffect) firstEffect = seq;
    }
    let safepoint = false;
    for (const e of this.events) {
      if (e.call) {
        this.calls.push(e.ordinal);
        safepoint = true;
      } else if (e.site === null && !e.atomic && e.ordinal < 0) {
        safepoint = true; // throw / rethrow
      } else if (options.chunk && !safepoint && e.site) {
        this.streams.push(e.site);
      } else if (options.outline && !e.atomic && e.seq <= firstEffect) {
        this.outlined.push(e.ordinal);
      } else {
        this.checked.push(e.ordinal);
        safepoint = true;
      }
    }
  }

  /** The access as a stream candidate: an affine i32 address with a step below the page size. */
  private streamSite(expr: ExpressionRef, id: number, ordinal: number): StreamSite | null {
    const a = this.access;
    const ptr = a.ptr(expr, id);
    const bytes = a.bytes(expr, id);
    const form = ptr === 0 ? undefined : this.forms.get(ptr);
    if (!form || getType(ptr) !== binaryen.i32 || (form.ku !== 0 && form.ku !== form.k)) return null;
    const step = form.iv >= 0 ? Math.imul(form.k, this.scan.steps.get(form.iv)!) : 0;
    if (Math.abs(step) >= this.pageSize || bytes > this.pageSize) return null;
    const write = a.write(expr, id);
    let store = 0;
    for (let i = this.path.length - 2; i >= 0 && !write && store === 0; i--) if (getId(this.path[i]!) === ID.Store) store = this.path[i]!;
    return { ordinal, form, offset: a.offset(expr, id) >>> 0, bytes, write, step, expr, store };
  }

  private formOf(expr: ExpressionRef, id: number, seq: number): Affine | null {
    if (getType(expr) !== binaryen.i32) return null;
    if (id === ID.Const) return CONST(C._BinaryenConstGetValueI32!(expr));
    if (id === ID.LocalGet) return this.localForm(C._BinaryenLocalGetGetIndex!(expr), seq);
    if (id === ID.LocalSet) return this.forms.get(C._BinaryenLocalSetGetValue!(expr)) ?? null; // a tee
    if (id !== ID.Binary) return null;
    const op = C._BinaryenBinaryGetOp!(expr);
    const l = this.forms.get(C._BinaryenBinaryGetLeft!(expr));
    const r = this.forms.get(C._BinaryenBinaryGetRight!(expr));
    if (!l || !r) return null;
    if (op === OP.add) return add(l, r, 1);
    if (op === OP.sub) return add(l, r, -1);
    const isConst = (f: Affine) => f.terms.length === 0 && f.iv < 0;
    if (op === OP.mul) return isConst(r) ? scale(l, r.c) : isConst(l) ? scale(r, l.c) : null;
    if (op === OP.shl && isConst(r)) return scale(l, 2 ** (r.c & 31) | 0);
    return null;
  }

  /** The form of `local.get index` at walk position `seq`. */
  private localForm(index: number, seq: number): Affine | null {
    const sets = this.scan.sets.get(index) ?? 0;
    if (sets === 0) return { c: 0, terms: [[index, 1]], iv: -1, k: 0, ku: 0 }; // loop-invariant
    if (sets !== 1) return this.reachingForm(index, seq);
    const def = this.defs.get(index);
    const step = this.scan.steps.get(index);
    if (step !== undefined) {
      // The iv: its top-of-iteration value before its increment; after it, + step when the
      // increment surely ran on the way here, else "either".
      if (!def) return { c: 0, terms: [], iv: index, k: 1, ku: 0 };
      return this.dominates(def) ? { c: step, terms: [], iv: index, k: 1, ku: 0 } : { c: 0, terms: [], iv: index, k: 1, ku: 1 };
    }
    // A local written once in the loop: its value is this iteration's only if its write surely ran.
    if (!def || !def.form || def.seq >= seq || !this.dominates(def)) return null;
    return def.form;
  }

  /**
   * The form of a local written several times (outer loops only), at a position outside inner
   * loops: the value of its last write in walk order, when that write surely ran before here.
   * No other write can come in between: writes later in walk order run before this position only
   * through a loop's back edge, and the only loop around the position is the chunked one, whose
   * next iteration runs the dominating write again first.
   */
  private reachingForm(index: number, seq: number): Affine | null {
    if (this.depth > 0) return null;
    const def = this.lastDefs.get(index);
    if (!def || !def.form || def.seq >= seq || !this.dominates(def)) return null;
    return def.form;
  }

  /**
   * Did `def` surely run before the current position in this iteration? Yes when, below the
   * lowest common ancestor, the path down to `def` goes only through expressions that evaluate
   * every child in order (not an `if` arm, not a named block that a `br` may leave early).
   */
  private dominates(def: Def): boolean {
    const here = this.path; // ends with the current expression
    let p = 0;
    while (p < def.path.length && p < here.length - 1 && def.path[p] === here[p]) p++;
    if (p === 0) return false;
    // From the lowest common ancestor down to the write itself.
    const chain = [...def.path.slice(p - 1), def.expr];
    for (let i = 0; i < chain.length - 1; i++) {
      const node = chain[i]!;
      const id = getId(node);
      if (id === ID.If) {
        if (C._BinaryenIfGetCondition!(node) !== chain[i + 1]) return false;
      } else if (id === ID.Block) {
        if (i > 0 && C._BinaryenBlockGetName!(node) !== 0) return false;
      } else if (id === ID.Try || id === ID.Loop) {
        return false;
      }
    }
    return true;
  }

}

/** How the chunker reads an access (shared with the memory pass's table). */
export interface AccessInfo {
  ptr(expr: ExpressionRef, id: number): ExpressionRef;
  offset(expr: ExpressionRef, id: number): number;
  bytes(expr: ExpressionRef, id: number): number;
  write(expr: ExpressionRef, id: number): boolean;
  atomic(expr: ExpressionRef, id: number): boolean;
}

/** A loop `(loop $L (if (i32.lt_u iv B) (then ... iv = iv + step ... (br $L))))`, B invariant. */
interface ExitTest {
  readonly iv: number;
  readonly step: number;
  readonly bound: (m: Module) => ExpressionRef;
  /** Where the `if` sits in the body: the body itself, or the only child of an unnamed block. */
  readonly nested: boolean;
}

/**
 * The loop's exit test when it can carry the page bound (optimization `predicate`): the body is
 * one `if` with no else whose condition is `iv <u B` (or `B >u iv`), B a constant or a local not
 * written in the loop, iv advanced by a positive step once per iteration: its increment is a
 * direct child of the `then` block, which ends in the loop's only `br $L` and is no branch target.
 * So every iteration that continues runs the increment once, and the loop ends only where the
 * test fails (or by leaving it otherwise, as the original does).
 */
function exitTest(body: ExpressionRef, loopName: string, scan: BodyScan): ExitTest | null {
  let ifx = body;
  const nested = getId(body) === ID.Block && C._BinaryenBlockGetName!(body) === 0 && C._BinaryenBlockGetNumChildren!(body) === 1;
  if (nested) ifx = C._BinaryenBlockGetChildAt!(body, 0);
  if (getId(ifx) !== ID.If || C._BinaryenIfGetIfFalse!(ifx) !== 0) return null;
  const then = C._BinaryenIfGetIfTrue!(ifx);
  if (getId(then) !== ID.Block || C._BinaryenBlockGetName!(then) !== 0) return null;
  const count = C._BinaryenBlockGetNumChildren!(then);
  const last = count > 0 ? C._BinaryenBlockGetChildAt!(then, count - 1) : 0;
  if (last === 0 || getId(last) !== ID.Break || Names.Break.getName(last) !== loopName
    || C._BinaryenBreakGetCondition!(last) !== 0 || C._BinaryenBreakGetValue!(last) !== 0) return null;
  if (scan.branches.get(loopName) !== 1) return null;
  const cond = C._BinaryenIfGetCondition!(ifx);
  if (getId(cond) !== ID.Binary) return null;
  const op = C._BinaryenBinaryGetOp!(cond);
  let ivGet: ExpressionRef;
  let boundExpr: ExpressionRef;
  if (op === OP.ltU) [ivGet, boundExpr] = [C._BinaryenBinaryGetLeft!(cond), C._BinaryenBinaryGetRight!(cond)];
  else if (op === OP.gtU) [boundExpr, ivGet] = [C._BinaryenBinaryGetLeft!(cond), C._BinaryenBinaryGetRight!(cond)];
  else return null;
  if (getId(ivGet) !== ID.LocalGet) return null;
  const iv = C._BinaryenLocalGetGetIndex!(ivGet);
  const step = scan.steps.get(iv);
  if (step === undefined || step <= 0 || scan.sets.get(iv) !== 1 || scan.copySteps.has(iv)) return null;
  let incremented = false;
  for (let i = 0; i < count - 1; i++) {
    const c = C._BinaryenBlockGetChildAt!(then, i);
    if (getId(c) === ID.LocalSet && localIndex(c) === iv && getType(c) === binaryen.none) incremented = true;
  }
  if (!incremented) return null;
  let bound: ExitTest['bound'];
  if (getId(boundExpr) === ID.Const) {
    const v = C._BinaryenConstGetValueI32!(boundExpr);
    bound = (m) => m.i32.const(v);
  } else if (getId(boundExpr) === ID.LocalGet && (scan.sets.get(C._BinaryenLocalGetGetIndex!(boundExpr)) ?? 0) === 0) {
    const local = C._BinaryenLocalGetGetIndex!(boundExpr);
    bound = (m) => m.local.get(local, binaryen.i32);
  } else {
    return null;
  }
  return { iv, step, bound, nested };
}

/**
 * Pass C over the copy of the body: maps ordinals to expressions, gives the copy's labels fresh
 * names (binaryen requires labels unique per function), retargets `br $L` to the fast loop, and
 * drops the cache before calls.
 */
class FastBodyMarker extends Visitor {
  private ordinal = 0;
  private readonly ordinals: number[] = [];
  private readonly renames = new Map<string, string>();
  readonly refs = new Map<number, ExpressionRef>();
  constructor(
    private readonly module: Module,
    private readonly wanted: ReadonlySet<number>,
    private readonly calls: ReadonlySet<number>,
    from: string,
    to: string,
    private readonly prefix: string,
    private readonly counter: number,
  ) {
    super();
    this.renames.set(from, to);
  }
  protected override enter(expr: ExpressionRef, id: number): void {
    this.ordinals.push(this.ordinal++);
    if (id === ID.Block && C._BinaryenBlockGetName!(expr) !== 0) {
      const fresh = `${this.prefix}.${this.renames.size}`;
      this.renames.set(Names.Block.getName(expr)!, fresh);
      Names.Block.setName(expr, fresh);
    } else if (id === ID.Loop && C._BinaryenLoopGetName!(expr) !== 0) { // an inner loop (outer chunking)
      const fresh = `${this.prefix}.${this.renames.size}`;
      this.renames.set(Names.Loop.getName(expr)!, fresh);
      Names.Loop.setName(expr, fresh);
    }
  }
  private renamed(name: string): string {
    return this.renames.get(name) ?? name;
  }
  protected override leave(expr: ExpressionRef, id: number): ExpressionRef {
    const ordinal = this.ordinals.pop()!;
    if (this.wanted.has(ordinal)) this.refs.set(ordinal, expr);
    if (id === ID.Break) {
      const name = Names.Break.getName(expr);
      if (this.renames.has(name)) Names.Break.setName(expr, this.renamed(name));
    } else if (id === ID.Switch) {
      const n = C._BinaryenSwitchGetNumNames!(expr);
      for (let i = 0; i < n; i++) {
        const name = Names.Switch.getNameAt(expr, i);
        if (this.renames.has(name)) Names.Switch.setNameAt(expr, i, this.renamed(name));
      }
      const def = Names.Switch.getDefaultName(expr);
      if (this.renames.has(def)) Names.Switch.setDefaultName(expr, this.renamed(def));
    }
    if (this.calls.has(ordinal)) {
      // n = 0 before the call: the rest of this iteration has no streams, the next one translates again.
      const m = this.module;
      return m.block(null, [m.local.set(this.counter, m.i32.const(0)), expr], getType(expr));
    }
    return expr;
  }
}

const NONE: readonly number[] = [];

export interface ChunkStats {
  loops: number;
  /** Of `loops`, those around inner loops (outer-loop chunking), and those predicated. */
  outerLoops: number;
  predicated: number;
  streams: number;
  outlined: number;
}

/** Chunks the innermost loops of one function at a time; see the file header. */
export class LoopChunker {
  /** Fast-body accesses that use a cached delta: access → delta local. */
  readonly streams = new Map<ExpressionRef, number>();
  /**
   * Of those, the ones whose address is `X + Y` with X a local the loop never writes: access →
   * a local `B = X + delta` set at the refill, and which side of the add X is; the access then
   * reads `Y + B`, one add instead of two per iteration (V8 does not reassociate them).
   */
  readonly bases = new Map<ExpressionRef, { readonly local: number; readonly side: 0 | 1 }>();
  /** Fast-body checked accesses whose slow path must drop the cache: access → counter local. */
  readonly zeroOnSlow = new Map<ExpressionRef, number>();
  /** Fast-body checked accesses whose slow path branches out: access → label of the slow body. */
  readonly outlined = new Map<ExpressionRef, string>();
  /** Page-table loads of the refill code: physical already, the memory pass leaves them alone. */
  readonly raw = new Set<ExpressionRef>();
  readonly stats: ChunkStats = { loops: 0, outerLoops: 0, predicated: 0, streams: 0, outlined: 0 };
  /** The fast body of the loop `tryChunk` last rewrote (for the shared-checks analysis). */
  fastBody: ExpressionRef = 0;
  private readonly created = new Set<ExpressionRef>();
  /** Fast loops of outer chunks → their counter; `active`: the counters of those the pass is inside. */
  private readonly outerFast = new Map<ExpressionRef, number>();
  private readonly active: number[] = [];
  private labels = 0;

  constructor(
    private readonly module: Module,
    private readonly layout: Layout,
    private readonly memory: string,
    private readonly access: AccessInfo,
    private readonly options: ChunkOptions,
  ) {}

  /** Forgets the previous function's expressions. */
  reset(): void {
    this.outlined.clear();
    this.streams.clear();
    this.bases.clear();
    this.zeroOnSlow.clear();
    this.created.clear();
    this.raw.clear();
    this.outerFast.clear();
    this.active.length = 0;
  }

  /**
   * Rewrites `loop` in place if it is an innermost loop with at least one stream; returns whether
   * it did. `addLocal` adds a local to the function; `ea` is the pass's scratch address local.
   */
  tryChunk(loop: ExpressionRef, addLocal: () => number, ea: () => number): boolean {
    if (this.created.has(loop) || getType(loop) !== binaryen.none) return false;
    const namePtr = C._BinaryenLoopGetName!(loop);
    if (namePtr === 0) return false;
    const body = C._BinaryenLoopGetBody!(loop);
    const scan = new BodyScan(this.options.chunk && this.options.outer);
    try {
      scan.walk(body);
    } catch (err) {
      if (err instanceof Reject) return false;
      throw err;
    }
    // An outer loop whose inner loops call out drops its chunk every iteration: not worth a copy.
    if (scan.accesses === 0 || scan.innerSafepoint) return false;
    const outer = scan.innerLoops > 0;
    scan.findCopies();
    const analysis = new StreamAnalysis(scan, this.access, this.layout.pageSize);
    try {
      analysis.walk(body);
    } catch (err) {
      if (err instanceof Reject) return false;
      throw err;
    }
    // Outer loops get streams only: a check branching out would re-run the inner loops too.
    analysis.classify(outer ? { ...this.options, outline: false } : this.options);
    if (analysis.streams.length === 0 && analysis.outlined.length === 0) return false;

    const m = this.module;
    const name = Names.Loop.getName(loop)!;
    const id = this.labels++;
    const fastName = `farmem.chunk${id}.fast`;
    const slowName = `farmem.chunk${id}.slow`;
    const doneName = `farmem.chunk${id}.done`;
    const refillName = `farmem.chunk${id}.refill`;
    const endName = `farmem.chunk${id}.end`;
    // Predicated: the fast loop's own exit test carries the page bound, `counter` is its limit
    // (0 stops it, like a spent countdown) and `n` the iterations left in the pages.
    const pred = this.options.predicate && analysis.streams.length > 0 ? exitTest(body, name, scan) : null;
    const counter = addLocal();
    const n = pred ? addLocal() : counter;
    const wanted = new Set<number>([...analysis.streams.map((s) => s.ordinal), ...analysis.checked, ...analysis.outlined]);
    const fast = m.copyExpression(body);
    const marker = new FastBodyMarker(m, wanted, new Set(analysis.calls), name, fastName, `farmem.chunk${id}.l`, counter);
    const fastBody = marker.walk(fast);

    // Streams with the same address form, size and table share one delta. A load that is an
    // operand of a store to the same stream (`c[j] = c[j] + x`) uses the store's, from WT: a page
    // mapped for writing is mapped for reading at the same frame, and when WT misses the store
    // would leave the fast loop anyway.
    const keyOf = (s: StreamSite) => `${s.offset}|${s.bytes}|${s.form.c}|${s.form.iv}|${s.form.k}|${s.form.ku}|${s.form.terms.join(';')}`;
    const writers = new Map(analysis.streams.filter((s) => s.write).map((s) => [s.expr, keyOf(s)]));
    const shared = new Map<string, number>();
    const bases = new Map<string, number>();
    const refill: ExpressionRef[] = [];
    for (const s of analysis.streams) {
      const own = keyOf(s);
      const rmw = !s.write && writers.get(s.store) === own;
      const key = `${s.write || rmw}|${own}`;
      let delta = shared.get(key);
      if (delta === undefined) {
        delta = addLocal();
        shared.set(key, delta);
        refill.push(...this.translateStream(s, rmw, delta, n, refill.length === 0, ea(), slowName));
      }
      const access = marker.refs.get(s.ordinal)!;
      this.streams.set(access, delta);
      this.stats.streams++;
      const invariant = this.invariantSide(this.access.ptr(access, getId(access)), scan);
      if (invariant) {
        const key = `${delta}|${invariant.local}`;
        let local = bases.get(key);
        if (local === undefined) {
          local = addLocal();
          bases.set(key, local);
          refill.push(m.local.set(local, m.i32.add(m.local.get(invariant.local, binaryen.i32), m.local.get(delta, binaryen.i32))));
        }
        this.bases.set(access, { local, side: invariant.side });
      }
    }
    for (const o of analysis.checked) this.zeroOnSlow.set(marker.refs.get(o)!, counter);
    for (const o of analysis.outlined) this.outlined.set(marker.refs.get(o)!, slowName);
    this.stats.outlined += analysis.outlined.length;
    if (pred) {
      // n ≤ pageSize once a stream moves: then iv + n·step wraps at most once, below iv (BODY).
      const bounded = analysis.streams.some((s) => s.step !== 0) && pred.step * this.layout.pageSize < 2 ** 32;
      refill.push(...this.limit(pred, n, counter, bounded), m.br(slowName, m.i32.ge_u(m.local.get(pred.iv, binaryen.i32), m.local.get(counter, binaryen.i32))));
      const fastIf = pred.nested ? C._BinaryenBlockGetChildAt!(fastBody, 0) : fastBody;
      C._BinaryenIfSetCondition!(fastIf, m.i32.lt_u(m.local.get(pred.iv, binaryen.i32), m.local.get(counter, binaryen.i32)));
      this.stats.predicated++;
    } else {
      refill.push(m.br(slowName, m.i32.eqz(m.local.get(counter, binaryen.i32))));
    }

    const i32 = binaryen.i32;
    // br_if $done (1), not br: a block ending in br is finalized as unreachable when no branch
    // targets it yet (the memory pass adds outlined `br_if $slow` later), and its successor dropped.
    const exit = () => m.br(doneName, m.i32.const(1));
    let slowBlock: ExpressionRef;
    if (analysis.streams.length === 0) {
      // Nothing to translate per chunk: the fast loop is the body alone.
      const fastLoop = m.loop(fastName, fastBody);
      this.created.add(fastLoop);
      slowBlock = m.block(slowName, [fastLoop, exit()], binaryen.none);
    } else {
      // The refill sits outside the hot loop, which holds only the countdown and the body; or,
      // predicated, the body alone, whose exit test `iv < limit` fails at the page bound too: then
      // the original test tells the loop's end from the page's.
      const fastLoop = pred ? m.loop(fastName, fastBody) : m.loop(fastName, m.block(null, [
        m.br(endName, m.i32.eqz(m.local.get(counter, i32))),
        m.local.set(counter, m.i32.sub(m.local.get(counter, i32), m.i32.const(1))),
        fastBody,
      ], binaryen.none));
      const ended = pred ? m.br(doneName, m.i32.ge_u(m.local.get(pred.iv, i32), pred.bound(m))) : exit();
      this.created.add(fastLoop);
      if (outer) this.outerFast.set(fastLoop, counter);
      const refillLoop = m.loop(refillName, m.block(null, [
        ...refill,
        m.block(endName, [fastLoop, ended], binaryen.none),
        m.br(refillName),
      ], binaryen.none));
      this.created.add(refillLoop);
      slowBlock = m.block(slowName, [refillLoop], binaryen.none);
    }
    C._BinaryenLoopSetBody!(loop, m.block(doneName, [slowBlock, body], binaryen.none));
    this.stats.loops++;
    if (outer) this.stats.outerLoops++;
    this.fastBody = fastBody;
    return true;
  }

  /** For an address `(i32.add X Y)` with X (or Y) a `local.get` of a local the loop never writes: that local and side. */
  private invariantSide(ptr: ExpressionRef, scan: BodyScan): { local: number; side: 0 | 1 } | null {
    if (getId(ptr) !== ID.Binary || C._BinaryenBinaryGetOp!(ptr) !== OP.add) return null;
    for (const side of [0, 1] as const) {
      const x = side === 0 ? C._BinaryenBinaryGetLeft!(ptr) : C._BinaryenBinaryGetRight!(ptr);
      if (getId(x) !== ID.LocalGet) continue;
      const local = C._BinaryenLocalGetGetIndex!(x);
      if (!scan.sets.has(local)) return { local, side };
    }
    return null;
  }

  /** The memory pass enters a loop (after `tryChunk`): an outer chunk's fast loop opens its region. */
  enterLoop(loop: ExpressionRef): void {
    const counter = this.outerFast.get(loop);
    if (counter !== undefined) this.active.push(counter);
  }

  /** The memory pass leaves a loop. */
  leaveLoop(loop: ExpressionRef): void {
    if (this.outerFast.has(loop)) this.active.pop();
  }

  /**
   * Counters a checked access's slow path must zero before it faults: its own chunk's (innermost
   * loops), and every outer chunk whose fast loop encloses it, inner loops and their copies
   * included — a fault is a safepoint, after which no cached translation may be used.
   */
  dropOnFault(access: ExpressionRef): readonly number[] {
    const own = this.zeroOnSlow.get(access);
    if (this.active.length === 0) return own === undefined ? NONE : [own];
    return own === undefined || this.active.includes(own) ? this.active.slice() : [own, ...this.active];
  }

  /**
   * The predicated fast loop's limit: `n = min(n, (2^32 - step - iv) / step)`, then
   * `limit = min(iv + n·step, B)`, so the fast loop runs exactly the iterations the countdown would
   * (at most n, none past the loop's end) and iv never wraps before its test fails (no overflow:
   * n·step ≤ 2^32 - step - iv). `limit <= iv` sends the iteration to BODY.
   *
   * `bounded` (a stream moves, so n ≤ pageSize, and pageSize·step < 2^32): the first step is left
   * out. Then iv + n·step wraps at most once, and a wrapped limit is below iv, which sends the
   * iteration to BODY too; only the last chunk before iv would wrap runs slow.
   */
  private limit(t: ExitTest, n: number, limit: number, bounded: boolean): ExpressionRef[] {
    const m = this.module;
    const get = (l: number) => m.local.get(l, binaryen.i32);
    const cap = (0x100000000 - t.step) | 0;
    const room = () => m.i32.sub(m.i32.const(cap), get(t.iv));
    const pow2 = (t.step & (t.step - 1)) === 0;
    const fits = pow2 ? m.i32.shr_u(room(), m.i32.const(Math.log2(t.step))) : m.i32.div_u(room(), m.i32.const(t.step));
    const most = m.select(m.i32.gt_u(get(t.iv), m.i32.const(cap)), m.i32.const(0), fits);
    const scaled = () => (pow2 ? m.i32.shl(get(n), m.i32.const(Math.log2(t.step))) : m.i32.mul(get(n), m.i32.const(t.step)));
    const capped = bounded ? [] : [m.local.set(limit, most), m.local.set(n, m.select(m.i32.lt_u(get(n), get(limit)), get(n), get(limit)))];
    return [
      ...capped,
      m.local.set(limit, m.i32.add(get(t.iv), scaled())),
      m.local.set(limit, m.select(m.i32.lt_u(get(limit), t.bound(m)), get(limit), t.bound(m))),
    ];
  }

  /**
   * Refill code for one stream at the top of an iteration: its delta, and `counter = min(counter,
   * iterations that stay in this page)`; `br $slow` when the page is unmapped, the first access
   * straddles or the address wraps. Never traps, never calls. `write`: through WT even for a load
   * (one that shares its store's delta).
   */
  private translateStream(s: StreamSite, write: boolean, delta: number, counter: number, first: boolean, ea: number, slowName: string): ExpressionRef[] {
    const m = this.module;
    const { pageShift, pageSize } = this.layout;
    const mask = pageSize - 1;
    const i32 = binaryen.i32;
    const get = (l: number) => m.local.get(l, i32);
    // ea = c + Σ coef·local + k·iv + offset, the address at iv's current (top-of-iteration) value.
    let addr = m.i32.const((s.form.c + s.offset) | 0);
    const term = (local: number, f: number) => (f === 1 ? get(local) : m.i32.mul(get(local), m.i32.const(f)));
    for (const [local, f] of s.form.terms) addr = m.i32.add(addr, term(local, f));
    if (s.form.iv >= 0 && s.form.k !== 0) addr = m.i32.add(addr, term(s.form.iv, s.form.k));
    const table = s.write || write ? this.layout.writeTable : this.layout.readTable;
    const entry = m.i32.load(table, 4, m.i32.shl(m.i32.shr_u(get(ea), m.i32.const(pageShift)), m.i32.const(2)), this.memory);
    this.raw.add(entry);
    const out: ExpressionRef[] = [m.local.set(ea, addr), m.local.set(delta, entry)];
    // Unmapped, or `pointer + offset` wrapped past 2^32 (the pointer is ea - offset).
    const bad = [m.i32.eqz(get(delta))];
    if (s.offset !== 0) bad.push(m.i32.lt_u(get(ea), m.i32.const(s.offset | 0)));
    const inPage = () => m.i32.and(get(ea), m.i32.const(mask));
    // The first access must not straddle the page end.
    if (s.bytes > 1) bad.push(m.i32.gt_u(inPage(), m.i32.const(pageSize - s.bytes)));
    out.push(...bad.map((c) => m.br(slowName, c))); // one br_if each: no booleans to or
    // Accesses m·step from ea for m ≤ n stay in the page: n = room / |step|.
    let n: ExpressionRef;
    const abs = Math.abs(s.step);
    // Going down, the pointer (ea - offset) must not pass below 0 either: there the original's
    // `pointer + offset` exceeds 2^32 and traps, while ea itself would stay in the page.
    const downRoom = () => {
      if (s.offset === 0) return inPage();
      const aboveOffset = () => m.i32.sub(get(ea), m.i32.const(s.offset | 0));
      return m.select(m.i32.lt_u(inPage(), aboveOffset()), inPage(), aboveOffset());
    };
    const room = s.step > 0 ? m.i32.sub(m.i32.const(pageSize - s.bytes), inPage()) : downRoom();
    if (s.step === 0) n = m.i32.const(UNBOUNDED);
    else if ((abs & (abs - 1)) === 0) n = m.i32.shr_u(room, m.i32.const(Math.log2(abs)));
    else n = m.i32.div_u(room, m.i32.const(abs));
    // Known phase: iterations 0..n all stay in the page; unknown: the last one may be one step further.
    if (s.form.ku === 0) n = m.i32.add(n, m.i32.const(1));
    // counter = n for the first stream, then min_u(counter, n); ea is free again once n is computed.
    if (first) out.push(m.local.set(counter, n));
    else out.push(m.local.set(ea, n), m.local.set(counter, m.select(m.i32.lt_u(get(counter), get(ea)), get(counter), get(ea))));
    return out;
  }
}
