/**
 * @fileoverview The test of a page-table check as one compare. A check fails when the page is
 * unmapped (`e == 0`), the access straddles the page end (`(ea & mask) > pageSize - bytes`), or
 * the address wrapped. Joined with `i32.or`, V8 materializes every condition as a boolean (setcc,
 * movzx, or) before a single jump: about ten instructions. Here the conditions instead replace the
 * in-page offset by `pageSize`, which fails the straddle compare, through selects (cmov):
 *
 *   (i32.gt_u
 *     (select (i32.const 4096)                                 ;; wrapped: fail
 *       (select (i32.and (local.get $ea) (i32.const 4095)) (i32.const 4096) (local.get $e))  ;; unmapped: fail
 *       (i32.lt_u (local.get $ea) (i32.const 8)))
 *     (i32.const 4092))                                         ;; 4096 - bytes
 *
 * which is and, test, cmov, cmp, cmov, cmp, ja: one jump, as many nodes as the `or` form (a
 * select and a constant per condition instead of an or), so instrumenting big modules costs the
 * same. A chain of `br_if`s, one per condition, ran as fast but needs two labelled blocks per
 * check: +13% instrumentation time on Yosys. Measured (`overhead` per-workload ratios, shared
 * machine, two interleaved runs each): graph 2.26–2.43 → 2.04–2.09x, sort 1.50 → 1.44x,
 * hashtable 1.30–1.32 → 1.20–1.30x with the br_if chain; the numbers of this form are in
 * docs/benchmarks.md.
 *
 * An access of one byte cannot straddle: its test stays `(i32.eqz e)`, or'ed with a wrap test.
 */
import { type ExpressionRef, type Module } from './binaryen.js';

/**
 * The slow-path condition: `e` the entry, `inPage` the access's offset in its page (null for one
 * byte), `limit` the largest offset that does not straddle, `failed` further conditions (i32
 * booleans) that each send the access to the slow path.
 */
export function slowTest(m: Module, pageSize: number, e: ExpressionRef, inPage: ExpressionRef | null, limit: number, failed: readonly ExpressionRef[]): ExpressionRef {
  if (inPage === null) return failed.reduce((a, c) => m.i32.or(a, c), m.i32.eqz(e));
  let v = m.select(e, inPage, m.i32.const(pageSize)); // e ? offset : pageSize
  for (const c of failed) v = m.select(c, m.i32.const(pageSize), v);
  return m.i32.gt_u(v, m.i32.const(limit));
}
