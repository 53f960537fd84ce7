/**
 * @fileoverview The instrumenter's optional optimizations: one table names each one, gives its
 * default and its description, and drives the API option (`instrument(bytes, { optimize: { chunk:
 * false } })`, `instantiate(..., { optimize })`), the CLI flags (`--no-chunk` on `farmem instrument`
 * and `farmem run`) and the instrumentation cache key. Every optimization is on by default; turning
 * one off gives the plain per-access translation for what it covers, so each can be measured alone
 * (`farmem bench overhead` ablation).
 */
import { OptionError } from '../errors.js';

export const OPTIMIZATIONS = {
  chunk: 'loop chunking: affine address streams of innermost loops are translated once per page, the loop runs check-free in between',
  outer: 'outer-loop chunking: a loop around inner loops gets a fast copy whose accesses before the first inner loop or fault use one translation per page; any fault inside the copy, inner loops included, drops it',
  predicate: 'loop predication: a chunked loop whose exit test is iv <u bound gets the page bound folded into that test (limit = min(bound, iv at the next page crossing), computed once per page), so its fast loop has no countdown',
  share: 'shared translations: accesses off one base local with different constant offsets, with no safepoint between them, share one page-table check',
  outline: 'out-of-line slow paths: in an innermost loop, a failed check before the iteration\'s first side effect leaves the loop and re-runs the iteration on the ordinary body, so the loop holds no fault call',
  straddle: 'in-wasm slow path: a failed check first tries a wasm helper that serves an access straddling into the adjacent frame (or a page already mapped) without calling the host',
} as const;

export type OptimizationName = keyof typeof OPTIMIZATIONS;
export type Optimizations = { readonly [K in OptimizationName]: boolean };

export const OPTIMIZATION_NAMES = Object.keys(OPTIMIZATIONS) as OptimizationName[];

/** Every optimization on. */
export const ALL_OPTIMIZATIONS: Optimizations = Object.freeze(
  Object.fromEntries(OPTIMIZATION_NAMES.map((n) => [n, true])) as Record<OptimizationName, boolean>,
);

/**
 * Checks an `optimize` option (an object of booleans keyed by optimization name) and fills in the
 * defaults. `where` names the call in the message (`instrument()`, `instantiate()`).
 */
export function resolveOptimizations(value: unknown, where: string): Optimizations {
  if (value === undefined) return ALL_OPTIMIZATIONS;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OptionError(`"optimize" in ${where} must be an object like { ${OPTIMIZATION_NAMES[0]}: false }`);
  }
  const out: Record<string, boolean> = { ...ALL_OPTIMIZATIONS };
  for (const [key, flag] of Object.entries(value)) {
    if (!(key in OPTIMIZATIONS)) {
      throw new OptionError(`Invalid optimization in ${where}: "optimize.${key}"; known: ${OPTIMIZATION_NAMES.join(', ')}`);
    }
    if (typeof flag !== 'boolean') throw new OptionError(`"optimize.${key}" in ${where} must be a boolean, got ${typeof flag}`);
    out[key] = flag;
  }
  return out as Optimizations;
}

/** A stable string of the switched-off optimizations, for cache keys ("" when all are on). */
export function optimizationsKey(o: Optimizations): string {
  return OPTIMIZATION_NAMES.filter((n) => o[n] === false).map((n) => `no-${n}`).join(',');
}
