/**
 * @fileoverview Child slots of the expression kinds binaryen.js has no getters for (table.fill,
 * table.copy, table.init, try_table, throw_ref, struct/array atomics), the offset expression
 * of a data segment (binaryen.js only reports constant offsets), the high 32 bits of a memory
 * access's 64-bit offset (memory64 allows offsets ≥ 2^32; the C API returns the low 32 bits), and
 * the memory an access names (multi-memory; the C API has no getter or setter for it). A name is
 * one word, a pointer to binaryen's interned NUL-terminated characters, so equal names have equal
 * pointers and an expression is pointed at another memory by copying that word.
 *
 * binaryen's expressions are C++ objects in binaryen.js's own linear memory, and a child is a
 * pointer field. We do not hard-code the field offsets: once per process, a probe module is parsed
 * that contains each kind with recognisable children (distinct constants, or distinct expression
 * kinds), and the word offset holding each child is found by scanning the parent's first words
 * for a pointer to exactly that child. A kind whose probe does not find every child (a different
 * binaryen build) is simply not in the table, and the walker refuses it as before (FM1013).
 *
 *   (table.fill $t (i32.const 111) (ref.null func) (i32.const 333))
 *   TableFill object:  +0 _id | +4 type | +8 table name (2 words) | +16 → dest | +20 → value | +24 → size
 *   (offsets as found for binaryen 132; the probe is what decides)
 *
 * Reads and writes go through binaryen.js's `__i32_load`/`__i32_store` (its memory accessors).
 */
import { binaryen, C, FEATURES_ALL, type ExpressionRef } from './binaryen.js';

const b = binaryen as unknown as Record<string, number>;
const load = (binaryen as unknown as { __i32_load(addr: number): number }).__i32_load;
const store = (binaryen as unknown as { __i32_store(addr: number, value: number): void }).__i32_store;

/** How a probe recognises a child: an expression id, and for a `Const` its i32 value. */
type Match = readonly [id: number, value?: number];

interface Probe {
  /** binaryen kind name: `_Binaryen<kind>Id()` gives its id. */
  readonly kind: string;
  /** Instructions (folded WAT) for the body of `func $p`, the probed expression outermost (under an optional drop). */
  readonly body: string;
  /** Its children in evaluation order. */
  readonly children: readonly Match[];
}

const k = (n: number): Match => [b.ConstId!, n];
const PROBE_TYPES = `(type $s (struct (field (mut i32)))) (type $a (array (mut i32)))
  (table $t 4 funcref) (elem $e func) (tag $x)`;
const PROBES: readonly Probe[] = [
  { kind: 'TableFill', body: '(table.fill $t (i32.const 111) (ref.null func) (i32.const 333))', children: [k(111), [b.RefNullId!], k(333)] },
  { kind: 'TableCopy', body: '(table.copy $t $t (i32.const 111) (i32.const 222) (i32.const 333))', children: [k(111), k(222), k(333)] },
  { kind: 'TableInit', body: '(table.init $t $e (i32.const 111) (i32.const 222) (i32.const 333))', children: [k(111), k(222), k(333)] },
  { kind: 'TryTable', body: '(drop (try_table (result i32) (i32.const 111)))', children: [k(111)] },
  { kind: 'ThrowRef', body: '(throw_ref (ref.null exn))', children: [[b.RefNullId!]] },
  { kind: 'StructRMW', body: '(drop (struct.atomic.rmw.add $s 0 (struct.new $s (i32.const 5)) (i32.const 222)))', children: [[b.StructNewId!], k(222)] },
  { kind: 'StructCmpxchg', body: '(drop (struct.atomic.rmw.cmpxchg $s 0 (struct.new $s (i32.const 5)) (i32.const 222) (i32.const 333)))', children: [[b.StructNewId!], k(222), k(333)] },
  { kind: 'ArrayRMW', body: '(drop (array.atomic.rmw.add $a (array.new_fixed $a 0) (i32.const 111) (i32.const 222)))', children: [[b.ArrayNewFixedId!], k(111), k(222)] },
  { kind: 'ArrayCmpxchg', body: '(drop (array.atomic.rmw.cmpxchg $a (array.new_fixed $a 0) (i32.const 111) (i32.const 222) (i32.const 333)))', children: [[b.ArrayNewFixedId!], k(111), k(222), k(333)] },
];

/** Words of an expression object scanned for child pointers. */
const SCAN_WORDS = 12;

/** A fixed child slot read and written as a pointer field at `offset`. */
export interface HiddenSlot {
  readonly get: (expr: ExpressionRef) => ExpressionRef;
  readonly set: (expr: ExpressionRef, child: ExpressionRef) => void;
}

function slotAt(offset: number): HiddenSlot {
  return { get: (e) => load(e + offset), set: (e, c) => store(e + offset, c) };
}

function matches(ptr: number, [id, value]: Match): boolean {
  if (ptr === 0 || (ptr & 3) !== 0 || ptr >>> 0 > 0x7fff_ffff) return false;
  if (C._BinaryenExpressionGetId!(ptr) !== id) return false;
  return value === undefined || C._BinaryenConstGetValueI32!(ptr) === value;
}

/**
 * Finds, in the object at `expr`, the word offset of a pointer to a child matching each entry: the
 * first one after the previous child's (binaryen declares child fields in evaluation order; words
 * past the object's end may belong to a neighbour that points at the same children).
 */
function findOffsets(expr: number, children: readonly Match[]): number[] | null {
  const offsets: number[] = [];
  let w = 2; // past _id and type
  for (const child of children) {
    while (w < SCAN_WORDS && !matches(load(expr + 4 * w), child)) w++;
    if (w === SCAN_WORDS) return null;
    offsets.push(4 * w++);
  }
  return offsets;
}

/** The probed expression: the function body, under a drop or a one-child block if any. */
function outermost(body: number): number {
  for (;;) {
    const id = C._BinaryenExpressionGetId!(body);
    if (id === b.DropId) body = C._BinaryenDropGetValue!(body);
    else if (id === b.BlockId && C._BinaryenBlockGetNumChildren!(body) === 1) body = C._BinaryenBlockGetChildAt!(body, 0);
    else return body;
  }
}

let slots: Map<number, readonly HiddenSlot[]> | null = null;
let segmentOffsetField = -1;
/** Expression id → byte offset of the high word of its 64-bit `offset` field. */
const offsetHighField = new Map<number, number>();

/** Accesses probed for their offset's high word, with offset=0x1_2345_6789 on a 64-bit memory. */
const OFFSET_PROBES: readonly (readonly [kind: string, body: string])[] = [
  ['Load', '(drop (i32.load offset=0x123456789 (i64.const 0)))'],
  ['Store', '(i32.store offset=0x123456789 (i64.const 0) (i32.const 0))'],
  ['SIMDLoad', '(drop (v128.load32_splat offset=0x123456789 (i64.const 0)))'],
  ['SIMDLoadStoreLane', '(drop (v128.load32_lane offset=0x123456789 0 (i64.const 0) (v128.const i64x2 0 0)))'],
  ['AtomicRMW', '(drop (i32.atomic.rmw.add offset=0x123456789 (i64.const 0) (i32.const 0)))'],
  ['AtomicCmpxchg', '(drop (i32.atomic.rmw.cmpxchg offset=0x123456789 (i64.const 0) (i32.const 0) (i32.const 0)))'],
];

/** Expression id → byte offsets of its memory-name fields (two for memory.copy: dest, source). */
const memoryNameFields = new Map<number, number[]>();
let segmentMemoryField = -1;

/** Memory-touching kinds probed for their memory name, on memory `$zz` (and `$yy` as copy's source). */
const NAME_PROBES: readonly (readonly [kind: string, body: string])[] = [
  ['Load', '(drop (i32.load $zz (i32.const 0)))'],
  ['Store', '(i32.store $zz (i32.const 0) (i32.const 0))'],
  ['SIMDLoad', '(drop (v128.load32_splat $zz (i32.const 0)))'],
  ['SIMDLoadStoreLane', '(drop (v128.load32_lane $zz 0 (i32.const 0) (v128.const i64x2 0 0)))'],
  ['AtomicRMW', '(drop (i32.atomic.rmw.add $zz (i32.const 0) (i32.const 0)))'],
  ['AtomicCmpxchg', '(drop (i32.atomic.rmw.cmpxchg $zz (i32.const 0) (i32.const 0) (i32.const 0)))'],
  ['AtomicWait', '(drop (memory.atomic.wait32 $zz (i32.const 0) (i32.const 0) (i64.const 0)))'],
  ['AtomicNotify', '(drop (memory.atomic.notify $zz (i32.const 0) (i32.const 0)))'],
  ['MemorySize', '(drop (memory.size $zz))'],
  ['MemoryGrow', '(drop (memory.grow $zz (i32.const 0)))'],
  ['MemoryFill', '(memory.fill $zz (i32.const 0) (i32.const 0) (i32.const 0))'],
  ['MemoryInit', '(memory.init $zz $d (i32.const 0) (i32.const 0) (i32.const 0))'],
  ['MemoryCopy', '(memory.copy $zz $yy (i32.const 0) (i32.const 0) (i32.const 0))'],
];

/** Is the word at `at` a name pointer to the characters of `text`? */
function nameIs(at: number, text: string): boolean {
  const chars = load(at);
  if (chars === 0 || chars >>> 0 > 0x7fff_ffff) return false;
  const byte = (binaryen as unknown as { __i32_load8_u(a: number): number }).__i32_load8_u;
  for (let i = 0; i < text.length; i++) if (byte(chars + i) !== text.charCodeAt(i)) return false;
  return byte(chars + text.length) === 0;
}

function findName(expr: number, text: string, from = 2): number {
  for (let w = from; w < SCAN_WORDS; w++) if (nameIs(expr + 4 * w, text)) return 4 * w;
  return -1;
}

function probeMemoryNames(): void {
  let module;
  try {
    const funcs = NAME_PROBES.map(([, body], i) => `(func $n${i} ${body})`).join('\n');
    module = binaryen.parseText(`(module (memory $aa 1 1 shared) (memory $yy 1 1 shared) (memory $zz 1 1 shared) (data $d (memory $zz) (i32.const 0) "x") ${funcs})`);
  } catch {
    return;
  }
  try {
    module.setFeatures(FEATURES_ALL);
    NAME_PROBES.forEach(([kind], i) => {
      const expr = outermost(C._BinaryenFunctionGetBody!(module.getFunction(`n${i}`) as unknown as number));
      const id = C[`_Binaryen${kind}Id`]?.();
      if (id === undefined || C._BinaryenExpressionGetId!(expr) !== id) return;
      const dest = findName(expr, 'zz');
      if (dest < 0) return;
      if (kind !== 'MemoryCopy') return void memoryNameFields.set(id, [dest]);
      const source = findName(expr, 'yy');
      if (source >= 0) memoryNameFields.set(id, [dest, source]);
    });
    segmentMemoryField = findName(module.getDataSegmentByIndex(0) as unknown as number, 'zz', 0);
  } finally {
    module.dispose();
  }
}

function probeOffsets(): void {
  let module;
  try {
    const funcs = OFFSET_PROBES.map(([, body], i) => `(func $o${i} ${body})`).join('\n');
    module = binaryen.parseText(`(module (memory i64 1 1 shared) ${funcs})`);
  } catch {
    return;
  }
  try {
    OFFSET_PROBES.forEach(([kind], i) => {
      const expr = outermost(C._BinaryenFunctionGetBody!(module.getFunction(`o${i}`) as unknown as number));
      const id = C[`_Binaryen${kind}Id`]?.();
      if (id === undefined || C._BinaryenExpressionGetId!(expr) !== id) return;
      for (let w = 2; w < SCAN_WORDS - 1; w++) {
        if (load(expr + 4 * w) === 0x23456789 && load(expr + 4 * w + 4) === 1) {
          offsetHighField.set(id, 4 * w + 4);
          return;
        }
      }
    });
  } finally {
    module.dispose();
  }
}

function runProbes(): void {
  slots = new Map();
  const funcs = PROBES.map((p, i) => `(func $p${i} ${p.body})`).join('\n');
  let module;
  try {
    module = binaryen.parseText(`(module (memory 1) ${PROBE_TYPES} (data (i32.const 7654321) "x") ${funcs})`);
  } catch {
    return; // this binaryen cannot parse the probes: no hidden children
  }
  try {
    module.setFeatures(FEATURES_ALL);
    PROBES.forEach((p, i) => {
      const expr = outermost(C._BinaryenFunctionGetBody!(module.getFunction(`p${i}`) as unknown as number));
      const id = C[`_Binaryen${p.kind}Id`]?.();
      if (id === undefined || C._BinaryenExpressionGetId!(expr) !== id) return;
      const offsets = findOffsets(expr, p.children);
      if (offsets) slots!.set(id, offsets.map(slotAt));
    });
    probeOffsets();
    probeMemoryNames();
    const segment = module.getDataSegmentByIndex(0) as unknown as number;
    const offsets = findOffsets(segment, [k(7654321)]);
    if (offsets) segmentOffsetField = offsets[0]!;
  } finally {
    module.dispose();
  }
}

/** Child slots, in evaluation order, of every hidden kind the probe could map. */
export function hiddenSlots(): ReadonlyMap<number, readonly HiddenSlot[]> {
  if (slots === null) runProbes();
  return slots!;
}

/** The offset expression of an active data segment (a `DataSegmentRef`), or 0 if unknown. */
export function dataSegmentOffset(segment: number): ExpressionRef {
  if (slots === null) runProbes();
  return segmentOffsetField < 0 ? 0 : load(segment + segmentOffsetField);
}

/** Replaces the offset expression of an active data segment. */
export function setDataSegmentOffset(segment: number, expr: ExpressionRef): void {
  if (slots === null) runProbes();
  if (segmentOffsetField < 0) throw new Error('data segment offset field unknown');
  store(segment + segmentOffsetField, expr);
}

/**
 * The high 32 bits of a memory access's offset (expression id `id`), or -1 if this binaryen build's
 * layout is unknown for that kind.
 */
export function offsetHigh(expr: ExpressionRef, id: number): number {
  if (slots === null) runProbes();
  const field = offsetHighField.get(id);
  return field === undefined ? -1 : load(expr + field) >>> 0;
}

/**
 * The interned name pointer of the memory an expression (id `id`) uses, its `which`-th memory for
 * memory.copy (0 dest, 1 source); a data segment's with id -1. 0 if this build's layout is unknown.
 */
export function memoryNameOf(expr: number, id: number, which = 0): number {
  if (slots === null) runProbes();
  const field = id === -1 ? segmentMemoryField : memoryNameFields.get(id)?.[which];
  return field === undefined || field < 0 ? 0 : load(expr + field);
}

/** Points an access (id `id`) at the memory whose interned name pointer is `name`. */
export function setMemoryName(expr: number, id: number, name: number): void {
  const to = memoryNameFields.get(id)?.[0];
  if (to === undefined) throw new Error('memory name field unknown');
  store(expr + to, name);
}

/** Whether every kind's memory-name field was found (multi-memory needs them all). */
export function memoryNamesKnown(): boolean {
  if (slots === null) runProbes();
  return memoryNameFields.size === NAME_PROBES.length && segmentMemoryField >= 0;
}
