/**
 * @fileoverview Reads a module's data segments into farmem metadata: each segment's bytes, and for
 * an active one where it starts, as a constant or as the value of a global:
 *
 *   (data (i32.const 1024) "...")            → { kind: 'const', value: 1024 }
 *   (data (global.get $__memory_base) "...") → { kind: 'global', module: 'env', name: '__memory_base' }  (imported)
 *   (data (global.get $base) "...")          → { kind: 'global-const', value: 4096 }  ($base defined with a constant)
 *
 * binaryen.js reports only constant offsets (its getter throws a C++ exception, not an Error, for
 * any other), so the offset expression is read through the probed field (hidden-children.ts).
 * Any other offset expression (extended-const arithmetic) is refused with FM1017.
 */
import type { SegmentMeta, SegmentOffset } from '../abi.js';
import { binaryen, C, type ExpressionRef, type Module } from './binaryen.js';
import { diagnostic } from './diagnostics.js';
import { dataSegmentOffset, memoryNameOf, setDataSegmentOffset } from './hidden-children.js';
import type { Region } from './memory64-pass.js';

export interface Segments {
  readonly meta: SegmentMeta[];
  /** All segments' bytes, concatenated in order (the "farmem.data" section). */
  readonly data: Uint8Array;
  /** Segment name → index. */
  readonly index: Map<string, number>;
}

/** A constant's value as a JS number (i64 offsets of memory64 segments included; exact below 2^53). */
function constValue(expr: ExpressionRef): number | null {
  const type = C._BinaryenExpressionGetType!(expr);
  if (type === binaryen.i32) return C._BinaryenConstGetValueI32!(expr) >>> 0;
  if (type === binaryen.i64) {
    const value = BigInt.asUintN(64, (binaryen as unknown as { _BinaryenConstGetValueI64(e: number): bigint })._BinaryenConstGetValueI64(expr));
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value); // past 2^53: out of bounds anyway
  }
  return null;
}

function offsetOf(module: Module, expr: ExpressionRef, segment: number): SegmentOffset {
  const id = C._BinaryenExpressionGetId!(expr);
  if (id === binaryen.ConstId) {
    const value = constValue(expr);
    if (value !== null) return { kind: 'const', value };
  }
  if (id === binaryen.GlobalGetId) {
    const info = binaryen.getGlobalInfo(module.getGlobal((binaryen as unknown as { GlobalGet: { getName(e: number): string } }).GlobalGet.getName(expr)));
    if (info.module) return { kind: 'global', module: info.module, name: info.base ?? '' };
    const init = info.init;
    if (init && C._BinaryenExpressionGetId!(init) === binaryen.ConstId) {
      const value = constValue(init);
      if (value !== null) return { kind: 'global-const', value };
    }
  }
  throw diagnostic('FM1017', segment, binaryen.emitText(expr).trim());
}

/** `regions` (several memories): each active segment records which memory it initializes. */
export function readSegments(module: Module, regions?: readonly Region[]): Segments {
  const meta: SegmentMeta[] = [];
  const chunks: Uint8Array[] = [];
  const index = new Map<string, number>();
  let total = 0;
  const count = (module as unknown as { getNumDataSegments(): number }).getNumDataSegments();
  for (let i = 0; i < count; i++) {
    const ref = module.getDataSegmentByIndex(i) as unknown as number;
    let offset: SegmentOffset | undefined;
    let memory = 0;
    if (C._BinaryenGetDataSegmentPassive!(ref) === 0) {
      const expr = dataSegmentOffset(ref);
      if (expr === 0) throw diagnostic('FM1017', i, '(unreadable)');
      offset = offsetOf(module, expr, i);
      if (regions) memory = regions.find((r) => r.name === memoryNameOf(ref, -1))?.index ?? 0;
      // binaryen.js's segment reader insists on a constant offset; we have ours, so give it one.
      if (C._BinaryenExpressionGetId!(expr) !== binaryen.ConstId) setDataSegmentOffset(ref, module.i32.const(0));
    }
    const seg = (module as unknown as { getDataSegmentInfo(r: number): { name: string; data: ArrayBuffer } }).getDataSegmentInfo(ref);
    const data = new Uint8Array(seg.data);
    index.set(seg.name, i);
    meta.push({ start: total, length: data.length, ...(offset ? { offset } : {}), ...(memory ? { memory } : {}) });
    chunks.push(data);
    total += data.length;
  }
  const data = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    data.set(chunk, at);
    at += chunk.length;
  }
  return { meta, data, index };
}
