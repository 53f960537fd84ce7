/**
 * @fileoverview Shared translations (host/instrument/passes/shared-checks.ts) against V8: hand-made
 * groups of accesses off one base run unmodified and instrumented with a 2–4 frame pool, at every
 * page size, embedded and through a memory server (I/O worker + a busy reclaimer), and must agree
 * on every result, trap and byte of memory. Covered: a pair of loads (`offsets[u]`, `offsets[u+1]`)
 * walked over every position of a page, so groups straddle page boundaries; a group whose page is
 * evicted by the fault of another access between its head and a member (stores on both sides, so
 * a stale translation would write into a reused frame); two interleaved groups (a swap of two
 * slots on different pages); a load/store of a tee'd address; constant addresses; a negative
 * constant whose address wraps below 0; offsets whose sum wraps past 2^32; a group running past
 * the end of memory, whose in-bounds stores must land before the trap exactly as in the original;
 * memory.grow between two accesses; heads in an `if` arm and behind a `br_if` out of a named block
 * (they must not serve what follows); and a group in a chunked loop's fast body (read-modify-write
 * of a scattered slot).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrument } from '../host/instrument/instrument.js';
import { PAGE_SIZES, runBoth, wat, type Call } from './support/differential.js';
import { startServers, type Servers } from './support/servers.js';

const MODULE = wat(`(module
  (memory (export "mem") 4 8)

  ;; Σ over u of offsets[u+1] - offsets[u] + offsets[u+1] * 3: a pair per u, crossing every page end
  (func (export "pairs") (param $base i32) (param $n i32) (result i32) (local $u i32) (local $p i32) (local $s i32)
    (loop $L (if (i32.lt_u (local.get $u) (local.get $n)) (then
      (local.set $p (i32.add (local.get $base) (i32.shl (local.get $u) (i32.const 2))))
      (local.set $s (i32.add (local.get $s) (i32.sub (i32.load offset=4 (local.get $p)) (i32.load (local.get $p)))))
      (local.set $s (i32.add (local.get $s) (i32.mul (i32.load offset=4 (local.get $p)) (i32.const 3))))
      (local.set $u (i32.add (local.get $u) (i32.const 1)))
      (br $L))))
    (local.get $s))

  (func $poke (param $p i32) (param $v i32) (i32.store offset=12 (local.get $p) (local.get $v)))

  ;; p's page is made resident and dirty (by a call: the group starts after it), so p[0] = v
  ;; translates without a fault; stores to three other pages fault (with 2 frames, all dirty,
  ;; p's page is surely evicted and its frame reused); p[1] = p[0] + q[0]; p[2] = 9
  (func (export "evict") (param $p i32) (param $q i32) (param $v i32) (result i32) (local $t i32)
    (call $poke (local.get $p) (local.get $v))
    (i32.store (local.get $p) (local.get $v))
    (i32.store (local.get $q) (i32.add (local.get $v) (i32.const 100)))
    (i32.store offset=65536 (local.get $q) (local.get $v))
    (i32.store offset=131072 (local.get $q) (local.get $v))
    (local.set $t (i32.load (local.get $q)))
    (i32.store offset=4 (local.get $p) (i32.add (i32.load (local.get $p)) (local.get $t)))
    (i32.store8 offset=8 (local.get $p) (i32.const 9))
    (i32.load offset=4 (local.get $p)))

  ;; swap a[i] and a[j], then a[i] += a[j]: two groups interleaved, each head a fault point for the other
  (func (export "swap") (param $a i32) (param $b i32) (local $t i32)
    (local.set $t (i32.load (local.get $a)))
    (i32.store (local.get $a) (i32.load (local.get $b)))
    (i32.store (local.get $b) (local.get $t))
    (i32.store offset=4 (local.get $a) (i32.add (i32.load offset=4 (local.get $a)) (i32.load offset=4 (local.get $b)))))

  ;; a read-modify-write through a tee'd address, and a field next to it
  (func (export "rmw") (param $p i32) (param $k i32) (local $q i32)
    (i64.store (local.tee $q (i32.add (local.get $p) (i32.shl (local.get $k) (i32.const 3))))
      (i64.add (i64.load (local.get $q)) (i64.const 77)))
    (i32.store16 offset=8 (local.get $q) (i32.add (i32.load16_u offset=8 (local.get $q)) (i32.const 1))))

  ;; constant addresses: a small globals area
  (func (export "consts") (param $v i32) (result i32)
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1028)) (local.get $v)))
    (i32.store8 (i32.const 1033) (local.get $v))
    (i32.add (i32.load (i32.const 1024)) (i32.load (i32.const 1032))))

  ;; p - 4 and p: with p < 4 the first address wraps to ~4 GiB and traps
  (func (export "below") (param $p i32) (result i32)
    (i32.add (i32.load (local.get $p)) (i32.load (i32.add (local.get $p) (i32.const -4)))))

  ;; p + 8 and p + 12 (offsets) wrap past 2^32 for p near 4 GiB: the original traps
  (func (export "wrap") (param $p i32) (result i32)
    (i32.add (i32.load offset=8 (local.get $p)) (i32.load offset=12 (local.get $p))))

  ;; stores at p, p+4, p+8, p+12 in order: with p near the end, the first ones land, then it traps
  (func (export "tail") (param $p i32) (param $v i32)
    (i32.store (local.get $p) (local.get $v))
    (i32.store offset=4 (local.get $p) (i32.add (local.get $v) (i32.const 1)))
    (i32.store offset=8 (local.get $p) (i32.add (local.get $v) (i32.const 2)))
    (i32.store offset=12 (local.get $p) (i32.add (local.get $v) (i32.const 3))))

  ;; p[0] read, memory grows, p[1] read (p in the grown page: the first traps before the grow)
  (func (export "grow") (param $p i32) (result i32) (local $t i32)
    (local.set $t (i32.load (local.get $p)))
    (drop (memory.grow (i32.const 1)))
    (i32.store offset=4 (local.get $p) (i32.const 5))
    (i32.add (local.get $t) (i32.load offset=4 (local.get $p))))
  (func (export "growfirst") (param $p i32) (result i32)
    (drop (memory.grow (i32.const 1)))
    (i32.store (local.get $p) (i32.const 6))
    (i32.add (i32.load (local.get $p)) (i32.load offset=4 (local.get $p))))

  ;; a head in an if arm, or behind a br_if out of its block, serves nothing after
  (func (export "arm") (param $p i32) (param $c i32) (result i32)
    (if (local.get $c) (then (i32.store (local.get $p) (i32.const 11))))
    (block $B
      (br_if $B (i32.eq (local.get $c) (i32.const 2)))
      (i32.store offset=8 (local.get $p) (i32.const 12)))
    (i32.store offset=4 (local.get $p) (i32.const 13))
    (i32.add (i32.load (local.get $p)) (i32.load offset=8 (local.get $p))))

  ;; next[idx[k]] += 1.5 for k < n: the read and write of next[v] share one check in the fast body
  (func (export "push") (param $idx i32) (param $next i32) (param $n i32) (local $k i32) (local $v i32)
    (loop $L (if (i32.lt_u (local.get $k) (local.get $n)) (then
      (f64.store (local.tee $v (i32.add (local.get $next) (i32.and (i32.load (i32.add (local.get $idx) (i32.shl (local.get $k) (i32.const 2)))) (i32.const 0x1fff8))))
        (f64.add (f64.load (local.get $v)) (f64.const 1.5)))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $L)))))
)`);

const END = 4 * 65536;
const CALLS: Call[] = [
  { fn: 'pairs', args: [0, 40000] }, // demand-zero pages
  { fn: 'tail', args: [4096 - 8, 0x1234] }, // a group straddling a page end, fully in bounds
  ...Array.from({ length: 24 }, (_, i) => ({ fn: 'tail', args: [i * 10243 % (END - 16), i * 77] })),
  { fn: 'pairs', args: [0, 40000] },
  { fn: 'pairs', args: [2, 30000] }, // unaligned pairs
  ...Array.from({ length: 16 }, (_, i) => ({ fn: 'evict', args: [(i * 4099) % 65536 & ~3, 65536 + (i * 8191) % 65536 & ~3, i + 1] })),
  { fn: 'evict', args: [4096 - 4, 65536 + 8192, 3] }, // p's fields straddle a page end
  ...Array.from({ length: 16 }, (_, i) => ({ fn: 'swap', args: [(i * 12289) % (END - 8) & ~3, (END - 8 - i * 9973) & ~3] })),
  { fn: 'swap', args: [4096 - 4, 8192 - 4] },
  ...Array.from({ length: 8 }, (_, k) => ({ fn: 'rmw', args: [4096 - 32, k] })),
  { fn: 'consts', args: [5] },
  { fn: 'consts', args: [7] },
  { fn: 'below', args: [100] },
  { fn: 'below', args: [2] }, // traps: p - 4 wraps
  { fn: 'wrap', args: [64] },
  { fn: 'wrap', args: [0xfffffff6] }, // traps: p + 8 passes 2^32
  { fn: 'tail', args: [END - 8, 0x55] }, // two stores land, the third traps
  { fn: 'tail', args: [END - 2, 0x66] }, // the first store straddles the end: traps before writing
  { fn: 'arm', args: [256, 1] },
  { fn: 'arm', args: [512, 0] },
  { fn: 'arm', args: [768, 2] },
  { fn: 'push', args: [0, END / 2, 20000] },
  { fn: 'grow', args: [END] }, // traps: the page does not exist yet
  { fn: 'growfirst', args: [END + 4] }, // grows to 5 pages, then the pair lands in the new one
  { fn: 'grow', args: [END + 8] }, // in the grown page; grows again
  { fn: 'pairs', args: [END - 64, 40] }, // reads the grown pages
];

describe('shared translations', () => {
  it('groups accesses in every function of the test module (so the tests below exercise it)', () => {
    const { counts } = instrument(MODULE, { pageSize: 4096 });
    expect(counts.sharedGroups).toBeGreaterThanOrEqual(12);
    expect(counts.sharedAccesses).toBeGreaterThanOrEqual(18);
    const off = instrument(MODULE, { pageSize: 4096, optimize: { share: false } }).counts;
    expect([off.sharedGroups, off.sharedAccesses]).toEqual([0, 0]);
  });

  describe.each(PAGE_SIZES)('at page size %i, embedded', (pageSize) => {
    it.each([2, 4])('matches V8 with %i frames', async (frames) => {
      const diff = await runBoth(MODULE, CALLS, { pageSize, frames, memory: 'each' });
      expect(diff.mismatches).toEqual([]);
      expect(diff.stats!.evictions).toBeGreaterThan(0);
    });
  });

  it('matches V8 with share switched off', async () => {
    const diff = await runBoth(MODULE, CALLS, { pageSize: 4096, frames: 2, optimize: { share: false } });
    expect(diff.mismatches).toEqual([]);
  });
});

describe('shared translations through a memory server (busy reclaimer)', () => {
  const TOKEN = 'shared-checks-test';
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers(1, { capacity: '64MiB', token: TOKEN });
  });
  afterAll(async () => {
    await servers?.close();
  });
  it.each([[256, 4], [4096, 2], [4096, 3]])('matches V8 at page size %i with %i frames', async (pageSize, frames) => {
    const diff = await runBoth(MODULE, CALLS, { pageSize, frames, memory: 'end', remote: { urls: servers.urls, token: TOKEN } });
    expect(diff.mismatches).toEqual([]);
    expect(diff.stats!.evictions).toBeGreaterThan(0);
  });
});
