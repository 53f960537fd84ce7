/**
 * @fileoverview The expression walker every instrumentation pass builds on. `Visitor.walk(expr)`
 * descends through every child of every expression kind the instrumenter supports, calls
 * `enter(expr, id)` on the way down and `leave(expr, id)` on the way up, and if `leave` returns a
 * different expression, stores it in the parent's child slot. Passes override only `enter`/`leave`.
 *
 * Children are read and written through binaryen's id-specific C-API getters and setters (one
 * table below), so a walk allocates nothing per node. Children are visited in evaluation order.
 * Kinds binaryen.js has no getters for (table.fill/copy/init, try_table, throw_ref, struct/array
 * atomics) use slots found by probing binaryen's object layout (hidden-children.ts). Kinds V8 does
 * not run (stack switching, stringref, ...) are rejected with `UnsupportedExpression`.
 * `seen[id]` records which kinds a walk met (features.ts decides emitted features from it).
 */
import { binaryen, C, type ExpressionRef } from './binaryen.js';
import { hiddenSlots } from './hidden-children.js';

type Get = (expr: ExpressionRef) => ExpressionRef;
type Set = (expr: ExpressionRef, child: ExpressionRef) => void;
/** A fixed child slot, or a list of children (`num`, `at`, `setAt`). */
type Slot =
  | { readonly kind: 0; readonly get: Get; readonly set: Set }
  | { readonly kind: 1; readonly num: Get; readonly at: (e: ExpressionRef, i: number) => ExpressionRef; readonly setAt: (e: ExpressionRef, i: number, c: ExpressionRef) => void };

function one(kind: string, field: string): Slot {
  const get = C[`_Binaryen${kind}Get${field}`];
  const set = C[`_Binaryen${kind}Set${field}`];
  if (!get || !set) throw new Error(`binaryen.js lacks ${kind}.${field}`);
  return { kind: 0, get, set };
}

function list(kind: string, item: string, countName = `${item}s`): Slot {
  const num = C[`_Binaryen${kind}GetNum${countName}`];
  const at = C[`_Binaryen${kind}Get${item}At`];
  const setAt = C[`_Binaryen${kind}Set${item}At`];
  if (!num || !at || !setAt) throw new Error(`binaryen.js lacks ${kind}.${item}[]`);
  return { kind: 1, num, at, setAt };
}

const b = binaryen as unknown as Record<string, number>;
const LEAF: readonly Slot[] = [];

/** Child slots per expression id, in evaluation order: a table, one row per id (rows look alike by design). */
const SLOTS = new Map<number, readonly Slot[]>([
  [b.NopId!, LEAF], [b.ConstId!, LEAF], [b.LocalGetId!, LEAF], [b.GlobalGetId!, LEAF], [b.UnreachableId!, LEAF],
  [b.MemorySizeId!, LEAF], [b.DataDropId!, LEAF], [b.AtomicFenceId!, LEAF], [b.PopId!, LEAF], [b.RefNullId!, LEAF],
  [b.RefFuncId!, LEAF], [b.TableSizeId!, LEAF], [b.RethrowId!, LEAF], [C._BinaryenElemDropId!(), LEAF],
  [b.BlockId!, [list('Block', 'Child', 'Children')]],
  [b.IfId!, [one('If', 'Condition'), one('If', 'IfTrue'), one('If', 'IfFalse')]],
  [b.LoopId!, [one('Loop', 'Body')]],
  [b.BreakId!, [one('Break', 'Value'), one('Break', 'Condition')]],
  [b.SwitchId!, [one('Switch', 'Value'), one('Switch', 'Condition')]],
  [b.CallId!, [list('Call', 'Operand')]],
  [b.CallIndirectId!, [list('CallIndirect', 'Operand'), one('CallIndirect', 'Target')]],
  [b.CallRefId!, [list('CallRef', 'Operand'), one('CallRef', 'Target')]],
  [b.LocalSetId!, [one('LocalSet', 'Value')]],
  [b.GlobalSetId!, [one('GlobalSet', 'Value')]],
  [b.LoadId!, [one('Load', 'Ptr')]],
  [b.StoreId!, [one('Store', 'Ptr'), one('Store', 'Value')]],
  [b.AtomicRMWId!, [one('AtomicRMW', 'Ptr'), one('AtomicRMW', 'Value')]],
  [b.AtomicCmpxchgId!, [one('AtomicCmpxchg', 'Ptr'), one('AtomicCmpxchg', 'Expected'), one('AtomicCmpxchg', 'Replacement')]],
  [b.AtomicWaitId!, [one('AtomicWait', 'Ptr'), one('AtomicWait', 'Expected'), one('AtomicWait', 'Timeout')]],
  [b.AtomicNotifyId!, [one('AtomicNotify', 'Ptr'), one('AtomicNotify', 'NotifyCount')]],
  [b.SIMDExtractId!, [one('SIMDExtract', 'Vec')]],
  [b.SIMDReplaceId!, [one('SIMDReplace', 'Vec'), one('SIMDReplace', 'Value')]],
  [b.SIMDShuffleId!, [one('SIMDShuffle', 'Left'), one('SIMDShuffle', 'Right')]],
  [b.SIMDTernaryId!, [one('SIMDTernary', 'A'), one('SIMDTernary', 'B'), one('SIMDTernary', 'C')]],
  [b.SIMDShiftId!, [one('SIMDShift', 'Vec'), one('SIMDShift', 'Shift')]],
  [b.SIMDLoadId!, [one('SIMDLoad', 'Ptr')]],
  [b.SIMDLoadStoreLaneId!, [one('SIMDLoadStoreLane', 'Ptr'), one('SIMDLoadStoreLane', 'Vec')]],
  [b.MemoryInitId!, [one('MemoryInit', 'Dest'), one('MemoryInit', 'Offset'), one('MemoryInit', 'Size')]],
  [b.MemoryCopyId!, [one('MemoryCopy', 'Dest'), one('MemoryCopy', 'Source'), one('MemoryCopy', 'Size')]],
  [b.MemoryFillId!, [one('MemoryFill', 'Dest'), one('MemoryFill', 'Value'), one('MemoryFill', 'Size')]],
  [b.UnaryId!, [one('Unary', 'Value')]],
  [b.BinaryId!, [one('Binary', 'Left'), one('Binary', 'Right')]],
  [b.SelectId!, [one('Select', 'IfTrue'), one('Select', 'IfFalse'), one('Select', 'Condition')]],
  [b.DropId!, [one('Drop', 'Value')]],
  [b.ReturnId!, [one('Return', 'Value')]],
  [b.MemoryGrowId!, [one('MemoryGrow', 'Delta')]],
  [b.RefIsNullId!, [one('RefIsNull', 'Value')]],
  [b.RefAsId!, [one('RefAs', 'Value')]],
  [b.RefEqId!, [one('RefEq', 'Left'), one('RefEq', 'Right')]],
  [b.TableGetId!, [one('TableGet', 'Index')]],
  [b.TableSetId!, [one('TableSet', 'Index'), one('TableSet', 'Value')]],
  [b.TableGrowId!, [one('TableGrow', 'Value'), one('TableGrow', 'Delta')]],
  [b.TryId!, [one('Try', 'Body'), list('Try', 'CatchBody', 'CatchBodies')]],
  [b.ThrowId!, [list('Throw', 'Operand')]],
  [b.TupleMakeId!, [list('TupleMake', 'Operand')]],
  [b.TupleExtractId!, [one('TupleExtract', 'Tuple')]],
  // GC (V8 in Node 24): none of these touch linear memory; array.new_data/init_data read a data segment.
  [b.RefI31Id!, [one('RefI31', 'Value')]],
  [b.I31GetId!, [one('I31Get', 'I31')]],
  [b.RefTestId!, [one('RefTest', 'Ref')]],
  [b.RefCastId!, [one('RefCast', 'Ref')]],
  [b.BrOnId!, [one('BrOn', 'Ref')]],
  [b.StructNewId!, [list('StructNew', 'Operand')]],
  [b.StructGetId!, [one('StructGet', 'Ref')]],
  [b.StructSetId!, [one('StructSet', 'Ref'), one('StructSet', 'Value')]],
  [b.ArrayNewId!, [one('ArrayNew', 'Init'), one('ArrayNew', 'Size')]],
  [b.ArrayNewDataId!, [one('ArrayNewData', 'Offset'), one('ArrayNewData', 'Size')]],
  [b.ArrayNewElemId!, [one('ArrayNewElem', 'Offset'), one('ArrayNewElem', 'Size')]],
  [b.ArrayNewFixedId!, [list('ArrayNewFixed', 'Value', 'Values')]],
  [b.ArrayGetId!, [one('ArrayGet', 'Ref'), one('ArrayGet', 'Index')]],
  [b.ArraySetId!, [one('ArraySet', 'Ref'), one('ArraySet', 'Index'), one('ArraySet', 'Value')]],
  [b.ArrayLenId!, [one('ArrayLen', 'Ref')]],
  [b.ArrayCopyId!, [one('ArrayCopy', 'DestRef'), one('ArrayCopy', 'DestIndex'), one('ArrayCopy', 'SrcRef'), one('ArrayCopy', 'SrcIndex'), one('ArrayCopy', 'Length')]],
  [b.ArrayFillId!, [one('ArrayFill', 'Ref'), one('ArrayFill', 'Index'), one('ArrayFill', 'Value'), one('ArrayFill', 'Size')]],
  [b.ArrayInitDataId!, [one('ArrayInitData', 'Ref'), one('ArrayInitData', 'Index'), one('ArrayInitData', 'Offset'), one('ArrayInitData', 'Size')]],
  [b.ArrayInitElemId!, [one('ArrayInitElem', 'Ref'), one('ArrayInitElem', 'Index'), one('ArrayInitElem', 'Offset'), one('ArrayInitElem', 'Size')]],
  ...[...hiddenSlots()].map(([id, hidden]) => [id, hidden.map((h) => ({ kind: 0, get: h.get, set: h.set }) as const)] as const),
]);

/** Names of every expression id, from binaryen.js's `XxxId` constants and `_BinaryenXxxId()` functions. */
const ID_NAMES = new Map<number, string>([
  ...Object.entries(C).filter(([k]) => /^_Binaryen\w+Id$/.test(k) && !k.startsWith('_BinaryenExternal')).map(([k, f]) => [f(), k.slice(9, -2)] as const),
  ...Object.entries(b).filter(([k, v]) => k.endsWith('Id') && typeof v === 'number').map(([k, v]) => [v, k.slice(0, -2)] as const),
]);

/** The proposal each refused kind belongs to, for the diagnostic. */
const FEATURE_OF: Record<string, string> = {
  ContNew: 'stack switching', ContBind: 'stack switching', Suspend: 'stack switching', Resume: 'stack switching',
  ResumeThrow: 'stack switching', StackSwitch: 'stack switching', StructWait: 'shared-everything threads',
  ArrayLoad: 'multibyte array access', ArrayStore: 'multibyte array access', RefGetDesc: 'custom descriptors',
  StringNew: 'stringref', StringConst: 'stringref', StringMeasure: 'stringref', StringEncode: 'stringref',
  StringConcat: 'stringref', StringEq: 'stringref', StringTest: 'stringref', StringWTF16Get: 'stringref', StringSliceWTF: 'stringref',
};

/** `Resume (stack switching)`: the kind and, where known, the proposal it comes from. */
export function expressionName(id: number): string {
  const name = ID_NAMES.get(id) ?? `expression #${id}`;
  const feature = FEATURE_OF[name];
  return feature ? `${name} (${feature})` : name;
}

export class UnsupportedExpression extends Error {
  constructor(readonly id: number) {
    super(`unsupported expression ${expressionName(id)}`);
  }
}

const getId = C._BinaryenExpressionGetId!;

/** Largest expression id binaryen 132 defines, with room to spare. */
const MAX_ID = 256;

export abstract class Visitor {
  /** `seen[id]` is 1 once a walk met an expression of that kind. */
  readonly seen = new Uint8Array(MAX_ID);
  /** Called before an expression's children are walked. */
  protected enter(_expr: ExpressionRef, _id: number): void {}
  /** Called after its children; returns the expression to put in its place (or the same one). */
  protected leave(expr: ExpressionRef, _id: number): ExpressionRef {
    return expr;
  }

  /** Walks `expr` and returns what should stand in its place. */
  walk(expr: ExpressionRef): ExpressionRef {
    const id = getId(expr);
    const slots = SLOTS.get(id);
    if (slots === undefined) throw new UnsupportedExpression(id);
    this.seen[id] = 1;
    this.enter(expr, id);
    for (let s = 0; s < slots.length; s++) {
      const slot = slots[s]!;
      if (slot.kind === 0) {
        const child = slot.get(expr);
        if (child !== 0) {
          const next = this.walk(child);
          if (next !== child) slot.set(expr, next);
        }
      } else {
        const n = slot.num(expr);
        for (let i = 0; i < n; i++) {
          const child = slot.at(expr, i);
          const next = this.walk(child);
          if (next !== child) slot.setAt(expr, i, next);
        }
      }
    }
    return this.leave(expr, id);
  }
}
