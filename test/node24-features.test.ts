/**
 * @fileoverview Instructions only Node 24's V8 runs pass through the instrumenter untouched, with
 * the memory accesses in their operands translated: GC (structs, arrays, i31, casts, br_on_*),
 * typed function references (call_ref), exnref exception handling (try_table, throw_ref), and
 * extended-const segment offsets. Each module runs on Node 24 (child process, dist/) plain and
 * under farmem with a 2-frame pool of 256-byte pages, and must agree. Skipped when
 * the Node 24 binary is missing (NODE24_MISSING says how to get it).
 */
import { describe, expect, it } from 'vitest';
import { wat } from './support/differential.js';
import { NODE24, NODE24_MISSING, runBothOnNode24 } from './support/node24.js';

const GC = `(module
  (memory (export "mem") 1)
  (type $pt (struct (field $x (mut i32)) (field $y (mut i64))))
  (type $arr (array (mut i32)))
  (type $fn (func (param i32) (result i32)))
  (global $keep (mut (ref null $pt)) (ref.null $pt))
  (func $twice (type $fn) (i32.mul (local.get 0) (i32.load (i32.const 4))))
  (elem declare func $twice)
  (func (export "setup") (i32.store (i32.const 4) (i32.const 2)) (i32.store (i32.const 300) (i32.const 41)))
  (func (export "struct") (result i32)
    (local $p (ref $pt))
    (local.set $p (struct.new $pt (i32.load (i32.const 300)) (i64.load (i32.const 296))))
    (struct.set $pt $x (local.get $p) (i32.add (struct.get $pt $x (local.get $p)) (i32.load (i32.const 4))))
    (global.set $keep (local.get $p))
    (i32.store (i32.const 500) (struct.get $pt $x (local.get $p)))
    (i32.load (i32.const 500)))
  (func (export "array") (param $n i32) (result i32)
    (local $a (ref $arr)) (local $i i32) (local $s i32)
    (local.set $a (array.new $arr (i32.load (i32.const 4)) (local.get $n)))
    (array.fill $arr (local.get $a) (i32.const 1) (i32.load (i32.const 300)) (i32.const 2))
    (array.set $arr (local.get $a) (i32.load (i32.const 4)) (i32.const 9))
    (array.copy $arr $arr (local.get $a) (i32.const 0) (array.new_fixed $arr 3 (i32.const 5) (i32.load (i32.const 300)) (i32.const 7)) (i32.const 0) (i32.const 3))
    (loop $l
      (local.set $s (i32.add (local.get $s) (array.get $arr (local.get $a) (local.get $i))))
      (i32.store (i32.shl (local.get $i) (i32.const 8)) (local.get $s))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (array.len (local.get $a)))))
    (local.get $s))
  (func (export "i31") (param $v i32) (result i32)
    (i31.get_s (ref.i31 (i32.add (local.get $v) (i32.load (i32.const 300))))))
  (func (export "cast") (param $v i32) (result i32)
    (local $any anyref)
    (local.set $any (if (result anyref) (local.get $v) (then (ref.i31 (i32.load (i32.const 4)))) (else (global.get $keep))))
    (block $isI31 (result (ref i31))
      (br_on_cast $isI31 anyref (ref i31) (local.get $any))
      (return (i32.add (ref.test (ref $pt) (ref.cast anyref (local.get $any))) (i32.const 100))))
    (i31.get_u))
  (func (export "callref") (param $v i32) (result i32)
    (call_ref $fn (i32.load (i32.const 300)) (ref.func $twice)))
)`;

const EXNREF = `(module
  (memory (export "mem") 1)
  (tag $e (param i32))
  (func $throw (param $v i32) (i32.store (i32.const 40) (local.get $v)) (throw $e (i32.load (i32.const 40))))
  (func (export "catch") (param $v i32) (result i32)
    (local.set $v (block $h (result i32)
      (try_table (catch $e $h) (call $throw (local.get $v)))
      (i32.const -1)))
    (i32.store offset=100 (i32.const 0) (i32.mul (local.get $v) (i32.const 3)))
    (i32.load (i32.const 100)))
  (func (export "rethrow") (param $v i32) (result i32)
    (local $x exnref)
    (local.set $v (block $outer (result i32)
      (try_table (catch $e $outer)
        (local.set $x (block $h (result exnref)
          (try_table (catch_all_ref $h) (call $throw (local.get $v)))
          (ref.null exn)))
        (i32.store (i32.const 200) (i32.const 5))
        (throw_ref (local.get $x)))
      (i32.const -2)))
    (i32.add (local.get $v) (i32.load (i32.const 200))))
)`;

/** GC arrays from a passive data segment that memory.init also copies into linear memory. */
const ARRAY_DATA = `(module
  (memory (export "mem") 1)
  (type $bytes (array (mut i8)))
  (data $text "farmem arrays from data")
  (func (export "newdata") (param $at i32) (param $n i32) (result i32)
    (local $a (ref $bytes))
    (local.set $a (array.new_data $bytes $text (local.get $at) (local.get $n)))
    (i32.store (i32.const 64) (array.get_u $bytes (local.get $a) (i32.const 0)))
    (i32.add (i32.load (i32.const 64)) (array.len (local.get $a))))
  (func (export "initdata") (param $at i32) (result i32)
    (local $a (ref $bytes))
    (local.set $a (array.new_default $bytes (i32.const 4)))
    (array.init_data $bytes $text (local.get $a) (i32.const 1) (local.get $at) (i32.const 3))
    (array.get_u $bytes (local.get $a) (i32.const 3)))
  (func (export "meminit") (param $at i32) (result i32)
    (memory.init $text (i32.const 300) (local.get $at) (i32.const 4))
    (i32.load (i32.const 300)))
)`;

const EXTENDED_CONST = `(module
  (import "env" "base" (global $b i32))
  (global $here i32 (i32.add (global.get $b) (i32.const 16)))
  (memory (export "mem") 1)
  (data (global.get $here) "via a defined global")
  (func (export "at") (param $a i32) (result i32) (i32.load8_u (local.get $a))))`;

if (NODE24 === null) console.warn(NODE24_MISSING);

describe.skipIf(NODE24 === null)('Node 24 instructions pass through', () => {
  it('GC structs, arrays, i31, casts, br_on_cast and call_ref agree with plain V8', async () => {
    const diff = await runBothOnNode24(wat(GC), [
      { fn: 'setup' }, { fn: 'struct' }, { fn: 'array', args: [12] }, { fn: 'array', args: [1] }, { fn: 'i31', args: [5] },
      { fn: 'cast', args: [1] }, { fn: 'cast', args: [0] }, { fn: 'callref', args: [0] },
    ], { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.instantiate).toBe('ok');
    expect(diff.original.results[3]).toMatch(/^trap RuntimeError/); // array.set past the end
    expect(diff.stats!.evictions).toBeGreaterThan(0);
  });

  it('try_table, catch_all_ref and throw_ref agree with plain V8', async () => {
    const diff = await runBothOnNode24(wat(EXNREF), [{ fn: 'catch', args: [7] }, { fn: 'rethrow', args: [9] }], { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results).toEqual(['num:4035000000000000(21)', 'num:402c000000000000(14)']);
  });

  it('array.new_data and array.init_data read the kept passive segments, memory.init the recorded copy', async () => {
    const diff = await runBothOnNode24(wat(ARRAY_DATA), [
      { fn: 'newdata', args: [0, 6] }, { fn: 'newdata', args: [7, 6] }, { fn: 'newdata', args: [20, 9] },
      { fn: 'initdata', args: [2] }, { fn: 'initdata', args: [21] }, { fn: 'meminit', args: [3] }, { fn: 'meminit', args: [21] },
    ], { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results.filter((r) => r.startsWith('trap'))).toHaveLength(3);
  });

  it('data segments placed by a defined global (extended const) are refused with FM1017 on Node 24', async () => {
    const diff = await runBothOnNode24(wat(EXTENDED_CONST), [{ fn: 'at', args: [0] }], { pageSize: 256, frames: 2 });
    expect(diff.original.instantiate).toMatch(/^error/); // needs env.base
    expect(diff.farmem.instantiate).toMatch(/FM1017: unsupported data segment offset: segment 0 starts at \(global\.get /);
  });
});
