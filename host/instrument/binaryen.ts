/**
 * @fileoverview The one place farmem imports binaryen.js (pinned: binaryen 132). Re-exports the
 * module and the handle types, and exposes binaryen's raw C-API functions (`_Binaryen*`) that the
 * walker uses: they are id-specific getters/setters with no per-node allocation, much faster than
 * `getExpressionInfo` on modules with millions of expressions.
 */
import binaryenModule from 'binaryen';

export const binaryen = binaryenModule;
export type Module = binaryenModule.Module;
export type ExpressionRef = number;
export type FunctionRef = number;
export type Type = number;

/** binaryen's raw C API: `_BinaryenLoadGetPtr(expr)` etc. Typed loosely on purpose. */
export const C = binaryenModule as unknown as Record<string, (...args: number[]) => number>;

/**
 * Features every instrumented module is emitted with: what V8 in Node 20 ships. Features that
 * change how existing constructs are encoded (GC's typed references) are added only for modules
 * that use them (features.ts), so a plain module stays loadable on Node 20.
 */
export const FEATURES =
  binaryen.Features.MutableGlobals |
  binaryen.Features.SignExt |
  binaryen.Features.NontrappingFPToInt |
  binaryen.Features.BulkMemory |
  binaryen.Features.SIMD128 |
  binaryen.Features.Atomics |
  binaryen.Features.Multivalue |
  binaryen.Features.ReferenceTypes |
  binaryen.Features.ExceptionHandling |
  binaryen.Features.TailCall |
  binaryen.Features.ExtendedConst;

/** Modules are read with every feature binaryen knows; V8's validation decides what is accepted. */
export const FEATURES_ALL = binaryen.Features.All;

export const VERSION = '132';
