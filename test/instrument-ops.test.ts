/**
 * @fileoverview Instruction-level differential tests of the instrumenter and the embedded runtime:
 * every rewritten instruction kind (loads/stores of every width and sign, SIMD loads/stores/lanes/
 * splats/extends/zero-loads, atomics, memory.size/grow/copy/fill/init, data.drop) runs unmodified on
 * V8 and instrumented under farmem with a two-frame pool, at page sizes 256, 4096 and 65536, and
 * must agree on every result, every trap (class and message) and the final memory.
 *
 * Addresses probed per access width w: inside a page, every misalignment straddling a page
 * boundary (with the straddled pages evicted between accesses), the last valid byte and one past
 * it, and offset overflow (`offset=0xFFFFFFFF`, addresses near 2^32 plus an offset).
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZES, runBoth, wat, type Call, type DiffOptions } from './support/differential.js';

/** Guest memory for the access tests: 3 wasm pages, so 64 KiB pages also have boundaries. */
const MEM_PAGES = 3;
const MEM = MEM_PAGES * 65536;

type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128';

/** One access instruction: how to call it from an export, and its width in bytes. */
interface Op {
  readonly name: string;
  readonly bytes: number;
  /** Extra params after the address (v128 operands are passed as two i64 halves). */
  readonly params: readonly ValType[];
  readonly result: ValType | null;
  /** The instruction applied to `addr` (WAT) and `off`, using params `$p0..`. */
  readonly body: (addr: string, off: number) => string;
  /** Extra arguments for a call at `addr`, from a counter. */
  readonly args: (addr: number, n: number) => unknown[];
}

const V128_FROM = (lo: string, hi: string) => `(i64x2.replace_lane 1 (i64x2.splat ${lo}) ${hi})`;

function jsArg(type: ValType, n: number): unknown[] {
  switch (type) {
    case 'i32': return [(Math.imul(n + 1, 0x9e3779b1) ^ 0x5a5a) | 0];
    case 'i64': return [BigInt.asIntN(64, BigInt(Math.imul(n + 3, 0x85ebca6b)) * 0x100000001n + 0x0123456789n)];
    case 'f32': return [n % 7 === 3 ? NaN : (n * 1.25 - 3) / 7];
    case 'f64': return [n % 7 === 3 ? -0 : (n * 3.5 - 11) / 13];
    case 'v128': return [...jsArg('i64', n), ...jsArg('i64', n + 101)];
  }
}

function load(name: string, bytes: number, result: ValType): Op {
  return { name, bytes, params: [], result, body: (a, off) => `(${name} offset=${off} ${a})`, args: () => [] };
}
function store(name: string, bytes: number, value: ValType): Op {
  const v = value === 'v128' ? V128_FROM('(local.get $p0)', '(local.get $p1)') : '(local.get $p0)';
  return { name, bytes, params: [value], result: null, body: (a, off) => `(${name} offset=${off} ${a} ${v})`, args: (_a, n) => jsArg(value, n) };
}
/** An atomic RMW returning the old value. */
function rmw(name: string, bytes: number, type: 'i32' | 'i64'): Op {
  return { name, bytes, params: [type], result: type, body: (a, off) => `(${name} offset=${off} ${a} (local.get $p0))`, args: (_a, n) => jsArg(type, n) };
}
/**
 * cmpxchg: expected is either the value in memory (loaded first by a plain load of the same width,
 * so the exchange happens) or an unrelated value (it does not), chosen by the call counter.
 */
function cmpxchg(name: string, bytes: number, type: 'i32' | 'i64', plainLoad: string): Op {
  return {
    name, bytes, params: [type, type, 'i32'], result: type,
    body: (a, off) => `(${name} offset=${off} ${a}
        (if (result ${type}) (local.get $p2) (then (${plainLoad} offset=${off} ${a})) (else (local.get $p0)))
        (local.get $p1))`,
    args: (_a, n) => [...jsArg(type, n), ...jsArg(type, n + 7), n & 1],
  };
}
function laneLoad(name: string, bytes: number, lane: number): Op {
  return {
    name, bytes, params: ['v128'], result: 'v128',
    body: (a, off) => `(${name} offset=${off} ${lane} ${a} ${V128_FROM('(local.get $p0)', '(local.get $p1)')})`,
    args: (_a, n) => jsArg('v128', n),
  };
}
function laneStore(name: string, bytes: number, lane: number): Op {
  return {
    name, bytes, params: ['v128'], result: null,
    body: (a, off) => `(${name} offset=${off} ${lane} ${a} ${V128_FROM('(local.get $p0)', '(local.get $p1)')})`,
    args: (_a, n) => jsArg('v128', n),
  };
}

const OPS: Op[] = [
  load('i32.load', 4, 'i32'), load('i32.load8_s', 1, 'i32'), load('i32.load8_u', 1, 'i32'),
  load('i32.load16_s', 2, 'i32'), load('i32.load16_u', 2, 'i32'),
  load('i64.load', 8, 'i64'), load('i64.load8_s', 1, 'i64'), load('i64.load8_u', 1, 'i64'),
  load('i64.load16_s', 2, 'i64'), load('i64.load16_u', 2, 'i64'), load('i64.load32_s', 4, 'i64'), load('i64.load32_u', 4, 'i64'),
  load('f32.load', 4, 'f32'), load('f64.load', 8, 'f64'),
  load('v128.load', 16, 'v128'),
  load('v128.load8x8_s', 8, 'v128'), load('v128.load8x8_u', 8, 'v128'), load('v128.load16x4_s', 8, 'v128'),
  load('v128.load16x4_u', 8, 'v128'), load('v128.load32x2_s', 8, 'v128'), load('v128.load32x2_u', 8, 'v128'),
  load('v128.load8_splat', 1, 'v128'), load('v128.load16_splat', 2, 'v128'), load('v128.load32_splat', 4, 'v128'),
  load('v128.load64_splat', 8, 'v128'), load('v128.load32_zero', 4, 'v128'), load('v128.load64_zero', 8, 'v128'),
  laneLoad('v128.load8_lane', 1, 13), laneLoad('v128.load16_lane', 2, 5), laneLoad('v128.load32_lane', 4, 2), laneLoad('v128.load64_lane', 8, 1),
  store('i32.store', 4, 'i32'), store('i32.store8', 1, 'i32'), store('i32.store16', 2, 'i32'),
  store('i64.store', 8, 'i64'), store('i64.store8', 1, 'i64'), store('i64.store16', 2, 'i64'), store('i64.store32', 4, 'i64'),
  store('f32.store', 4, 'f32'), store('f64.store', 8, 'f64'), store('v128.store', 16, 'v128'),
  laneStore('v128.store8_lane', 1, 9), laneStore('v128.store16_lane', 2, 3), laneStore('v128.store32_lane', 4, 1), laneStore('v128.store64_lane', 8, 1),
  load('i32.atomic.load', 4, 'i32'), load('i32.atomic.load8_u', 1, 'i32'), load('i32.atomic.load16_u', 2, 'i32'),
  load('i64.atomic.load', 8, 'i64'), load('i64.atomic.load8_u', 1, 'i64'), load('i64.atomic.load16_u', 2, 'i64'), load('i64.atomic.load32_u', 4, 'i64'),
  store('i32.atomic.store', 4, 'i32'), store('i32.atomic.store8', 1, 'i32'), store('i32.atomic.store16', 2, 'i32'),
  store('i64.atomic.store', 8, 'i64'), store('i64.atomic.store8', 1, 'i64'), store('i64.atomic.store16', 2, 'i64'), store('i64.atomic.store32', 4, 'i64'),
  ...['add', 'sub', 'and', 'or', 'xor', 'xchg'].flatMap((op) => [
    rmw(`i32.atomic.rmw.${op}`, 4, 'i32'), rmw(`i32.atomic.rmw8.${op}_u`, 1, 'i32'), rmw(`i32.atomic.rmw16.${op}_u`, 2, 'i32'),
    rmw(`i64.atomic.rmw.${op}`, 8, 'i64'), rmw(`i64.atomic.rmw8.${op}_u`, 1, 'i64'), rmw(`i64.atomic.rmw16.${op}_u`, 2, 'i64'),
    rmw(`i64.atomic.rmw32.${op}_u`, 4, 'i64'),
  ]),
  cmpxchg('i32.atomic.rmw.cmpxchg', 4, 'i32', 'i32.load'), cmpxchg('i32.atomic.rmw8.cmpxchg_u', 1, 'i32', 'i32.load8_u'),
  cmpxchg('i32.atomic.rmw16.cmpxchg_u', 2, 'i32', 'i32.load16_u'), cmpxchg('i64.atomic.rmw.cmpxchg', 8, 'i64', 'i64.load'),
  cmpxchg('i64.atomic.rmw8.cmpxchg_u', 1, 'i64', 'i64.load8_u'), cmpxchg('i64.atomic.rmw16.cmpxchg_u', 2, 'i64', 'i64.load16_u'),
  cmpxchg('i64.atomic.rmw32.cmpxchg_u', 4, 'i64', 'i64.load32_u'),
  { name: 'memory.atomic.notify', bytes: 4, params: ['i32'], result: 'i32', body: (a, off) => `(memory.atomic.notify offset=${off} ${a} (local.get $p0))`, args: () => [1] },
];

const isAtomic = (op: Op) => op.name.includes('atomic');
const isAtomicWrite = (op: Op) => isAtomic(op) && !op.name.includes('.load') && op.name !== 'memory.atomic.notify';

/** Offsets tried on each op besides 0 (each becomes its own export). */
const OFFSETS = [1, 255, 4096, 65535, 0x7fff_ffff, 0xffff_ffff];

function resultDecl(type: ValType | null): string {
  if (type === null) return '';
  return type === 'v128' ? '(result i64 i64)' : `(result ${type})`;
}
function paramDecls(params: readonly ValType[]): string {
  let i = 0;
  return params.map((t) => (t === 'v128' ? `(param $p${i++} i64) (param $p${i++} i64)` : `(param $p${i++} ${t})`)).join(' ');
}
function wrapResult(type: ValType | null, expr: string): string {
  if (type === 'v128') return `(local.set $v ${expr}) (i64x2.extract_lane 0 (local.get $v)) (i64x2.extract_lane 1 (local.get $v))`;
  return expr;
}

/**
 * A module exercising one op: `op` (address from a param), `op_expr` (address computed, so the
 * pass spills it), `op_off<o>` (with a constant offset), `fill(seed)` writing a byte pattern over
 * all memory, and `evict(k)` touching pages far from the probed boundaries.
 */
function opModule(op: Op): string {
  const fn = (name: string, addr: string, off: number) => `
    (func (export "${name}") (param $a i32) ${paramDecls(op.params)} ${resultDecl(op.result)} (local $v v128)
      ${wrapResult(op.result, op.body(addr, off))})`;
  return `(module
    (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
    (global $zero (mut i32) (i32.const 0))
    ${fn('op', '(local.get $a)', 0)}
    ${fn('op_expr', '(i32.add (local.get $a) (global.get $zero))', 0)}
    ${OFFSETS.map((o) => fn(`op_off${o}`, '(local.get $a)', o)).join('\n')}
    (func (export "fill") (param $seed i32) (local $i i32)
      (loop $l
        (i32.store8 (local.get $i) (i32.add (i32.mul (local.get $i) (i32.const 167)) (local.get $seed)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const ${MEM})))))
    (func (export "evict") (param $k i32) (result i32)
      (i32.add (i32.load8_u (i32.add (i32.const 40000) (local.get $k)))
        (i32.add (i32.load8_u (i32.add (i32.const 90000) (local.get $k))) (i32.load8_u (i32.add (i32.const 170000) (local.get $k))))))
  )`;
}

/** Addresses to probe for an access of `w` bytes at offset `off` (as u32 values). */
function probeAddresses(w: number, off: number, pageSize: number): number[] {
  const eas = new Set<number>([0, 8, 100]);
  const boundaries = new Set([pageSize, 2 * pageSize, 65536, 131072].filter((p) => p < MEM));
  for (const p of boundaries) for (let ea = p - w - 1; ea <= p + 1; ea++) eas.add(ea);
  for (const ea of [MEM - w - 1, MEM - w, MEM - w + 1, MEM - 1, MEM, MEM + 1, 2 ** 31, 2 ** 32 - w, 2 ** 32 - 1]) eas.add(ea);
  // Effective address = addr + off without wrap: pick addr = ea - off (mod 2^32) for in-range eas,
  // plus addresses whose sum with `off` wraps past 2^32 (must trap).
  const addrs = new Set<number>();
  for (const ea of eas) {
    if (ea >= off) addrs.add((ea - off) >>> 0);
  }
  if (off > 0) for (const a of [2 ** 32 - off, 2 ** 32 - off + 1, 2 ** 32 - 1, 2 ** 32 - off - w]) addrs.add(a >>> 0);
  if (off > MEM) addrs.add(0);
  return [...addrs];
}

function callsFor(op: Op, pageSize: number): Call[] {
  const calls: Call[] = [{ fn: 'fill', args: [7] }];
  let n = 0;
  const variants: [string, number][] = [['op', 0], ['op_expr', 0], ...OFFSETS.map((o): [string, number] => [`op_off${o}`, o])];
  for (const [fn, off] of variants) {
    const addrs = probeAddresses(op.bytes, off, pageSize);
    for (const addr of addrs) {
      calls.push({ fn, args: [addr | 0, ...op.args(addr, n++)] });
      // Evict the straddled pages (two-frame pool) so the next access faults them back in.
      if (n % 2 === 0) calls.push({ fn: 'evict', args: [n & 63] });
    }
  }
  return calls;
}

/** Two frames; `FM_DIFF_MEMORY=each` compares memory after every call to find the culprit. */
const TINY = (pageSize: number): DiffOptions => ({
  pageSize, frames: 2, memory: process.env.FM_DIFF_MEMORY === 'each' ? 'each' : 'end',
});

describe.each(PAGE_SIZES)('accesses at page size %i', (pageSize) => {
  it.each(OPS.map((op) => [op.name, op] as const))('%s', async (_name, op) => {
    const calls = callsFor(op, pageSize);
    const diff = await runBoth(wat(opModule(op)), calls, TINY(pageSize));
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.instantiate).toBe('ok');
    // The probes really hit both successful accesses and bounds traps on the original.
    expect(diff.original.results.some((r) => r.startsWith('trap RuntimeError: memory access out of bounds'))).toBe(true);
    expect(diff.original.results.filter((r) => !r.startsWith('trap')).length).toBeGreaterThan(20);
    expect(diff.stats!.majorFaults).toBeGreaterThan(10);
    if (pageSize < 65536 && op.bytes > 1 && !isAtomicWrite(op)) expect(diff.stats!.straddles).toBeGreaterThan(0);
  });
});

/** `n` pseudo-random bytes as a WAT string literal body. */
function watData(n: number, seed: number): string {
  let x = seed >>> 0 || 1;
  let out = '';
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out += `\\${(x & 0xff).toString(16).padStart(2, '0')}`;
  }
  return out;
}

const LOADSTORE = `
    (func (export "ld") (param $a i32) (result i32) (i32.load8_u (local.get $a)))
    (func (export "ld32") (param $a i32) (result i32) (i32.load (local.get $a)))
    (func (export "st") (param $a i32) (param $v i32) (i32.store8 (local.get $a) (local.get $v)))
    (func (export "size") (result i32) (memory.size))
    (func (export "grow") (param $d i32) (result i32) (memory.grow (local.get $d)))`;

describe.each(PAGE_SIZES)('memory.size and memory.grow at page size %i', (pageSize) => {
  it('grows to and past a declared maximum, delta 0, huge deltas; new pages are demand-zero', async () => {
    const mod = wat(`(module (memory (export "memory") 1 4) ${LOADSTORE})`);
    const calls: Call[] = [
      { fn: 'size' }, { fn: 'st', args: [65535, 1] }, { fn: 'ld', args: [65536] }, { fn: 'grow', args: [0] },
      { fn: 'grow', args: [1] }, { fn: 'size' }, { fn: 'ld', args: [65536] }, { fn: 'ld32', args: [131068] }, { fn: 'ld', args: [131072] },
      { fn: 'st', args: [131071, 9] }, { fn: 'grow', args: [2] }, { fn: 'size' }, { fn: 'ld', args: [131071] },
      { fn: 'st', args: [262143, 7] }, { fn: 'ld32', args: [262140] }, { fn: 'ld32', args: [262141] }, { fn: 'ld', args: [262144] },
      { fn: 'grow', args: [1] }, { fn: 'grow', args: [0] }, { fn: 'grow', args: [-1] }, { fn: 'grow', args: [0x10000] },
      { fn: 'grow', args: [0x8000_0000 | 0] }, { fn: 'size' },
    ];
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results[10]).toBe('num:4000000000000000(2)'); // grow(2) from 2 pages
    expect(diff.original.results[17]).toBe('num:bff0000000000000(-1)'); // past the maximum
  });

  it('grows from zero pages', async () => {
    const mod = wat(`(module (memory (export "memory") 0 2) ${LOADSTORE})`);
    const calls: Call[] = [{ fn: 'size' }, { fn: 'ld', args: [0] }, { fn: 'grow', args: [1] }, { fn: 'st', args: [0, 3] },
      { fn: 'ld', args: [0] }, { fn: 'ld', args: [65536] }, { fn: 'grow', args: [2] }, { fn: 'grow', args: [1] }, { fn: 'ld32', args: [131068] }];
    expect((await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' })).mismatches).toEqual([]);
  });

  it('grows with the pool sized as a fraction of memory (the pool grows too)', async () => {
    const mod = wat(`(module (memory (export "memory") 1 8) ${LOADSTORE}
      (func (export "touch") (param $stride i32) (local $i i32)
        (loop $l (i32.store8 (local.get $i) (i32.add (local.get $i) (i32.const 1)))
          (local.set $i (i32.add (local.get $i) (local.get $stride)))
          (br_if $l (i32.lt_u (local.get $i) (i32.mul (memory.size) (i32.const 65536))))))
      (func (export "sum") (result i32) (local $i i32) (local $s i32)
        (loop $l (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 97)))
          (br_if $l (i32.lt_u (local.get $i) (i32.mul (memory.size) (i32.const 65536)))))
        (local.get $s)))`);
    const calls: Call[] = [{ fn: 'touch', args: [61] }, { fn: 'grow', args: [3] }, { fn: 'touch', args: [37] }, { fn: 'sum' },
      { fn: 'grow', args: [4] }, { fn: 'touch', args: [1013] }, { fn: 'sum' }, { fn: 'grow', args: [1] }, { fn: 'size' }];
    const diff = await runBoth(mod, calls, { pageSize, local: { fraction: 0.25 } });
    expect(diff.mismatches).toEqual([]);
    expect(diff.stats!.localBytes).toBeGreaterThanOrEqual(pageSize);
  });
});

describe.each([4096, 65536])('memory.grow without a declared maximum at page size %i', (pageSize) => {
  it('grows to 4 GiB like V8 and fails past it', async () => {
    const mod = wat(`(module (memory (export "memory") 1) ${LOADSTORE})`);
    const calls: Call[] = [{ fn: 'grow', args: [1] }, { fn: 'grow', args: [65535] }, { fn: 'grow', args: [65534] },
      { fn: 'size' }, { fn: 'grow', args: [1] }, { fn: 'grow', args: [0] }, { fn: 'st', args: [-1, 5] }, { fn: 'ld', args: [-1] },
      { fn: 'ld32', args: [-4] }, { fn: 'ld32', args: [-3] }];
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'none' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results[3]).toBe('num:40f0000000000000(65536)');
  });
});

describe.each(PAGE_SIZES)('memory.copy and memory.fill at page size %i', (pageSize) => {
  const mod = wat(`(module (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
    (func (export "pattern") (local $i i32)
      (loop $l (i32.store8 (local.get $i) (i32.mul (local.get $i) (i32.const 29)))
        (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const ${MEM})))))
    (func (export "copy") (param $d i32) (param $s i32) (param $n i32) (memory.copy (local.get $d) (local.get $s) (local.get $n)))
    (func (export "fill") (param $d i32) (param $v i32) (param $n i32) (memory.fill (local.get $d) (local.get $v) (local.get $n))))`);
  const P = pageSize;

  it('copies overlapping ranges within and across pages in both directions, all-or-nothing at the bounds', async () => {
    const copies: [number, number, number][] = [
      [10, 12, 100], [12, 10, 100], [0, 1, 1], [1, 0, 1],
      [P - 50, P - 30, 300], [P - 30, P - 50, 300], [2 * P + 7, P + 3, 3 * P], [P + 3, 2 * P + 7, 3 * P],
      [1000, 0, 100000], [0, 1000, 100000], [P - 1, 2 * P - 1, 2], [65536 - 3, 65536 + 5, 70000],
      [MEM - 10, 0, 10], [MEM - 10, 0, 11], [0, MEM - 10, 11], [MEM, 0, 0], [0, MEM, 0], [MEM + 1, 0, 0], [0, MEM + 1, 0],
      [0, 0, -1], [-16, 0, 16], [0, -16, 16], [5, 5, 1000], [MEM - 1, MEM - 2, 1],
    ];
    const calls: Call[] = [{ fn: 'pattern' }, ...copies.map(([d, s, n]) => ({ fn: 'copy', args: [d, s, n] }))];
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results.filter((r) => r === 'trap RuntimeError: memory access out of bounds').length).toBeGreaterThanOrEqual(7);
    expect(diff.original.results.filter((r) => r === 'void').length).toBeGreaterThanOrEqual(14);
  });

  it('fills within and across pages, all-or-nothing at the bounds', async () => {
    const fills: [number, number, number][] = [
      [3, 0xab, 10], [P - 5, 0x1ff, 10], [P - 1, 7, 3 * P + 2], [0, 0, 0], [MEM - 1, 1, 1], [MEM - 1, 1, 2],
      [MEM, 2, 0], [MEM + 1, 2, 0], [-1, 3, 1], [10, -1, 100], [65536 - 100, 0x5a, 65536 + 200], [0, 9, -1],
    ];
    const calls: Call[] = [{ fn: 'pattern' }, ...fills.map(([d, v, n]) => ({ fn: 'fill', args: [d, v, n] }))];
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results.filter((r) => r.startsWith('trap')).length).toBeGreaterThanOrEqual(4);
    expect(diff.original.results.filter((r) => r === 'void').length).toBeGreaterThanOrEqual(7);
  });
});

describe.each(PAGE_SIZES)('memory.init and data.drop at page size %i', (pageSize) => {
  const P = pageSize;
  const mod = wat(`(module (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
    (data $p "${watData(600, 11)}")
    (data $a (i32.const 100) "${watData(40, 12)}")
    (data $e "")
    (func (export "init") (param $d i32) (param $s i32) (param $n i32) (memory.init $p (local.get $d) (local.get $s) (local.get $n)))
    (func (export "init_active") (param $d i32) (param $s i32) (param $n i32) (memory.init $a (local.get $d) (local.get $s) (local.get $n)))
    (func (export "init_empty") (param $d i32) (param $s i32) (param $n i32) (memory.init $e (local.get $d) (local.get $s) (local.get $n)))
    (func (export "drop") (data.drop $p))
    (func (export "drop_active") (data.drop $a)))`);

  it('initialises in and out of bounds of the segment and of memory, and after data.drop', async () => {
    const inits: [string, number, number, number][] = [
      ['init', 0, 0, 600], ['init', P - 10, 5, 300], ['init', 65536 - 7, 1, 599], ['init', MEM - 10, 0, 10],
      ['init', MEM - 10, 0, 11], ['init', 0, 590, 10], ['init', 0, 590, 11], ['init', 0, 600, 0], ['init', 0, 601, 0],
      ['init', MEM, 0, 0], ['init', MEM + 1, 0, 0], ['init', 0, -1, 1], ['init', -1, 0, 1], ['init', 0, 0, -1],
      ['init_active', 0, 0, 0], ['init_active', 0, 0, 1], ['init_active', 0, 1, 0], ['init_empty', MEM, 0, 0],
      ['init_empty', 5, 0, 1], ['drop', 0, 0, 0], ['init', 0, 0, 0], ['init', 0, 0, 1], ['drop', 0, 0, 0], ['drop_active', 0, 0, 0],
      ['init', 7, 0, 0],
    ];
    const calls: Call[] = inits.map(([fn, d, s, n]) => ({ fn, args: fn.startsWith('drop') ? [] : [d, s, n] }));
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.results.filter((r) => r.startsWith('trap')).length).toBe(11);
  });
});

describe.each(PAGE_SIZES)('active data segments at page size %i', (pageSize) => {
  it('form the initial image, across pages and up to the last byte', async () => {
    const mod = wat(`(module (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
      (data (i32.const 250) "${watData(700, 1)}")
      (data (i32.const 65530) "${watData(20, 2)}")
      (data (i32.const 300) "${watData(30, 3)}")
      (data (i32.const ${MEM - 5}) "${watData(5, 4)}")
      (data (i32.const ${MEM}) "")
      (func (export "ld32") (param $a i32) (result i32) (i32.load (local.get $a))))`);
    const calls: Call[] = [249, 250, 253, 255, 256, 300, 949, 65532, MEM - 4].map((a) => ({ fn: 'ld32', args: [a] }));
    const diff = await runBoth(mod, calls, { pageSize, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  it('are visible to the start function', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (data (i32.const 10) "abc")
      (func $start (i32.store8 (i32.const 11) (i32.add (i32.load8_u (i32.const 10)) (i32.const 1))))
      (start $start))`);
    expect((await runBoth(mod, [], { pageSize, frames: 1 })).mismatches).toEqual([]);
  });

  // Regression (was BUG-DATA-MESSAGE: farmem said "data segment 0 is out of bounds").
  it('an out-of-bounds active segment fails instantiation with V8\'s error', async () => {
    for (const data of [`(data (i32.const ${MEM - 4}) "12345")`, `(data (i32.const 0) "ok") (data (i32.const ${MEM + 1}) "")`]) {
      const mod = wat(`(module (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES}) ${data})`);
      const diff = await runBoth(mod, [], { pageSize, frames: 2 });
      expect(diff.original.instantiate).toBe('error RuntimeError: data segment is out of bounds');
      expect(diff.mismatches).toEqual([]);
    }
  });

});

describe.each(PAGE_SIZES)('evaluation order and nesting at page size %i', (pageSize) => {
  const mod = wat(`(module
    (import "env" "log" (func $log (param i32)))
    (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
    (global $g (mut i32) (i32.const 0))
    (func $side (param $x i32) (result i32)
      (call $log (local.get $x))
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (i32.store (i32.add (i32.const 16) (i32.shl (global.get $g) (i32.const 2))) (local.get $x))
      (local.get $x))
    (func (export "st_value_side") (param $a i32) (i32.store (local.get $a) (call $side (i32.const 7))))
    (func (export "st_both_side") (param $a i32) (i64.store offset=3 (call $side (local.get $a)) (i64.extend_i32_u (call $side (i32.const 9)))))
    (func (export "ld_side") (param $a i32) (result i32) (i32.load offset=4 (call $side (local.get $a))))
    (func (export "st_value_traps") (param $a i32) (param $c i32) (i32.store (local.get $a) (i32.div_u (call $side (i32.const 1)) (local.get $c))))
    (func (export "st_value_global") (param $a i32) (i32.store (call $side (local.get $a)) (global.get $g)))
    (func (export "copy_side") (param $d i32) (memory.copy (call $side (local.get $d)) (call $side (i32.const 0)) (call $side (i32.const 8))))
    (func (export "fill_side") (param $d i32) (memory.fill (call $side (local.get $d)) (call $side (i32.const 3)) (call $side (i32.const 300))))
    (func (export "cmpxchg_side") (param $a i32) (result i32)
      (i32.atomic.rmw.cmpxchg (call $side (local.get $a)) (call $side (i32.const 0)) (call $side (i32.const 2))))
    (func (export "lane_side") (param $a i32) (result i64)
      (i64x2.extract_lane 1 (v128.load32_lane 3 (call $side (local.get $a)) (i32x4.splat (call $side (i32.const 5))))))
    (func (export "store_lane_side") (param $a i32)
      (v128.store16_lane 7 (call $side (local.get $a)) (i16x8.splat (call $side (i32.const 0x1234)))))
    (func (export "chase") (param $a i32) (result i32) (i32.load (i32.load (i32.load (local.get $a)))))
    (func (export "st_nested") (param $a i32) (param $b i32)
      (i32.store offset=2 (i32.load (local.get $a))
        (i32.add (i32.load offset=1 (local.get $b)) (i32.load16_s offset=8 (i32.add (local.get $b) (i32.load8_u (local.get $a)))))))
    (func (export "rmw_nested") (param $a i32) (result i64)
      (i64.atomic.rmw.add (i32.and (i32.load (local.get $a)) (i32.const -8))
        (i64.atomic.rmw.xchg (i32.const 64) (i64.load offset=5 (local.get $a)))))
    (func (export "get_g") (result i32) (global.get $g)))`);

  it('evaluates operands with side effects before a trap, in order, and nests accesses', async () => {
    const P = pageSize;
    const oob = [MEM, MEM - 2, -1, MEM - 3];
    const calls: Call[] = [];
    for (const a of [0, P - 2, P - 3, 2 * P - 1, ...oob]) {
      calls.push({ fn: 'st_value_side', args: [a] }, { fn: 'st_both_side', args: [a] }, { fn: 'ld_side', args: [a] },
        { fn: 'st_value_traps', args: [a, 0] }, { fn: 'st_value_traps', args: [a, 1] }, { fn: 'st_value_global', args: [a] },
        { fn: 'copy_side', args: [a] }, { fn: 'fill_side', args: [a] }, { fn: 'cmpxchg_side', args: [a & ~3] },
        { fn: 'lane_side', args: [a] }, { fn: 'store_lane_side', args: [a] }, { fn: 'get_g' });
    }
    for (const a of [0, 4, P - 1, P + 2, 65534]) calls.push({ fn: 'chase', args: [a] }, { fn: 'st_nested', args: [a, P - 4] }, { fn: 'rmw_nested', args: [a] });
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.logs.length).toBeGreaterThan(100);
    expect(diff.original.results).toContain('trap RuntimeError: divide by zero');
  });
});

describe.each(PAGE_SIZES)('the bounce buffer at page size %i', (pageSize) => {
  const mod = wat(`(module (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
    (func (export "st64") (param $a i32) (param $v i64) (i64.store (local.get $a) (local.get $v)))
    (func (export "ld64") (param $a i32) (result i64) (i64.load (local.get $a)))
    (func (export "st16") (param $a i32) (param $v i32) (i32.store16 (local.get $a) (local.get $v)))
    (func (export "ld8") (param $a i32) (result i32) (i32.load8_u (local.get $a)))
    (func (export "stv") (param $a i32) (param $v i64) (v128.store offset=1 (local.get $a) (i64x2.splat (local.get $v))))
    (func (export "ldv") (param $a i32) (result i64) (i64x2.extract_lane 1 (v128.load offset=1 (local.get $a))))
    (func (export "st_ld") (param $a i32) (param $b i32) (result i64)
      (i64.store (local.get $a) (i64.const 0x0102030405060708)) (i64.load (local.get $b)))
    (func (export "st_st_ld") (param $a i32) (param $b i32) (result i64)
      (i64.store (local.get $a) (i64.const -1)) (i32.store (local.get $b) (i32.const 0x55aa55aa)) (i64.load (local.get $a)))
    (func (export "st_copy") (param $a i32) (param $d i32)
      (i64.store (local.get $a) (i64.const 0x1122334455667788)) (memory.copy (local.get $d) (local.get $a) (i32.const 8)))
    (func (export "st_fill_ld") (param $a i32) (result i64)
      (i64.store (local.get $a) (i64.const 0x1122334455667788)) (memory.fill (i32.add (local.get $a) (i32.const 3)) (i32.const 0) (i32.const 2))
      (i64.load (local.get $a)))
    (func (export "st_grow") (param $a i32) (result i32)
      (i64.store (local.get $a) (i64.const 0x0badf00d)) (memory.grow (i32.const 0))))`);

  it('pending straddling stores are seen by the next load, store, bulk op and host read', async () => {
    const P = pageSize;
    const calls: Call[] = [];
    for (const b of [P, 2 * P, 65536]) {
      calls.push(
        { fn: 'st64', args: [b - 3, 0x1111111111111111n] }, { fn: 'ld64', args: [b - 5] }, { fn: 'ld8', args: [b] },
        { fn: 'st64', args: [b - 4, 0x2222222222222222n] }, { fn: 'st64', args: [b - 2, 0x3333333333333333n] }, { fn: 'ld64', args: [b - 6] },
        { fn: 'st16', args: [b - 1, 0x4444] }, { fn: 'ld8', args: [b - 1] },
        { fn: 'stv', args: [b - 9, 0x5555555555555555n] }, { fn: 'ldv', args: [b - 8] }, { fn: 'ldv', args: [b - 10] },
        { fn: 'st_ld', args: [b - 5, b - 1] }, { fn: 'st_st_ld', args: [b - 4, b - 2] }, { fn: 'st_st_ld', args: [b - 4, b + 100] },
        { fn: 'st_copy', args: [b - 7, b - 3] }, { fn: 'st_copy', args: [b - 2, 10] }, { fn: 'st_fill_ld', args: [b - 4] },
        { fn: 'st_grow', args: [b - 1] }, { fn: 'ld64', args: [b - 1] },
      );
    }
    const diff = await runBoth(mod, calls, { pageSize, frames: 2, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    if (pageSize < 65536) expect(diff.stats!.straddles).toBeGreaterThan(20);
  });
});

describe('modules without a memory', () => {
  it('run unchanged, including re-exported imports and recursion', async () => {
    const mod = wat(`(module (import "env" "g" (func $g (param i32)))
      (func $fib (export "fib") (param $n i32) (result i32)
        (if (result i32) (i32.lt_u (local.get $n) (i32.const 2)) (then (local.get $n))
          (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1))) (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
      (export "reexport" (func $g)))`);
    const diff = await runBoth(mod, [{ fn: 'fib', args: [20] }, { fn: 'reexport', args: [3] }], { pageSize: 4096, frames: 2 });
    expect(diff.mismatches).toEqual([]);
    expect(diff.original.logs).toEqual(['env.g(num:4008000000000000(3))']);
  });
});

describe('memory.atomic.wait on unshared memory', () => {
  const mod = wat(`(module (memory (export "memory") 1 1)
    (func (export "w32") (param $a i32) (result i32) (memory.atomic.wait32 (local.get $a) (i32.const 0) (i64.const 0)))
    (func (export "w64") (param $a i32) (result i32) (memory.atomic.wait64 (local.get $a) (i64.const 1) (i64.const -1))))`);
  const calls: Call[] = [0, 1, 4, 65532, 65528, 65533, 65536, -4].flatMap((a) => [{ fn: 'w32', args: [a] }, { fn: 'w64', args: [a] }]);

  it('traps on the same bounds and alignment as V8', async () => {
    const diff = await runBoth(mod, calls, { pageSize: 256, frames: 2 });
    const kind = (r: string) => (r.includes('out of bounds') ? 'oob' : r.includes('unaligned') ? 'unaligned' : r.startsWith('trap RuntimeError') ? 'wait-trap' : r);
    expect(diff.farmem.results.map(kind)).toEqual(diff.original.results.map(kind));
  });

  // Regression (was BUG-WAIT-MESSAGE: farmem's wait import threw "atomics wait on non-shared memory"
  // where V8 traps with "Atomics.wait cannot be called in this context").
  it('traps with V8\'s message', async () => {
    expect((await runBoth(mod, calls, { pageSize: 256, frames: 2 })).mismatches).toEqual([]);
  });
});

/**
 * Regression tests: one minimal module for each bug these tests found, all fixed. Each comment says
 * what was wrong, so a failure here names the old bug it brings back.
 */
describe('regressions of fixed bugs (minimal reproducers)', () => {
  // Was BUG-DATA-SEGMENTS: binaryen 132's getDataSegmentInfo() returns `data` as an ArrayBuffer, and
  // every segment was recorded with `length: undefined`.
  it('active and passive data segments keep their bytes', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1) (data (i32.const 10) "abc") (data $p "xyz")
      (func (export "init") (memory.init $p (i32.const 20) (i32.const 0) (i32.const 3))))`);
    const diff = await runBoth(mod, [{ fn: 'init' }], { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  const LS = `
    (func (export "st") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
    (func (export "ld") (param $a i32) (result i32) (i32.load (local.get $a)))`;

  // Was BUG-PAST-MAX: the fast path indexed RT[ea >>> shift] without checking ea against the table
  // length (the declared maximum). Past it, the "entry" was a WT entry, or frame data the guest
  // wrote itself, used as a delta: an out-of-bounds access did not trap and could read or write any
  // physical address (page tables included).
  it('an access just past a declared maximum traps (pool larger than memory)', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1) ${LS})`);
    const diff = await runBoth(mod, [{ fn: 'st', args: [0, 1] }, { fn: 'ld', args: [65536] }], { pageSize: 256, local: { bytes: 131072 } });
    expect(diff.mismatches).toEqual([]);
  });

  it('a far out-of-bounds access cannot use guest data as a page-table entry', async () => {
    // RT[3932160 >>> 8] sits at physical 65536 = frame 0, holding the guest's page 0.
    const mod = wat(`(module (memory (export "memory") 1 1) ${LS})`);
    const calls: Call[] = [{ fn: 'st', args: [0, (4096 - 3932160) | 0] }, { fn: 'ld', args: [3932160] }, { fn: 'st', args: [3932160, 0x7777] }, { fn: 'ld', args: [0] }];
    const diff = await runBoth(mod, calls, { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  // Was BUG-ONE-FRAME: with a single frame, a page whose number equals frameBase / pageSize (the
  // frame at its own address would give a zero delta) could never be mapped: takeFrame() recursed,
  // found no other frame and threw a plain Error('every frame is pinned'), though MIN_FRAMES = 1.
  it('a one-frame pool maps the page whose address equals frame 0\'s', async () => {
    const mod = wat(`(module (memory (export "memory") 2 2) ${LS})`);
    const diff = await runBoth(mod, [{ fn: 'st', args: [65536, 5] }, { fn: 'ld', args: [65536] }], { pageSize: 4096, frames: 1 });
    expect(diff.mismatches).toEqual([]);
  });

  // Was BUG-PREFETCH-CLASH: with prefetching and a two-frame pool, a prefetch of the page whose
  // address equals frame 0's (page frameBase / pageSize, here 16) evicted frame 0 (the demand frame
  // is pinned), found it clashes, and takeFrame() then found no unpinned frame: a plain
  // Error('every frame is pinned') escaped to the guest. A prefetch that cannot get a frame is now
  // skipped; it never fails the demand fault. Same root as BUG-ONE-FRAME (the zero-delta clash).
  it.each(['readahead', 'leap', 'stride'] as const)('a sequential scan with %s and two frames crosses the clash page', async (prefetch) => {
    const mod = wat(`(module (memory (export "memory") 2 2)
      (func (export "sum") (result i32) (local $i i32) (local $s i32)
        (loop $l (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 64)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 131072))))
        (local.get $s)))`);
    const diff = await runBoth(mod, [{ fn: 'sum' }], { pageSize: 4096, frames: 2, prefetch });
    expect(diff.mismatches).toEqual([]);
  });

  // Was BUG-BOUNCE-TRAP: a write that straddles two pages is served from the bounce buffer and
  // flushed at the next host entry, but the buffer was not pre-loaded. A misaligned atomic write
  // (store, RMW, cmpxchg) that straddles traps as unaligned without writing, and the flush then
  // copied stale bounce bytes into memory. The pager now loads the bounce buffer for straddling
  // writes too.
  it('a trapped misaligned atomic store across a page boundary leaves memory unchanged', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (func (export "st") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
      (func (export "ast") (param $a i32) (param $v i32) (i32.atomic.store (local.get $a) (local.get $v))))`);
    // The first store leaves 44 33 22 11 at bounce + 13; the atomic store at 509 (509 & 15 = 13) traps.
    const calls: Call[] = [{ fn: 'st', args: [253, 0x11223344] }, { fn: 'ast', args: [509, 0] }];
    const diff = await runBoth(mod, calls, { pageSize: 256, frames: 2 });
    expect(diff.original.results[1]).toBe('trap RuntimeError: operation does not support unaligned accesses');
    expect(diff.mismatches).toEqual([]);
  });

  it('a trapped misaligned atomic RMW across a page boundary leaves memory unchanged', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (func (export "st") (param $a i32) (param $v i32) (i32.store (local.get $a) (local.get $v)))
      (func (export "rmw") (param $a i32) (param $v i64) (result i64) (i64.atomic.rmw.add (local.get $a) (local.get $v))))`);
    const calls: Call[] = [{ fn: 'st', args: [255, -1] }, { fn: 'rmw', args: [1020, 1n] }];
    const diff = await runBoth(mod, calls, { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  // Was BUG-OPERAND-ORDER: an access's operands after the address are spilled to locals when they
  // are not trivial, but a trivial one (local.get/global.get) stayed in place, so it was read
  // *after* a later, spilled operand ran: cmpxchg's `expected` saw a local or global that its
  // `replacement` operand changed. Now, once any later operand is spilled, every earlier
  // local.get/global.get operand is spilled too (constants may stay).
  it('cmpxchg reads `expected` before `replacement` changes it (local)', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (func (export "cx") (param $p i32) (param $a i32) (result i32)
        (i32.atomic.rmw.cmpxchg (local.get $p) (local.get $a) (local.tee $a (i32.const 5)))))`);
    const diff = await runBoth(mod, [{ fn: 'cx', args: [0, 0] }], { pageSize: 256, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  it('cmpxchg reads `expected` before `replacement` changes it (global)', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1) (global $g (mut i32) (i32.const 0))
      (func $set (result i32) (global.set $g (i32.const 9)) (i32.const 7))
      (func (export "cx") (param $p i32) (result i32) (i32.atomic.rmw.cmpxchg (local.get $p) (global.get $g) (call $set))))`);
    const diff = await runBoth(mod, [{ fn: 'cx', args: [8] }], { pageSize: 4096, frames: 2 });
    expect(diff.mismatches).toEqual([]);
  });

  // An access whose operand is the caught value `(pop i32)` of a legacy-EH catch cannot be rewritten
  // without hoisting the pop (binaryen's EHUtils::handleBlockNestedPops, not exposed in binaryen.js):
  // farmem refuses such a module with a clear diagnostic instead of emitting an invalid one.
  it('an access addressed by a caught exception value (pop) is refused with FM1016', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1) (tag $e (param i32))
      (func (export "ld") (param $a i32) (result i32)
        (try (result i32) (do (throw $e (local.get $a))) (catch $e (i32.load offset=4 (pop i32))))))`);
    const { instrument } = await import('../host/instrument/instrument.js');
    expect(() => instrument(mod, { pageSize: 256 })).toThrow(/FM1016: .*caught exception value/);
  });

  // Was BUG-NOTIFY-OFFSET: binaryen.js has no _BinaryenAtomicNotifyGetOffset/_BinaryenAtomicWaitGetOffset,
  // so the pass's `?? (() => 0)` fallback translated `addr` instead of `addr + offset` and left the
  // offset on the instruction: bounds and alignment were checked at the wrong address, and notify
  // ran at phys(addr) + offset. The pass now reads the offset another way and rebuilds the node
  // with offset 0.
  it('memory.atomic.notify with an offset checks bounds at addr + offset', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (func (export "n") (param $a i32) (result i32) (memory.atomic.notify offset=65528 (local.get $a) (i32.const 1))))`);
    const diff = await runBoth(mod, [{ fn: 'n', args: [0] }, { fn: 'n', args: [8] }, { fn: 'n', args: [2] }], { pageSize: 256, local: { bytes: 1 << 20 } });
    expect(diff.original.results).toEqual(['num:0(0)', 'trap RuntimeError: memory access out of bounds', 'trap RuntimeError: operation does not support unaligned accesses']);
    expect(diff.mismatches).toEqual([]);
  });

  it('memory.atomic.wait32 with an offset checks bounds at addr + offset', async () => {
    const mod = wat(`(module (memory (export "memory") 1 1)
      (func (export "w") (param $a i32) (result i32) (memory.atomic.wait32 offset=65536 (local.get $a) (i32.const 0) (i64.const 0))))`);
    const diff = await runBoth(mod, [{ fn: 'w', args: [0] }], { pageSize: 256, frames: 2 });
    expect(diff.farmem.results[0]).toBe('trap RuntimeError: memory access out of bounds');
  });
});
