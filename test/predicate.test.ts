/**
 * @fileoverview Loop predication (option `predicate`, host/instrument/passes/chunk.ts): a chunked
 * loop whose exit test is `iv <u B` runs its fast loop on `iv <u limit`, limit = min(B, iv at the
 * next page crossing), with no countdown. Against V8 with a 2–3 frame pool at every page size:
 * an iv that wraps past 2^32 mid-loop (the limit is capped so iv never wraps inside the fast
 * loop), a constant bound, the `B >u iv` form, a loop entered with iv ≥ B, a loop leaving by a
 * `br_if` out of its body, a stream of another iv than the tested one, and a host call that stops
 * the fast loop mid-chunk (the original test then tells the page's end from the loop's).
 */
import { describe, expect, it } from 'vitest';
import { instrument } from '../host/instrument/instrument.js';
import { runBoth, wat, type Call } from './support/differential.js';
import { embeddedSuite } from './support/loop-suites.js';

const INC = (v: string, by = 1) => `(local.set ${v} (i32.add (local.get ${v}) (i32.const ${by})))`;
const LOOP = (cond: string, body: string) => `(loop $L (if ${cond} (then ${body} (br $L))))`;

const MODULE = wat(`(module
  (import "env" "tick" (func $tick (param i32)))
  (memory (export "mem") 4 8)

  ;; i runs from 'i' up by 4 with B = 0xffffffff, wrapping past 2^32; 'n' iterations at most
  (func (export "wrapiv") (param $base i32) (param $i i32) (param $n i32) (result i32) (local $t i32) (local $s i32)
    (block $x
      ${LOOP('(i32.lt_u (local.get $i) (i32.const -1))', `
        (br_if $x (i32.eq (local.get $t) (local.get $n)))
        (local.set $s (i32.add (i32.rotl (local.get $s) (i32.const 1)) (i32.load (i32.add (local.get $base) (local.get $i)))))
        (i32.store (i32.add (local.get $base) (local.get $i)) (local.get $t))
        ${INC('$t')}
        ${INC('$i', 4)}`)})
    (local.get $s))

  ;; constant bound, B >u iv form, the stream on p advancing with the tested iv t
  (func (export "constb") (param $p i32) (result i32) (local $t i32) (local $s i32)
    ${LOOP('(i32.gt_u (i32.const 30000) (local.get $t))', `
      (local.set $s (i32.xor (i32.mul (local.get $s) (i32.const 31)) (i32.load16_u offset=2 (local.get $p))))
      ${INC('$p', 6)}
      ${INC('$t')}`)}
    (local.get $s))

  ;; a host call every 100 iterations stops the fast loop mid-chunk
  (func (export "ticks") (param $base i32) (param $i i32) (param $n i32) (result i32) (local $s i32)
    ${LOOP('(i32.lt_u (local.get $i) (local.get $n))', `
      (i32.store (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2))) (i32.add (local.get $s) (local.get $i)))
      (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 100))) (then (call $tick (local.get $i))))
      (local.set $s (i32.add (local.get $s) (i32.load offset=4 (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2))))))
      ${INC('$i')}`)}
    (local.get $s))
)`);

const END = 4 * 65536;
const CALLS: Call[] = [
  { fn: 'ticks', args: [0, 0, END / 4 - 1] },
  { fn: 'wrapiv', args: [0x1000, -0x2000, 4000] }, // i wraps past 2^32 after 2048 iterations
  { fn: 'wrapiv', args: [0x1000, -0x1002, 3000] }, // unaligned: i passes 2^32 - 4 … then wraps
  { fn: 'wrapiv', args: [0x3f000, -0x2000, 70000] }, // runs past the end of memory: traps
  { fn: 'constb', args: [0] },
  { fn: 'constb', args: [END - 6 * 30000 + 100] }, // runs past the end: traps
  { fn: 'ticks', args: [0, 100, 100] }, // entered with i ≥ B: no iteration
  { fn: 'ticks', args: [0, 5, 4096 * 3 + 7] },
  { fn: 'ticks', args: [0, 0, END / 4] }, // the last offset=4 load is past the end: traps
];

describe('loop predication', () => {
  it('predicates every loop of the test module', () => {
    expect(instrument(MODULE, { pageSize: 4096 }).counts.predicatedLoops).toBe(3);
    expect(instrument(MODULE, { pageSize: 4096, optimize: { predicate: false } }).counts.predicatedLoops).toBe(0);
  });

  embeddedSuite(MODULE, CALLS, [2, 3]);

  it('matches V8 with predication off', async () => {
    const diff = await runBoth(MODULE, CALLS, { pageSize: 4096, frames: 3, optimize: { predicate: false } });
    expect(diff.mismatches).toEqual([]);
  });
});
