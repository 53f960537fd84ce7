/**
 * @fileoverview Instructions that do not touch linear memory pass through the instrumenter
 * untouched, while the memory accesses in their operands are still translated: table.* and
 * elem.drop, reference types, legacy exception handling, tail calls (Node 20 runs them; GC,
 * try_table and throw_ref run on Node 24 in node24-features.test.ts). Also: data segments placed
 * by globals, modules that import their memory, and every refusal is an Error with a code.
 * Every case runs on plain V8 and under farmem with a 2-frame pool of 256-byte pages, and must agree.
 */
import { describe, expect, it } from 'vitest';
import { instrument } from '../host/index.js';
import { InstrumentError } from '../host/errors.js';
import { NODE20_FEATURES, runBoth, wat, type Call } from './support/differential.js';

const w = (text: string) => wat(text, NODE20_FEATURES);
const tiny = { pageSize: 256, frames: 2 } as const;

/** Memory 0..: cells read by the table operands, so every operand is itself a translated load. */
const TABLES = `(module
  (memory (export "mem") 1)
  (data (i32.const 0) "\\01\\00\\00\\00\\02\\00\\00\\00\\03\\00\\00\\00\\00\\01\\00\\00")
  (type $v (func (result i32)))
  (table $t 8 16 funcref)
  (table $u 8 externref)
  (elem $e func $a $b $c)
  (elem (table $t) (i32.const 0) func $a)
  (func $a (result i32) (i32.load (i32.const 0)))
  (func $b (result i32) (i32.load (i32.const 4)))
  (func $c (result i32) (i32.load offset=250 (i32.const 8)))
  (func (export "init") (param $d i32)
    (table.init $t $e (local.get $d) (i32.load (i32.const 0)) (i32.load (i32.const 4))))
  (func (export "copy") (param $d i32) (param $s i32)
    (table.copy $t $t (local.get $d) (local.get $s) (i32.load (i32.const 0))))
  (func (export "fill") (param $d i32) (param $n i32)
    (table.fill $t (local.get $d) (ref.func $c) (local.get $n))
    (i32.store offset=300 (i32.const 0) (table.size $t)))
  (func (export "grow") (result i32) (table.grow $t (ref.null func) (i32.load (i32.const 4))))
  (func (export "call") (param $i i32) (result i32) (call_indirect $t (type $v) (local.get $i)))
  (func (export "set") (param $i i32) (table.set $t (local.get $i) (table.get $t (i32.load (i32.const 0)))))
  (func (export "isnull") (param $i i32) (result i32) (ref.is_null (table.get $t (local.get $i))))
  (func (export "ext") (param $x externref) (result i32)
    (table.set $u (i32.load (i32.const 0)) (local.get $x))
    (ref.is_null (table.get $u (i32.const 1))))
  (func (export "drop") (elem.drop $e))
)`;

const EH_TAIL = `(module
  (memory (export "mem") 1)
  (tag $boom (param i32))
  (type $r (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $count $loop)
  (func $thrower (param $x i32)
    (i32.store offset=200 (i32.const 0) (local.get $x))
    (if (i32.gt_u (local.get $x) (i32.const 2)) (then (throw $boom (i32.load offset=200 (i32.const 0))))))
  (func (export "catch") (param $x i32) (result i32)
    (try (result i32)
      (do (call $thrower (local.get $x)) (i32.load offset=200 (i32.const 0)))
      (catch $boom (local.set $x) (i32.store offset=400 (i32.const 0) (local.get $x)) (i32.add (i32.load offset=400 (i32.const 0)) (i32.const 1000)))))
  (func (export "rethrow") (param $x i32) (result i32)
    (try (result i32)
      (do (try (do (call $thrower (local.get $x))) (catch_all (i32.store (i32.const 600) (i32.const 7)) (rethrow 0))) (i32.const 0))
      (catch_all (i32.load (i32.const 600)))))
  (func $count (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.load (i32.const 300)))
      (else (i32.store (i32.const 300) (i32.add (i32.load (i32.const 300)) (local.get $n)))
            (return_call $count (i32.sub (local.get $n) (i32.const 1))))))
  (func $loop (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.load (i32.const 300)))
      (else (i32.store (i32.const 300) (i32.add (i32.load (i32.const 300)) (i32.const 1)))
            (return_call_indirect (type $r) (i32.sub (local.get $n) (i32.const 1)) (i32.and (local.get $n) (i32.const 1))))))
  (func (export "tail") (param $n i32) (result i32) (call $count (local.get $n)))
  (func (export "tailIndirect") (param $n i32) (result i32) (call $loop (local.get $n)))
)`;

async function agree(text: string, calls: Call[], options: Parameters<typeof runBoth>[2] = tiny) {
  const diff = await runBoth(w(text), calls, options);
  expect(diff.mismatches).toEqual([]);
  expect(diff.original.instantiate).toBe('ok');
  return diff;
}

describe('non-memory instructions pass through', () => {
  it('table.init/copy/fill/grow/size/get/set, elem.drop and externref tables, with translated operands', async () => {
    const calls: Call[] = [
      { fn: 'init', args: [2] }, { fn: 'call', args: [2] }, { fn: 'call', args: [3] }, { fn: 'copy', args: [5, 2] },
      { fn: 'call', args: [5] }, { fn: 'fill', args: [6, 2] }, { fn: 'call', args: [7] }, { fn: 'grow' },
      { fn: 'set', args: [9] }, { fn: 'isnull', args: [9] }, { fn: 'isnull', args: [4] }, { fn: 'ext', args: [{}] },
      { fn: 'ext', args: [null] }, { fn: 'fill', args: [20, 1] }, { fn: 'drop' }, { fn: 'init', args: [0] }, { fn: 'call', args: [99] },
    ];
    const diff = await agree(TABLES, calls);
    expect(diff.original.results.filter((r) => r.startsWith('trap'))).toHaveLength(3); // fill, init after drop, call past the end
    expect(diff.stats!.majorFaults).toBeGreaterThan(0);
  });

  it('exception handling (try/catch/rethrow) and tail calls (return_call, return_call_indirect)', async () => {
    const diff = await agree(EH_TAIL, [
      { fn: 'catch', args: [1] }, { fn: 'catch', args: [5] }, { fn: 'rethrow', args: [9] }, { fn: 'rethrow', args: [0] },
      { fn: 'tail', args: [100000] }, { fn: 'tailIndirect', args: [100001] },
    ]);
    expect(diff.original.results[1]).toBe(diff.farmem.results[1]);
  });
});

describe('data segments placed by globals', () => {
  const MOD = `(module
    (import "env" "base" (global $base i32))
    (memory (export "mem") 1)
    (data (global.get $base) "imported-base")
    (data (i32.const 900) "const")
    (func (export "at") (param $a i32) (result i32) (i32.load8_u (local.get $a))))`;
  const calls: Call[] = [{ fn: 'at', args: [300] }, { fn: 'at', args: [900] }];

  it('takes an imported global from a number or a WebAssembly.Global, and traps out of bounds like V8', async () => {
    for (const base of [300 as unknown, new WebAssembly.Global({ value: 'i32' }, 250), 65530]) {
      const diff = await runBoth(w(MOD), calls, { ...tiny, imports: () => ({ env: { base } }) as WebAssembly.Imports });
      expect(diff.mismatches).toEqual([]);
    }
    const oob = await runBoth(w(MOD), calls, { ...tiny, imports: () => ({ env: { base: 65530 } }) });
    expect(oob.farmem.instantiate).toBe('error RuntimeError: data segment is out of bounds');
  });
});

describe('a module that imports its memory', () => {
  const MOD = `(module
    (import "env" "mem" (memory 1 8))
    (export "mem" (memory 0))
    (data (i32.const 100000) "past the declared minimum")
    (func (export "at") (param $a i32) (result i32) (i32.load (local.get $a)))
    (func (export "put") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
    (func (export "size") (result i32) (memory.size))
    (func (export "grow") (param $n i32) (result i32) (memory.grow (local.get $n))))`;
  const calls: Call[] = [
    { fn: 'at', args: [100000] }, { fn: 'at', args: [4096] }, { fn: 'size' }, { fn: 'put', args: [190000, 77] },
    { fn: 'grow', args: [1] }, { fn: 'at', args: [190000] }, { fn: 'size' }, { fn: 'grow', args: [9] },
  ];

  it('runs with the imported memory\'s size and contents, where V8 accepts it', async () => {
    const imports = () => {
      const mem = new WebAssembly.Memory({ initial: 3, maximum: 8 });
      new Uint32Array(mem.buffer)[1024] = 0xfeedbeef; // prefilled by the host: part of the initial image
      return { env: { mem } };
    };
    const diff = await runBoth(w(MOD), calls, { ...tiny, imports });
    expect(diff.mismatches).toEqual([]);
    expect(diff.farmem.results[1]).toBe(diff.original.results[1]);
  });

  it('fails to link exactly as V8 does when the import is wrong', async () => {
    const wrong: unknown[] = [undefined, 5, new WebAssembly.Memory({ initial: 1 }), new WebAssembly.Memory({ initial: 3 }), new WebAssembly.Memory({ initial: 1, maximum: 9 })];
    for (const mem of wrong) {
      const diff = await runBoth(w(MOD), calls, { ...tiny, imports: () => ({ env: { mem } }) as WebAssembly.Imports });
      expect(diff.original.instantiate).toMatch(/^error (LinkError|RuntimeError)/);
      expect(diff.mismatches).toEqual([]);
    }
  });
});

describe('refusals are Errors with codes', () => {
  it('a segment offset binaryen.js cannot read no longer escapes as a plain object', () => {
    const mod = `(module (import "env" "g" (global $g i32)) (memory 1) (data (global.get $g) "hi"))`;
    expect(() => instrument(w(mod))).not.toThrow();
    for (const bad of [new Uint8Array([1, 2, 3]), w('(module (memory 1) (memory 1))').slice(0, 12), new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 10, 3, 1, 1, 0xff])]) {
      let thrown: unknown;
      try {
        instrument(bad);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(InstrumentError);
      expect((thrown as InstrumentError).code).toMatch(/^FM10\d\d$/);
    }
  });
});
