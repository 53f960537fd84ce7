/**
 * @fileoverview memory64 under farmem, spec-test style: every load/store width (scalar, SIMD,
 * lanes, splats, atomics) at 64-bit addresses and 64-bit offsets, around the end of memory and
 * around 2^32 after growing past 4 GiB, plus memory.size/grow/fill/copy/init/data.drop with i64
 * operands. The module runs plain on Node 24 and instrumented under farmem with a 2-frame pool,
 * on Node 24 (child process) and on Node 20 (this process: the instrumented module needs no
 * memory64, its physical memory is 32-bit); all three must agree on every result and trap.
 *
 * Then the scan64 workload (assembly/wat/scan64.wat) touches 6 GiB of virtual memory through one
 * `farmem serve` with a small local pool, and its checksum must equal the closed-form one.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { compareRecords, runFarmem, wat, type Call, type RunRecord } from './support/differential.js';
import { NODE24, NODE24_MISSING, runBothOnNode24 } from './support/node24.js';
import { startServers, type Servers } from './support/servers.js';

if (NODE24 === null) console.warn(NODE24_MISSING);

interface Op { name: string; bytes: number; kind: 'load' | 'store' | 'rmw'; type: 'i32' | 'i64' | 'f32' | 'f64' | 'v128' }
const L = (name: string, bytes: number, type: Op['type']): Op => ({ name, bytes, kind: 'load', type });
const S = (name: string, bytes: number, type: Op['type']): Op => ({ name, bytes, kind: 'store', type });
const OPS: Op[] = [
  L('i32.load', 4, 'i32'), L('i32.load8_s', 1, 'i32'), L('i32.load8_u', 1, 'i32'), L('i32.load16_s', 2, 'i32'), L('i32.load16_u', 2, 'i32'),
  L('i64.load', 8, 'i64'), L('i64.load8_u', 1, 'i64'), L('i64.load16_s', 2, 'i64'), L('i64.load32_u', 4, 'i64'), L('i64.load32_s', 4, 'i64'),
  L('f32.load', 4, 'f32'), L('f64.load', 8, 'f64'), L('v128.load', 16, 'v128'), L('v128.load8_splat', 1, 'v128'),
  L('v128.load32_zero', 4, 'v128'), L('v128.load16x4_s', 8, 'v128'), L('v128.load64_lane 1', 8, 'v128'),
  S('i32.store', 4, 'i32'), S('i32.store8', 1, 'i32'), S('i32.store16', 2, 'i32'), S('i64.store', 8, 'i64'), S('i64.store32', 4, 'i64'),
  S('f32.store', 4, 'f32'), S('f64.store', 8, 'f64'), S('v128.store', 16, 'v128'), S('v128.store16_lane 3', 2, 'v128'),
  { name: 'i64.atomic.rmw.add', bytes: 8, kind: 'rmw', type: 'i64' }, { name: 'i32.atomic.rmw.xchg', bytes: 4, kind: 'rmw', type: 'i32' },
];
/** Constant offsets: none, small, and one past 2^32 (memory64 offsets are 64-bit). */
const OFFSETS = [0, 13, 2 ** 32 + 3];
const fold = '(i64.xor (i64x2.extract_lane 0 (local.get $v)) (i64x2.extract_lane 1 (local.get $v)))';

function accessFunc(op: Op, i: number, off: number): string {
  const fn = `(func (export "op${i}_${off}") (param $a i64) (param $x i64)`;
  const [opcode, lane] = op.name.split(' ');
  const imm = `offset=${off}${lane ? ` ${lane}` : ''}`;
  const value = op.type === 'v128' ? '(i64x2.splat (local.get $x))' : op.type === 'i32' ? '(i32.wrap_i64 (local.get $x))'
    : op.type === 'f32' ? '(f32.convert_i64_s (local.get $x))' : op.type === 'f64' ? '(f64.convert_i64_s (local.get $x))' : '(local.get $x)';
  if (op.kind === 'store') {
    const args = opcode!.endsWith('_lane') ? `(local.get $a) ${value}` : `(local.get $a) ${value}`;
    return `${fn} (${opcode} ${imm} ${args}))`;
  }
  if (op.kind === 'rmw') {
    const rmw = `(${opcode} ${imm} (local.get $a) ${value})`;
    return `${fn} (result i64) ${op.type === 'i32' ? `(i64.extend_i32_u ${rmw})` : rmw})`;
  }
  const laneArg = opcode!.endsWith('_lane') ? ' (i64x2.splat (local.get $x))' : '';
  const load = `(${opcode} ${imm} (local.get $a)${laneArg})`;
  const widen = op.type === 'i32' ? `(i64.extend_i32_u ${load})` : op.type === 'f32' ? `(i64.extend_i32_u (i32.reinterpret_f32 ${load}))`
    : op.type === 'f64' ? `(i64.reinterpret_f64 ${load})` : op.type === 'v128' ? `(block (result i64) (local.set $v ${load}) ${fold})` : load;
  return `${fn} (result i64) (local $v v128) ${widen})`;
}

const MODULE = `(module
  (memory (export "mem") i64 1 65540)
  (data $d (i64.const 100) "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f\\10\\11")
  (data $p "passive segment bytes")
  ${OPS.flatMap((op, i) => OFFSETS.map((off) => accessFunc(op, i, off))).join('\n  ')}
  (func (export "size") (result i64) (memory.size))
  (func (export "grow") (param $n i64) (result i64) (memory.grow (local.get $n)))
  (func (export "fill") (param $d i64) (param $v i32) (param $n i64) (memory.fill (local.get $d) (local.get $v) (local.get $n)))
  (func (export "copy") (param $d i64) (param $s i64) (param $n i64) (memory.copy (local.get $d) (local.get $s) (local.get $n)))
  (func (export "init") (param $d i64) (param $s i32) (param $n i32) (memory.init $p (local.get $d) (local.get $s) (local.get $n)))
  (func (export "drop") (data.drop $p))
  (func (export "sum") (param $a i64) (param $n i64) (result i64) (local $s i64)
    (block $done (loop $l
      (br_if $done (i64.eqz (local.get $n)))
      (local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 5)) (i64.load8_u (local.get $a))))
      (local.set $a (i64.add (local.get $a) (i64.const 1)))
      (local.set $n (i64.sub (local.get $n) (i64.const 1)))
      (br $l)))
    (local.get $s))
)`;

const G4 = 2n ** 32n;
const PAGE = 65536n;

/** Addresses probed for an access of `w` bytes in a memory of `size` bytes. */
function addresses(w: number, size: bigint): bigint[] {
  const W = BigInt(w);
  return [0n, 99n, 254n, 255n, size - W, size - W + 1n, size, -1n, -W, 2n ** 63n];
}

function calls(): Call[] {
  const out: Call[] = [];
  let n = 1n;
  const probe = (size: bigint, extra: bigint[] = []) => {
    OPS.forEach((op, i) => {
      for (const off of OFFSETS) {
        for (const a of [...addresses(op.bytes, size), ...extra]) {
          out.push({ fn: `op${i}_${off}`, args: [BigInt.asIntN(64, a - BigInt(off)), n++ * 0x0101_0101_0101n] });
        }
      }
    });
  };
  probe(PAGE);
  out.push({ fn: 'size' }, { fn: 'grow', args: [65537n] }, { fn: 'size' }, { fn: 'grow', args: [2n] }, { fn: 'grow', args: [-1n] });
  const size = 65540n * PAGE; // past 4 GiB: 1 + 65537 + 2 pages, the declared maximum
  probe(size, [G4 - 3n, G4 - 1n, G4, G4 + 5n]);
  out.push(
    { fn: 'fill', args: [G4 - 100n, 0xab, 300n] }, { fn: 'sum', args: [G4 - 120n, 340n] },
    { fn: 'copy', args: [G4 + 1000n, 90n, 40n] }, { fn: 'copy', args: [100n, G4 - 50n, 64n] }, { fn: 'sum', args: [G4 + 990n, 60n] },
    { fn: 'sum', args: [90n, 80n] }, { fn: 'copy', args: [size - 10n, 0n, 11n] }, { fn: 'fill', args: [size, 1, 0n] },
    { fn: 'fill', args: [size - 1n, 1, 2n] }, { fn: 'fill', args: [-1n, 1, 2n] }, { fn: 'init', args: [G4 - 4n, 2, 10] },
    { fn: 'sum', args: [G4 - 8n, 16n] }, { fn: 'init', args: [size - 5n, 0, 6] }, { fn: 'drop' }, { fn: 'init', args: [0n, 0, 1] },
    { fn: 'init', args: [5n, 0, 0] }, { fn: 'sum', args: [size - 32n, 32n] },
  );
  return out;
}

describe.skipIf(NODE24 === null)('memory64, original vs farmem', () => {
  it('every access width, 64-bit offsets, bounds and bulk operations agree on Node 24, and farmem on Node 20 agrees too', async () => {
    const bytes = wat(MODULE);
    const list = calls();
    const options = { pageSize: 256, frames: 2, memory: 'none' } as const;
    const node24 = await runBothOnNode24(bytes, list, options);
    expect(node24.original.instantiate).toBe('ok');
    expect(node24.mismatches).toEqual([]);
    const traps = node24.original.results.filter((r) => r.startsWith('trap')).length;
    expect(traps).toBeGreaterThan(list.length / 3);
    expect(traps).toBeLessThan(list.length - 100);

    const { record, stats } = await runFarmem(bytes, list, { ...options, imports: () => ({}) });
    const original: RunRecord = { ...node24.original, memories: [], snapshotErrors: [] };
    expect(compareRecords(original, { ...record, memories: [] }, list)).toEqual([]);
    expect(stats!.virtualBytes).toBe(65540 * 65536);
    expect(stats!.evictions).toBeGreaterThan(100);
  });
});

describe('memory64 workload past 4 GiB through a memory server', () => {
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers(1, { capacity: '256MiB', token: 't64' });
  });
  afterAll(async () => {
    await servers?.close();
  });

  it('scan64 touches 6 GiB of virtual memory with a 1 MiB pool (256 frames) and returns the closed-form checksum', async () => {
    const bytes = wat(readFileSync(new URL('../assembly/wat/scan64.wat', import.meta.url), 'utf8'));
    const fm = await instantiate(bytes, {}, { pageSize: 4096, local: { bytes: 1 << 20 }, remote: { urls: servers.urls, token: 't64' } });
    try {
      const size = 6n << 30n;
      const stride = 2n << 20n; // one i64 every 2 MiB: 3072 pages, three times the pool
      const sum = (fm.exports.run as (s: bigint, t: bigint, x: bigint) => bigint)(size, stride, 42n);
      expect(sum).toBe((fm.exports.expected as (s: bigint, t: bigint, x: bigint) => bigint)(size, stride, 42n));
      const stats = fm.stats();
      expect(stats.virtualBytes).toBe(6 * 2 ** 30);
      expect(stats.majorFaults).toBeGreaterThanOrEqual(3072);
      expect(stats.writeBacks).toBeGreaterThan(2000);
    } finally {
      await fm.close();
    }
  });
});
