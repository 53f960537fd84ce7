/**
 * @fileoverview Several memories under farmem, spec-test style: three memories (32-bit, 64-bit,
 * 32-bit with a small maximum), each virtual with its own part of the page tables. Loads and
 * stores of every width on each memory at its bounds, memory.size/grow per memory (past a
 * maximum too), memory.copy between and within memories (both directions), fill and
 * init on each, data segments placed in the second and third memory. The module runs plain on
 * Node 24 and instrumented under farmem with a 2-frame pool, on Node 24 (child process) and on
 * Node 20 (this process: the instrumented module has one 32-bit physical memory); all three must
 * agree on every result and trap.
 */
import { describe, expect, it } from 'vitest';
import { instrument } from '../host/index.js';
import { compareRecords, runFarmem, wat, type Call, type RunRecord } from './support/differential.js';
import { NODE24, NODE24_MISSING, runBothOnNode24 } from './support/node24.js';

if (NODE24 === null) console.warn(NODE24_MISSING);

/** [memory, address type, access ops] */
const MEMS = [['$a', 'i32'], ['$b', 'i64'], ['$c', 'i32']] as const;
const OPS = [['i32.load', 4], ['i64.load8_s', 1], ['i64.load', 8], ['f64.load', 8], ['v128.load', 16]] as const;
const STORES = [['i32.store', 4, 'i32'], ['i64.store16', 2, 'i64'], ['i64.store', 8, 'i64']] as const;

function funcs(): string {
  const out: string[] = [];
  MEMS.forEach(([mem, at], k) => {
    const addr = at === 'i64' ? '(i64.extend_i32_u (local.get $a))' : '(local.get $a)';
    OPS.forEach(([op], i) => {
      const load = `(${op} ${mem} offset=3 ${addr})`;
      const result = op === 'i32.load' ? `(i64.extend_i32_u ${load})` : op === 'f64.load' ? `(i64.reinterpret_f64 ${load})`
        : op === 'v128.load' ? `(i64x2.extract_lane 1 ${load})` : load;
      out.push(`(func (export "l${k}_${i}") (param $a i32) (result i64) ${result})`);
    });
    STORES.forEach(([op, , type], i) => {
      const value = type === 'i32' ? '(i32.wrap_i64 (local.get $v))' : '(local.get $v)';
      out.push(`(func (export "s${k}_${i}") (param $a i32) (param $v i64) (${op} ${mem} offset=1 ${addr} ${value}))`);
    });
    const wide = (x: string) => (at === 'i64' ? `(i64.extend_i32_u ${x})` : x);
    const narrow = (x: string) => (at === 'i64' ? `(i32.wrap_i64 ${x})` : x);
    out.push(`(func (export "size${k}") (result i32) ${narrow(`(memory.size ${mem})`)})`);
    out.push(`(func (export "grow${k}") (param $n i32) (result i32) ${narrow(`(memory.grow ${mem} ${wide('(local.get $n)')})`)})`);
    out.push(`(func (export "fill${k}") (param $d i32) (param $v i32) (param $n i32) (memory.fill ${mem} ${wide('(local.get $d)')} (local.get $v) ${wide('(local.get $n)')}))`);
    out.push(`(func (export "init${k}") (param $d i32) (param $s i32) (param $n i32) (memory.init ${mem} $p ${wide('(local.get $d)')} (local.get $s) (local.get $n)))`);
  });
  // copies between memories (binaryen 132 reads copies between memories of one address type only)
  out.push('(func (export "copyAC") (param $d i32) (param $s i32) (param $n i32) (memory.copy $c $a (local.get $d) (local.get $s) (local.get $n)))');
  out.push('(func (export "copyCA") (param $d i32) (param $s i32) (param $n i32) (memory.copy $a $c (local.get $d) (local.get $s) (local.get $n)))');
  out.push('(func (export "copyBB") (param $d i32) (param $s i32) (param $n i32) (memory.copy $b $b (i64.extend_i32_u (local.get $d)) (i64.extend_i32_u (local.get $s)) (i64.extend_i32_u (local.get $n))))');
  return out.join('\n  ');
}

const MODULE = `(module
  (memory $a (export "mem") 1 3)
  (memory $b i64 2 4)
  (memory $c 1 1)
  (data (memory $a) (i32.const 10) "in memory a")
  (data (memory $b) (i64.const 70000) "in memory b, past its first page")
  (data (memory $c) (i32.const 65530) "end!!")
  (data $p "passive bytes for every memory")
  ${funcs()}
)`;

function calls(): Call[] {
  const out: Call[] = [];
  let n = 1n;
  const probe = (k: number, size: number) => {
    const at = [0, 7, 10, 70000 - 3, size - 20, size - 19, size - 11, size - 4, size - 3, size, 0xffff_fff0];
    OPS.forEach((_, i) => at.forEach((a) => out.push({ fn: `l${k}_${i}`, args: [a | 0] })));
    STORES.forEach((_, i) => at.forEach((a) => out.push({ fn: `s${k}_${i}`, args: [a | 0, (n++ * 0x0102_0304_0506_0708n) & 0x7fff_ffff_ffff_ffffn] })));
  };
  probe(0, 65536); probe(1, 131072); probe(2, 65536);
  for (let k = 0; k < 3; k++) out.push({ fn: `size${k}` }, { fn: `grow${k}`, args: [1] }, { fn: `size${k}` }, { fn: `grow${k}`, args: [5] });
  probe(0, 131072); probe(1, 196608); probe(2, 65536);
  out.push(
    { fn: 'copyAC', args: [100, 0, 400] }, { fn: 'l2_2', args: [105] }, { fn: 'copyAC', args: [65500, 0, 37] },
    { fn: 'copyAC', args: [0, 131000, 600] },
    { fn: 'copyCA', args: [131000, 65530, 6] }, { fn: 'l0_0', args: [130999] }, { fn: 'copyCA', args: [0, 65530, 7] },
    { fn: 'copyBB', args: [69990, 70000, 30] }, { fn: 'l1_2', args: [69990] }, { fn: 'copyBB', args: [196000, 195990, 600] },
    { fn: 'copyBB', args: [196000, 195990, 609] }, { fn: 'l1_2', args: [196010] },
    { fn: 'fill0', args: [131060, 0xaa, 12] }, { fn: 'fill1', args: [196600, 0xbb, 9] }, { fn: 'fill2', args: [65530, 0xcc, 6] },
    { fn: 'init0', args: [5, 2, 10] }, { fn: 'init1', args: [196600, 0, 8] }, { fn: 'init1', args: [196600, 0, 9] },
    { fn: 'init2', args: [65534, 0, 2] }, { fn: 'init2', args: [65535, 0, 2] },
  );
  for (let k = 0; k < 3; k++) for (const a of [0, 10, 65528, 70000]) out.push({ fn: `l${k}_2`, args: [a - 3] });
  return out;
}

describe.skipIf(NODE24 === null)('several memories, original vs farmem', () => {
  it('loads, stores, size/grow, copies between memories, fill, init and data segments agree on Node 24, and farmem on Node 20 agrees too', async () => {
    const bytes = wat(MODULE);
    const list = calls();
    const options = { pageSize: 256, frames: 2 } as const;
    const node24 = await runBothOnNode24(bytes, list, options);
    expect(node24.original.instantiate).toBe('ok');
    expect(node24.mismatches).toEqual([]);
    const traps = node24.original.results.filter((r) => r.startsWith('trap')).length;
    expect(traps).toBeGreaterThan(100);
    expect(traps).toBeLessThan(list.length - 100);

    const { record, stats } = await runFarmem(bytes, list, { ...options, imports: () => ({}) });
    const original: RunRecord = { ...node24.original, memories: [], snapshotErrors: [] };
    expect(compareRecords(original, { ...record, memories: [] }, list)).toEqual([]);
    expect(stats!.evictions).toBeGreaterThan(100);
  });
});

/** An imported memory next to a defined one: V8 checks the import, its contents are the initial image. */
const IMPORTED = `(module
  (import "env" "m" (memory $x 1 4))
  (memory $y 1 2)
  (data (memory $x) (i32.const 70000) "placed past the declared minimum")
  (data (memory $y) (i32.const 100) "in y")
  (func (export "x") (param $a i32) (result i32) (i32.load $x (local.get $a)))
  (func (export "y") (param $a i32) (result i32) (i32.load $y (local.get $a)))
  (func (export "put") (param $a i32) (param $v i32) (i32.store $x (local.get $a) (local.get $v)) (i32.store $y (local.get $a) (local.get $v)))
  (func (export "sizes") (result i32) (i32.add (i32.mul (memory.size $x) (i32.const 100)) (memory.size $y)))
  (func (export "grow") (param $n i32) (result i32) (i32.add (i32.mul (memory.grow $x (local.get $n)) (i32.const 100)) (memory.grow $y (local.get $n))))
)`;

describe.skipIf(NODE24 === null)('several memories, one imported', () => {
  it('runs with the imported memory\'s size and contents, and fails to link as V8 does when it is too small', async () => {
    const calls: Call[] = [
      { fn: 'x', args: [4096] }, { fn: 'x', args: [70000] }, { fn: 'y', args: [100] }, { fn: 'sizes' }, { fn: 'put', args: [65530, 7] },
      { fn: 'grow', args: [1] }, { fn: 'sizes' }, { fn: 'put', args: [131000, 9] }, { fn: 'y', args: [131000] }, { fn: 'x', args: [196605] }, { fn: 'grow', args: [1] },
    ];
    const good = await runBothOnNode24(wat(IMPORTED), calls, { pageSize: 256, frames: 2, memories: { 'env.m': { initial: 2, maximum: 4, set: [[4096, 0x5a]] } } });
    expect(good.original.instantiate).toBe('ok');
    expect(good.mismatches).toEqual([]);
    expect(good.original.results[0]).toBe('num:4056800000000000(90)');
    const small = await runBothOnNode24(wat(IMPORTED), calls, { pageSize: 256, frames: 2, memories: { 'env.m': { initial: 1, maximum: 8 } } });
    expect(small.original.instantiate).toMatch(/^error LinkError/);
    expect(small.mismatches).toEqual([]);
  });
});

describe('several memories, instrumented', () => {
  it('gives each memory its own part of the page space', () => {
    const { meta, layout } = instrument(wat(MODULE), { pageSize: 4096 });
    expect(meta.memories!.map((m) => [m.basePage, m.spanPages, m.memory64])).toEqual([[0, 64, false], [64, 64, true], [128, 16, false]]);
    expect(layout.numPages).toBe(144);
    expect(meta.segments.map((s) => s.memory ?? 0)).toEqual([0, 1, 2, 0]);
  });
});
