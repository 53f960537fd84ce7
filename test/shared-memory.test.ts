/**
 * @fileoverview Shared memory (threads) on one guest thread, spec-test style: the assertions of the
 * threads proposal's `atomic.wast` (every atomic load, store, read-modify-write and cmpxchg at every
 * width, on a memory declared `shared`), plus `memory.atomic.wait32/64` (not-equal, timed-out, traps)
 * and `memory.atomic.notify` (no waiters, traps), and plain stores straddling pages, which on shared
 * memory are flushed from the bounce buffer at once. Each sequence runs unmodified on V8 and
 * instrumented under farmem with one- and two-frame pools, and must agree on every result, trap and
 * the final memory. Several guest threads: guest-threads.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZES, runBoth, wat, type Call } from './support/differential.js';

const INIT = 0x1111111111111111n;

type Width = { readonly type: 'i32' | 'i64'; readonly suffix: string; readonly bits: number };
const WIDTHS: Width[] = [
  { type: 'i32', suffix: '', bits: 32 }, { type: 'i64', suffix: '', bits: 64 },
  { type: 'i32', suffix: '8_u', bits: 8 }, { type: 'i32', suffix: '16_u', bits: 16 },
  { type: 'i64', suffix: '8_u', bits: 8 }, { type: 'i64', suffix: '16_u', bits: 16 }, { type: 'i64', suffix: '32_u', bits: 32 },
];
const RMW = ['add', 'sub', 'and', 'or', 'xor', 'xchg'];

const name = (w: Width) => `${w.type}_${w.bits}${w.suffix ? 'u' : ''}`;
const rmwName = (w: Width, op: string) => (w.suffix ? `${w.type}.atomic.rmw${w.bits}.${op}_u` : `${w.type}.atomic.rmw.${op}`);
const cmpxchgName = (w: Width) => (w.suffix ? `${w.type}.atomic.rmw${w.bits}.cmpxchg_u` : `${w.type}.atomic.rmw.cmpxchg`);
const loadName = (w: Width) => `${w.type}.atomic.load${w.suffix ? `${w.bits}_u` : ''}`;
const storeName = (w: Width) => `${w.type}.atomic.store${w.suffix ? String(w.bits) : ''}`;

/** The atomic.wast module, extended with wait/notify and straddling plain stores. */
function module(): Uint8Array {
  const funcs: string[] = [];
  for (const w of WIDTHS) {
    const n = name(w);
    funcs.push(`(func (export "load_${n}") (param $a i32) (result ${w.type}) (${loadName(w)} (local.get $a)))`);
    funcs.push(`(func (export "store_${n}") (param $a i32) (param $v ${w.type}) (${storeName(w)} (local.get $a) (local.get $v)))`);
    for (const op of RMW) {
      funcs.push(`(func (export "${op}_${n}") (param $a i32) (param $v ${w.type}) (result ${w.type}) (${rmwName(w, op)} (local.get $a) (local.get $v)))`);
    }
    funcs.push(`(func (export "cmpxchg_${n}") (param $a i32) (param $e ${w.type}) (param $v ${w.type}) (result ${w.type}) (${cmpxchgName(w)} (local.get $a) (local.get $e) (local.get $v)))`);
  }
  return wat(`(module
    (memory (export "mem") 2 2 shared)
    (func (export "init") (param $a i32) (param $v i64) (i64.store (local.get $a) (local.get $v)))
    (func (export "load64") (param $a i32) (result i64) (i64.load (local.get $a)))
    (func (export "wait32") (param $a i32) (param $e i32) (param $t i64) (result i32) (memory.atomic.wait32 (local.get $a) (local.get $e) (local.get $t)))
    (func (export "wait64") (param $a i32) (param $e i64) (param $t i64) (result i32) (memory.atomic.wait64 offset=8 (local.get $a) (local.get $e) (local.get $t)))
    (func (export "notify") (param $a i32) (param $n i32) (result i32) (memory.atomic.notify (local.get $a) (local.get $n)))
    (func (export "store16") (param $a i32) (param $v i64) (v128.store (local.get $a) (i64x2.splat (local.get $v))))
    (func (export "store_lane") (param $a i32) (param $v i64) (v128.store64_lane 1 (local.get $a) (i64x2.splat (local.get $v))))
    (func (export "store32_off") (param $a i32) (param $v i32) (i32.store offset=3 (local.get $a) (local.get $v)))
    ${funcs.join('\n    ')})`);
}

const arg = (w: Width, v: bigint) => (w.type === 'i64' ? v : Number(BigInt.asIntN(32, v)));

/** atomic.wast's sequence: init 0x1111…, apply the op, check the returned old value and the memory. */
function atomicCalls(at: number): Call[] {
  const calls: Call[] = [];
  for (const w of WIDTHS) {
    const n = name(w);
    const check = { fn: 'load64', args: [at] };
    calls.push({ fn: 'init', args: [at, INIT] }, { fn: `load_${n}`, args: [at] });
    calls.push({ fn: `store_${n}`, args: [at, arg(w, 0x4243444546474849n)] }, check);
    for (const op of RMW) calls.push({ fn: 'init', args: [at, INIT] }, { fn: `${op}_${n}`, args: [at, arg(w, 0x1010101010101010n)] }, check);
    calls.push({ fn: 'init', args: [at, INIT] }, { fn: `cmpxchg_${n}`, args: [at, arg(w, 0n), arg(w, 0x4242424242424242n)] }, check);
    calls.push({ fn: `cmpxchg_${n}`, args: [at, arg(w, INIT), arg(w, 0x4242424242424242n)] }, check);
    // Misaligned (traps for every width above 8 bits) and out of bounds (traps).
    calls.push({ fn: `add_${n}`, args: [at + 1, arg(w, 1n)] }, { fn: `load_${n}`, args: [131072 - w.bits / 8 + 1] });
    calls.push({ fn: `store_${n}`, args: [131072, arg(w, 1n)] }, { fn: `cmpxchg_${n}`, args: [131070, arg(w, 0n), arg(w, 1n)] });
  }
  return calls;
}

const waitNotifyCalls: Call[] = [
  { fn: 'init', args: [64, 0x0000000700000005n] },
  { fn: 'wait32', args: [64, 4, 0n] }, // not-equal
  { fn: 'wait32', args: [64, 5, 0n] }, // timed-out at once
  { fn: 'wait32', args: [64, 5, 2_000_000n] }, // timed-out after 2 ms
  { fn: 'wait64', args: [56, 0x0000000700000005n, 1000n] },
  { fn: 'wait64', args: [56, 0x0000000700000006n, 1000n] },
  { fn: 'wait32', args: [66, 5, 0n] }, // unaligned
  { fn: 'wait64', args: [60, 0n, 0n] }, // unaligned for 8 bytes
  { fn: 'wait32', args: [131072, 0, 0n] }, // out of bounds
  { fn: 'wait64', args: [131064, 0n, 0n] }, // 131064 + 8 is out of bounds
  { fn: 'wait32', args: [0xfffffffc, 0, 0n] },
  { fn: 'notify', args: [64, 1] }, { fn: 'notify', args: [64, -1] }, { fn: 'notify', args: [65, 1] },
  { fn: 'notify', args: [131072, 1] }, { fn: 'notify', args: [131068, 0] },
];

/** Plain stores across a page boundary: shared memory flushes the bounce buffer right after the store. */
function straddleCalls(pageSize: number): Call[] {
  const calls: Call[] = [];
  for (let d = 1; d < 16; d++) {
    const at = pageSize - d;
    calls.push({ fn: 'init', args: [at, BigInt(d) * 0x0102030405060708n] }, { fn: 'load64', args: [at] });
    calls.push({ fn: 'store16', args: [at, BigInt(d) * 0x1111n] }, { fn: 'load64', args: [at] }, { fn: 'load64', args: [at + 8] });
    calls.push({ fn: 'store_lane', args: [at, -BigInt(d)] }, { fn: 'store32_off', args: [at - 3, d * 0x01010101] }, { fn: 'load64', args: [at - 4] });
  }
  return calls;
}

describe('shared memory, one guest thread: original vs farmem', () => {
  const wasm = module();
  for (const pageSize of PAGE_SIZES) {
    for (const frames of [1, 2]) {
      it(`atomic.wast assertions, ${pageSize}-byte pages, ${frames} frame(s)`, async () => {
        const at = pageSize === 65536 ? 65536 - 8 : pageSize * 3 - 8; // last word of a page
        const calls = [...atomicCalls(0), ...atomicCalls(at)];
        const diff = await runBoth(wasm, calls, { pageSize, frames });
        expect(diff.mismatches).toEqual([]);
        expect(diff.original.results.filter((r) => r.startsWith('trap')).length).toBeGreaterThan(20);
        expect(diff.stats!.majorFaults).toBeGreaterThan(0);
      });
      it(`wait/notify and straddling stores, ${pageSize}-byte pages, ${frames} frame(s)`, async () => {
        const calls = [...waitNotifyCalls, ...straddleCalls(pageSize)];
        const diff = await runBoth(wasm, calls, { pageSize, frames }); // 'end': a snapshot per call would flush too
        expect(diff.mismatches).toEqual([]);
        expect(diff.original.results.slice(1, 6)).toEqual(['num:3ff0000000000000(1)', 'num:4000000000000000(2)', 'num:4000000000000000(2)', 'num:4000000000000000(2)', 'num:3ff0000000000000(1)']);
        expect(diff.stats!.straddles).toBeGreaterThan(0);
      });
    }
  }
});

describe('shared memories farmem still refuses', () => {
  // Built by hand (binaryen would need flags): a shared memory64, and a shared memory beside a second one.
  const module = (memories: number[][]) => Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 1 + memories.flat().length, memories.length, ...memories.flat()]);
  it('a shared memory64, and a shared memory among several, get FM1012 naming the feature', async () => {
    const { instrument } = await import('../host/index.js');
    for (const bytes of [module([[0x07, 1, 1]]), module([[0x03, 1, 1], [0x00, 1]])]) {
      let err: unknown;
      try { instrument(bytes, { pageSize: 4096 }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'FM1012', message: expect.stringMatching(/shared memory64 .* or a shared memory among several memories/) });
    }
  });
});
