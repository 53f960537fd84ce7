/**
 * @fileoverview Loop chunking (host/instrument/passes/chunk.ts) against V8: hand-made loops that
 * drive every cached-translation path run unmodified and instrumented with a 2–4 frame pool, at
 * every page size, embedded and through a memory server (I/O worker + a busy reclaimer), and must
 * agree on every result, trap and byte of memory. Covered: load and store streams (clean pages
 * take the dirty minor fault), a step-0 stream, accesses after the increment and after a
 * conditional increment, a negative non-power-of-two stride, straddling accesses, a tee'd address,
 * the clang loop shape; a chunk whose page is evicted mid-chunk by a fault of a checked access, by
 * a call into wasm and by a host call; a stream that runs past the end of memory, one whose offset
 * wraps past 2^32, one into an unmapped region; a loop that calls memory.grow mid-loop; and
 * out-of-line checks (option `outline`): an indirect load and a scattered store that fault and
 * re-run their iteration on the ordinary body. Plus generated loops (random steps, scales, widths,
 * offsets, increment positions, conditional accesses and evicting faults) over patterned memory;
 * they found a stream going down whose pointer passed below 0 while `pointer + offset` stayed in
 * the page (the original traps there).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OptionError } from '../host/errors.js';
import { instantiate } from '../host/index.js';
import { instrument } from '../host/instrument/instrument.js';
import { cacheKey } from '../host/runtime/instrument-cache.js';
import { workloadPath } from '../host/workloads.js';
import { PAGE_SIZES, runBoth, wat, type Call } from './support/differential.js';
import { embeddedSuite, serverSuite } from './support/loop-suites.js';

const LOOP = (cond: string, body: string) => `(loop $L (if ${cond} (then ${body} (br $L))))`;
const INC = (v: string, by = 1) => `(local.set ${v} (i32.add (local.get ${v}) (i32.const ${by})))`;
const AT = (base: string, i: string, shift: number) => `(i32.add (local.get ${base}) (i32.shl (local.get ${i}) (i32.const ${shift})))`;
const LT = (a: string, b: string) => `(i32.lt_u (local.get ${a}) (local.get ${b}))`;

const MODULE = wat(`(module
  (import "env" "tick" (func $tick (param i32)))
  (memory (export "mem") 4 8)
  (func $peek (param $a i32) (result i32) (i32.load (local.get $a)))

  (func (export "fill4") (param $base i32) (param $n i32) (local $i i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store ${AT('$base', '$i', 2)} (i32.add (i32.mul (local.get $i) (i32.const 7)) (i32.const 1)))
      ${INC('$i')}`)})

  ;; the running sum also goes to mem[16] every iteration: a step-0 store stream
  (func (export "sum4") (param $base i32) (param $n i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (local.set $s (i32.add (local.get $s) (i32.load ${AT('$base', '$i', 2)})))
      (i32.store offset=16 (i32.const 0) (local.get $s))
      ${INC('$i')}`)}
    (local.get $s))

  (func (export "after") (param $base i32) (param $n i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      ${INC('$i')}
      (local.set $s (i32.xor (i32.rotl (local.get $s) (i32.const 5)) (i32.load offset=12 ${AT('$base', '$i', 2)})))`)}
    (local.get $s))

  (func (export "down12") (param $top i32) (param $n i32) (result i64) (local $p i32) (local $t i32) (local $s i64)
    (local.set $p (local.get $top))
    ${LOOP(LT('$t', '$n'), `
      (local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 7)) (i64.load offset=4 (local.get $p))))
      (local.set $p (i32.sub (local.get $p) (i32.const 12)))
      ${INC('$t')}`)}
    (local.get $s))

  (func (export "straddle8") (param $base i32) (param $n i32) (result i64) (local $i i32) (local $s i64)
    ${LOOP(LT('$i', '$n'), `
      (local.set $s (i64.add (local.get $s) (i64.load offset=4 ${AT('$base', '$i', 3)})))
      ${INC('$i')}`)}
    (local.get $s))

  (func (export "rmw") (param $base i32) (param $n i32) (local $i i32) (local $q i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store (local.tee $q ${AT('$base', '$i', 2)}) (i32.add (i32.mul (i32.load (local.get $q)) (i32.const 3)) (local.get $i)))
      ${INC('$i')}`)})

  ;; the invariant base is hoisted into the refill (B = base + delta); the other side, a tee
  ;; whose value the iteration reads again, still runs in place
  (func (export "basetee") (param $base i32) (param $n i32) (result i32) (local $i i32) (local $q i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store offset=4 (i32.add (local.get $base) (local.tee $q (i32.shl (local.get $i) (i32.const 3))))
        (i32.add (i32.load (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 3)))) (local.get $q)))
      (local.set $s (i32.add (local.get $s) (local.get $q)))
      ${INC('$i')}`)}
    (local.get $s))

  (func (export "copy8") (param $dst i32) (param $src i32) (param $n i32) (local $i i32)
    (block $out (br_if $out (i32.eqz (local.get $n)))
      (loop $L
        (i64.store ${AT('$dst', '$i', 3)} (i64.load ${AT('$src', '$i', 3)}))
        (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))))

  ;; a stream on A, then a scattered load on B whose fault evicts A's page mid-chunk
  (func (export "evict") (param $a i32) (param $b i32) (param $span i32) (param $n i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store ${AT('$a', '$i', 2)} (i32.add (i32.load ${AT('$a', '$i', 2)}) (i32.const 1)))
      (local.set $s (i32.add (local.get $s)
        (i32.load (i32.add (local.get $b) (i32.and (i32.rem_u (i32.mul (local.get $i) (i32.const 7919)) (local.get $span)) (i32.const -4))))))
      ${INC('$i')}`)}
    (local.get $s))

  ;; a stream, then a call into wasm that faults, a host call, and an access after them
  (func (export "calls") (param $a i32) (param $n i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store ${AT('$a', '$i', 2)} (local.get $i))
      (local.set $s (i32.add (local.get $s) (call $peek (i32.add (local.get $a) (i32.add (i32.const 131072) (i32.shl (local.get $i) (i32.const 6)))))))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 255))) (then (call $tick (local.get $i))))
      (i32.store offset=8 ${AT('$a', '$i', 2)} (local.get $s))
      ${INC('$i')}`)}
    (local.get $s))

  ;; runs from the old end of memory into pages grown at iteration k (k >= n: no grow, it traps)
  (func (export "grow") (param $base i32) (param $n i32) (param $k i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (local.set $s (i32.add (local.get $s) (i32.load ${AT('$base', '$i', 2)})))
      (i32.store ${AT('$base', '$i', 2)} (i32.add (local.get $i) (i32.const 1)))
      (if (i32.eq (local.get $i) (local.get $k)) (then (drop (memory.grow (i32.const 1)))))
      ${INC('$i')}`)}
    (local.get $s))

  (func (export "wrap") (param $base i32) (param $n i32) (result i32) (local $i i32) (local $s i32)
    ${LOOP(LT('$i', '$n'), `
      (local.set $s (i32.add (local.get $s) (i32.load offset=4294967040 ${AT('$base', '$i', 2)})))
      ${INC('$i')}`)}
    (local.get $s))

  ;; outlined checks: an indirect load (before any side effect) and a scattered store (the first one)
  (func (export "gather") (param $idx i32) (param $b i32) (param $n i32) (result i32) (local $i i32) (local $s i32) (local $j i32)
    ${LOOP(LT('$i', '$n'), `
      (local.set $j (i32.and (i32.load ${AT('$idx', '$i', 2)}) (i32.const 0x1fffc)))
      (local.set $s (i32.add (i32.rotl (local.get $s) (i32.const 1)) (i32.load (i32.add (local.get $b) (local.get $j)))))
      ${INC('$i')}`)}
    (local.get $s))
  (func (export "scatter") (param $b i32) (param $n i32) (local $i i32)
    ${LOOP(LT('$i', '$n'), `
      (i32.store (i32.add (local.get $b) (i32.and (i32.mul (i32.xor (local.get $i) (i32.const 0x5bd1)) (i32.const 40503)) (i32.const 0x1fffc))) (local.get $i))
      ${INC('$i')}`)})

  ;; an iv advanced through a copy (p = next), as LLVM and AssemblyScript emit it; straddling loads
  (func (export "copyiv") (param $p i32) (param $end i32) (result i64) (local $next i32) (local $s i64)
    ${LOOP('(i32.le_u (local.tee $next (i32.add (local.get $p) (i32.const 8))) (local.get $end))', `
      (local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 3)) (i64.load offset=4 (local.get $p))))
      (local.set $p (local.get $next))`)}
    (local.get $s))
  ;; not an iv: p takes the previous iteration's next, so it stands still once (must not be chunked)
  (func (export "copylate") (param $p i32) (param $n i32) (result i64) (local $next i32) (local $t i32) (local $s i64)
    (local.set $next (local.get $p))
    ${LOOP(LT('$t', '$n'), `
      (local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 3)) (i64.load (local.get $p))))
      (local.set $p (local.get $next))
      (local.set $next (i32.add (local.get $p) (i32.const 8)))
      ${INC('$t')}`)}
    (local.get $s))

  (func (export "condinc") (param $base i32) (param $n i32) (result i32) (local $t i32) (local $p i32) (local $s i32)
    (local.set $p (local.get $base))
    ${LOOP(LT('$t', '$n'), `
      (if (i32.and (local.get $t) (i32.const 1)) (then ${INC('$p', 4)}))
      (local.set $s (i32.add (i32.mul (local.get $s) (i32.const 31)) (i32.load (local.get $p))))
      ${INC('$t')}`)}
    (local.get $s))
)`);

const END = 4 * 65536;
const CALLS: Call[] = [
  { fn: 'sum4', args: [0, 64] }, // demand-zero pages, never written
  { fn: 'fill4', args: [0, END / 4] },
  { fn: 'sum4', args: [0, END / 4] },
  { fn: 'sum4', args: [0x100, END / 4] }, // runs past the end of memory: traps where V8 does
  { fn: 'after', args: [0, 1000] },
  { fn: 'after', args: [0, END / 4] }, // the last access is past the end
  { fn: 'down12', args: [END - 16, 20000] },
  { fn: 'down12', args: [END - 16, 30000] }, // the pointer wraps below 0
  { fn: 'straddle8', args: [0, 30000] },
  { fn: 'rmw', args: [0, END / 4] },
  { fn: 'basetee', args: [4, END / 8] }, // the last store is past the end: traps where V8 does
  { fn: 'copy8', args: [END / 2, 0, END / 16] },
  { fn: 'copy8', args: [8, 0, 4000] }, // overlapping, forward
  { fn: 'evict', args: [0, END / 2, END / 2, 5000] },
  { fn: 'calls', args: [0, 1500] },
  { fn: 'wrap', args: [0x100, 4] }, // base + offset passes 2^32
  { fn: 'condinc', args: [0, 50000] },
  { fn: 'copyiv', args: [0, END - 16] },
  { fn: 'copyiv', args: [0, END + 64] }, // runs past the end
  { fn: 'copylate', args: [0, 30000] },
  { fn: 'gather', args: [0, END / 2, 20000] },
  { fn: 'scatter', args: [END / 2, 20000] },
  { fn: 'gather', args: [0, END / 2 + 100, 20000] }, // the last pages of b are past the end: traps
  { fn: 'grow', args: [END - 64, 100, 1000] }, // no grow: traps at the old end
  { fn: 'grow', args: [END - 64, 100, 10] }, // grows at i = 10, then runs into the new page
  { fn: 'sum4', args: [END - 4096, 2048] }, // reads the grown page
];

describe('loop chunking', () => {
  it('versions every loop of the test module (so the tests below exercise it)', () => {
    const { counts } = instrument(MODULE, { pageSize: 4096 });
    expect(counts.chunkedLoops).toBe(16);
    expect(counts.chunkedAccesses).toBeGreaterThanOrEqual(18);
    expect(counts.outlinedChecks).toBeGreaterThanOrEqual(2);
    const noChunk = instrument(MODULE, { pageSize: 4096, optimize: { chunk: false } }).counts;
    expect([noChunk.chunkedAccesses, noChunk.outlinedChecks > 0]).toEqual([0, true]);
    expect(instrument(MODULE, { pageSize: 4096, optimize: { chunk: false, outline: false } }).counts.chunkedLoops).toBe(0);
  });

  embeddedSuite(MODULE, CALLS, [2, 4]);
});

describe('each optimization switched off alone', () => {
  it.each([{ chunk: false }, { outline: false }])('matches V8 with %o', async (optimize) => {
    const diff = await runBoth(MODULE, CALLS, { pageSize: 4096, frames: 2, optimize });
    expect(diff.mismatches).toEqual([]);
  });
});

serverSuite('loop chunking', MODULE, CALLS, 'chunk-test');

describe('the optimize option', () => {
  it('is validated strictly in instrument() and instantiate()', async () => {
    expect(() => instrument(MODULE, { optimize: { chunks: false } as never })).toThrow(/Invalid optimization in instrument\(\) call: "optimize.chunks"; known: chunk/);
    expect(() => instrument(MODULE, { optimize: { chunk: 0 } as never })).toThrow(/"optimize.chunk" in instrument\(\) call must be a boolean, got number/);
    expect(() => instrument(MODULE, { optimize: true as never })).toThrow(OptionError);
    await expect(instantiate(MODULE, {}, { optimize: { nope: true } as never })).rejects.toThrow(/Invalid optimization in instantiate\(\) call: "optimize.nope"/);
  });

  it('is part of the cache key', () => {
    expect(cacheKey(MODULE, 4096, { chunk: false })).not.toBe(cacheKey(MODULE, 4096, { chunk: true }));
    expect(cacheKey(MODULE, 4096)).toBe(cacheKey(MODULE, 4096, { chunk: true }));
  });

  it('maps onto --no-chunk of farmem instrument and farmem run', async () => {
    const cli = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));
    const tmp = mkdtempSync(join(tmpdir(), 'farmem-chunk-'));
    const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
    const on = run(['instrument', workloadPath('matmul'), '-o', join(tmp, 'on.wasm')]);
    const off = run(['instrument', workloadPath('matmul'), '-o', join(tmp, 'off.wasm'), '--no-chunk']);
    expect([on.status, off.status]).toEqual([0, 0]);
    expect(readFileSync(join(tmp, 'on.wasm')).length).toBeGreaterThan(readFileSync(join(tmp, 'off.wasm')).length);
    const plain = run(['run', workloadPath('matmul'), '--invoke', 'run', '65536', '3', '--stats', 'none', '--no-cache', '--no-chunk']);
    expect(plain.status).toBe(0);
    const { instance } = await WebAssembly.instantiate(readFileSync(workloadPath('matmul')));
    expect(plain.stdout.trim()).toBe(String((instance.exports.run as (a: number, b: number) => bigint)(65536, 3)));
  });
});

/** xorshift32 from a seed. */
function rng(seed: number): (n: number) => number {
  let x = (Math.imul(seed, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  return (n) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

const LOADS = [['i64.load8_u', 1], ['i64.load16_s', 2], ['i64.load32_u', 4], ['i64.load', 8]] as const;
const STORES = [['i64.store8', 1], ['i64.store16', 2], ['i64.store32', 4], ['i64.store', 8]] as const;

/**
 * A random affine loop: one or two load streams and maybe a store stream off random bases, with a
 * random iv step (negative too), scale, offset and width, the increment before or after the
 * accesses or conditional, and a conditional access; called with bounds that may run out of memory.
 */
function randomLoop(seed: number): { module: Uint8Array; calls: Call[]; pageSize: number; frames: number } {
  const r = rng(seed);
  const step = [1, -1, 2, 3, -3, 1, 1][r(7)]!;
  const scale = [1, 2, 4, 8, 12, 20, 4096][r(7)]!;
  const offsets = [0, 1, 3, 4, 100, 4093, 65535];
  const addr = (b: string, k: number, off: number) => `offset=${off} (i32.add (local.get ${b}) (i32.mul (local.get $i) (i32.const ${k})))`;
  const [load, lw] = LOADS[r(4)]!;
  const [load2, lw2] = LOADS[r(4)]!;
  const [store, sw] = STORES[r(4)]!;
  void lw; void lw2; void sw;
  const a1 = `(local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 5)) (${load} ${addr('$a', scale, offsets[r(7)]!)})))`;
  const a2 = r(2) ? `(local.set $s (i64.xor (local.get $s) (${load2} ${addr('$a', scale * 2, offsets[r(7)]!)})))` : '';
  const cond = r(3) === 0 ? `(if (i32.and (local.get $t) (i32.const 3)) (then (local.set $s (i64.add (local.get $s) (${load} ${addr('$b', scale, 8)})))))` : '';
  const st = r(2) ? `(${store} ${addr('$b', scale, offsets[r(7)]!)} (local.get $s))` : '';
  const inc = r(4) === 0 ? `(if (i32.and (local.get $t) (i32.const 1)) (then ${INC('$i', step)}))` : INC('$i', step);
  // A scattered load after the streams: its faults evict and reshuffle frames mid-chunk, so a
  // translation used one iteration too long reads another page's frame, not its neighbour by luck.
  const scatter = r(3) ? `(if (i32.eqz (i32.and (local.get $t) (i32.const 63))) (then (local.set $s (i64.add (local.get $s) (i64.load8_u (i32.and (i32.mul (local.get $t) (i32.const 40503)) (i32.const 0x3ffff)))))))` : '';
  const body = r(2) ? [a1, a2, cond, st, inc, scatter] : [inc, a1, a2, cond, st, scatter];
  const module = wat(`(module (memory (export "mem") 4 8)
    (func (export "fill") (local $p i32)
      ${LOOP(`(i32.lt_u (local.get $p) (i32.const ${END}))`, `(i64.store (local.get $p) (i64.mul (i64.extend_i32_u (i32.add (local.get $p) (i32.const 1))) (i64.const 0x9e3779b97f4a7c15))) ${INC('$p', 8)}`)})
    (func (export "f") (param $a i32) (param $b i32) (param $i i32) (param $n i32) (result i64) (local $t i32) (local $s i64)
      ${LOOP(LT('$t', '$n'), `${body.join('\n')} ${INC('$t')}`)}
      (local.get $s)))`);
  const calls: Call[] = [{ fn: 'fill' }];
  for (let c = 0; c < 4; c++) calls.push({ fn: 'f', args: [r(END), r(END), r(2) ? 0 : r(4000), 1 + r(c === 3 ? 40000 : 3000)] });
  return { module, calls, pageSize: PAGE_SIZES[r(3)]!, frames: 2 + r(3) };
}

describe.runIf(process.env['CHUNK_SEED'])('one random loop (CHUNK_SEED=n)', () => {
  it('matches', async () => {
    const seed = Number(process.env['CHUNK_SEED']);
    const { module, calls, pageSize, frames } = randomLoop(seed);
    const binaryen = (await import('binaryen')).default;
    console.log(binaryen.readBinary(module).emitText(), JSON.stringify(calls), pageSize, frames);
    for (const optimize of [{}, { chunk: false }, { outline: false }]) {
      const diff = await runBoth(module, calls, { pageSize, frames, optimize });
      console.log(JSON.stringify(optimize), diff.mismatches);
    }
  });
});

describe('random affine loops (generated)', () => {
  // CHUNK_SEEDS=from-to runs another range (a longer soak); one seed with its WAT: CHUNK_SEED=n.
  const [from, to] = (process.env['CHUNK_SEEDS'] ?? '1-150').split('-').map(Number) as [number, number];
  it(`seeds ${from}..${to} match V8 at random page sizes with 2–4 frames, and most are chunked`, async () => {
    let chunked = 0;
    for (let seed = from; seed <= to; seed++) {
      const { module, calls, pageSize, frames } = randomLoop(seed);
      if (instrument(module, { pageSize }).counts.chunkedAccesses > 0) chunked++;
      const diff = await runBoth(module, calls, { pageSize, frames });
      expect(diff.mismatches, `seed ${seed}`).toEqual([]);
    }
    expect(chunked).toBeGreaterThanOrEqual(Math.floor((to - from + 1) * 0.66));
  }, 600_000);
});
