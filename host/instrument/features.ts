/**
 * @fileoverview Which features an instrumented module is emitted with. Modules are read with every
 * feature binaryen knows (V8 has already validated them), but emitting with GC enabled changes the
 * encoding of constructs every module has (`ref.null func` becomes `ref.null nofunc`, `ref.func` gets
 * a typed reference), which Node 20 cannot load. So GC (typed references) is enabled only for a
 * module that uses it: a declared type that is a reference other than funcref/externref/exnref, or
 * an expression kind that exists only with typed references.
 */
import { binaryen, C, FEATURES, type Module, type Type } from './binaryen.js';

const b = binaryen as unknown as Record<string, number>;

/** Expression kinds that need the GC feature (typed function references included). */
const GC_KINDS = [
  b.RefI31Id, b.I31GetId, b.CallRefId, b.RefTestId, b.RefCastId, b.BrOnId, b.RefAsId, b.RefEqId,
  b.StructNewId, b.StructGetId, b.StructSetId, b.ArrayNewId, b.ArrayNewDataId, b.ArrayNewElemId,
  b.ArrayNewFixedId, b.ArrayGetId, b.ArraySetId, b.ArrayLenId, b.ArrayCopyId, b.ArrayFillId,
  b.ArrayInitDataId, b.ArrayInitElemId, C._BinaryenStructRMWId!(), C._BinaryenStructCmpxchgId!(),
  C._BinaryenArrayRMWId!(), C._BinaryenArrayCmpxchgId!(),
].map((id) => id!);

/** Reference types a non-GC module may declare. */
const exnHeap = (() => {
  const m = binaryen.parseText('(module (global $g exnref (ref.null exn)))');
  try {
    return m.getGlobal('g') ? binaryen.getGlobalInfo(m.getGlobal('g')).type : -1;
  } finally {
    m.dispose();
  }
})();
const PLAIN_REFS = new Set<number>([binaryen.funcref, binaryen.externref, exnHeap]);

function needsGc(type: Type): boolean {
  for (const t of binaryen.expandType(type)) if (t > binaryen.v128 && !PLAIN_REFS.has(t)) return true;
  return false;
}

/** Does the module declare or use anything that needs the GC feature? `seen` is the walk's kind record. */
export function usesGc(module: Module, seen: Uint8Array): boolean {
  if (GC_KINDS.some((id) => seen[id] === 1)) return true;
  for (let i = 0; i < module.getNumFunctions(); i++) {
    const fn = binaryen.getFunctionInfo(module.getFunctionByIndex(i));
    if (needsGc(fn.params) || needsGc(fn.results) || fn.vars.some(needsGc)) return true;
  }
  for (let i = 0; i < module.getNumGlobals(); i++) {
    if (needsGc(binaryen.getGlobalInfo(module.getGlobalByIndex(i)).type)) return true;
  }
  for (let i = 0; i < module.getNumTables(); i++) {
    if (needsGc(C._BinaryenTableGetType!(module.getTableByIndex(i) as unknown as number))) return true;
  }
  return false;
}

/**
 * Features to emit with: Node 20's set, plus GC where the module needs it. Never memory64 or
 * multi-memory: an instrumented module has one 32-bit physical memory whatever the original had.
 */
export function emitFeatures(module: Module, seen: Uint8Array): number {
  let features = FEATURES | binaryen.Features.RelaxedSIMD;
  if (usesGc(module, seen)) features |= binaryen.Features.GC | binaryen.Features.ReferenceTypes;
  return features;
}
