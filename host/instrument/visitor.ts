/**
 * @fileoverview The expression walker every instrumentation pass builds on. `Visitor.walk(expr)`
 * descends through every child of every expression kind the instrumenter supports, calls
 * `enter(expr, id)` on the way down and `leave(expr, id)` on the way up, and if `leave` returns a
 * different expression, stores it in the parent's child slot. Passes override only `enter`/`leave`.
 *
 * Children are read and written through binaryen's id-specific C-API getters and setters (one
 * table below), so a walk allocates nothing per node. Children are visited in evaluation order.
 * Expression kinds whose children binaryen.js cannot reach (table.fill/copy/init, try_table,
 * throw_ref, GC and string ops) are rejected with `UnsupportedExpression`.
 */
import { binaryen, C, type ExpressionRef } from './binaryen.js';

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

/** Child slots per expression id, in evaluation order. */
const SLOTS = new Map<number, readonly Slot[]>([
  [b.NopId!, LEAF], [b.ConstId!, LEAF], [b.LocalGetId!, LEAF], [b.GlobalGetId!, LEAF], [b.UnreachableId!, LEAF],
  [b.MemorySizeId!, LEAF], [b.DataDropId!, LEAF], [b.AtomicFenceId!, LEAF], [b.PopId!, LEAF], [b.RefNullId!, LEAF],
  [b.RefFuncId!, LEAF], [b.TableSizeId!, LEAF], [b.RethrowId!, LEAF],
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
]);

const ID_NAMES = new Map<number, string>(
  Object.entries(b).filter(([k, v]) => k.endsWith('Id') && typeof v === 'number').map(([k, v]) => [v, k.slice(0, -2)]),
);

export function expressionName(id: number): string {
  return ID_NAMES.get(id) ?? `expression #${id}`;
}

export class UnsupportedExpression extends Error {
  constructor(readonly id: number) {
    super(`unsupported expression ${expressionName(id)}`);
  }
}

const getId = C._BinaryenExpressionGetId!;

export abstract class Visitor {
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
