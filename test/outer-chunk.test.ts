/**
 * @fileoverview Outer-loop chunking (option `outer`, host/instrument/passes/chunk.ts) against V8:
 * loops around inner loops whose own accesses are streams of the outer iv, run unmodified and
 * instrumented with a 2–8 frame pool, embedded and through a memory server (busy reclaimer), must
 * agree on every result, trap and byte of memory. Covered: the CSR shape of the graph workload
 * (`offsets[u]`, `offsets[u+1]`, `rank[u]` before a short edge loop, `offsets[u]` read through a
 * local written twice per iteration); an outer chunk whose page is evicted mid-chunk by a fault
 * of the inner loop's scattered accesses, of its stream (rows of two pages, so the outer page is
 * evicted inside the inner loop's own chunked copy), and by a host call after the inner loop;
 * an outer page evicted by inline faults of an inner loop's chunked copy right before the next
 * outer iteration (`evict`; embedded at 4, 6 and 8 frames it fails when those faults do not zero
 * the outer counter); accesses after the inner loop; an outer stream running past the end
 * of memory (traps where V8 does); memory.grow after the inner loop, and inside it (then the loop
 * is not chunked); a three-deep nest.
 */
import { describe, expect, it } from 'vitest';
import { instrument } from '../host/instrument/instrument.js';
import { runBoth, wat, type Call } from './support/differential.js';
import { embeddedSuite, serverSuite } from './support/loop-suites.js';

const LOOP = (name: string, cond: string, body: string) => `(loop ${name} (if ${cond} (then ${body} (br ${name}))))`;
const INC = (v: string, by = 1) => `(local.set ${v} (i32.add (local.get ${v}) (i32.const ${by})))`;
const AT = (base: string, i: string, shift: number) => `(i32.add (local.get ${base}) (i32.shl (local.get ${i}) (i32.const ${shift})))`;
const LT = (a: string, b: string) => `(i32.lt_u (local.get ${a}) (local.get ${b}))`;

/** Memory: 4 pages (256 KiB) at first, up to 8. */
const END = 4 * 65536;

const MODULE = wat(`(module
  (import "env" "tick" (func $tick (param i32)))
  (memory (export "mem") 4 8)

  ;; CSR: off[u] = (u * 5) & 0x3ff8 words into tgt (0..4 edges... up to 10), values scattered
  (func (export "build") (param $off i32) (param $tgt i32) (param $n i32) (local $u i32) (local $k i32)
    ${LOOP('$B', LT('$u', '$n'), `
      (i32.store ${AT('$off', '$u', 2)} (i32.mul (local.get $u) (i32.const 3)))
      (i32.store ${AT('$tgt', '$u', 2)} (i32.and (i32.mul (local.get $u) (i32.const 40503)) (i32.const 0x7ffc)))
      ${INC('$u')}`)})

  ;; push rank[u] along edges off[u]..off[u+1] (graph's PageRank shape): the outer streams come first
  ;; (off[u+1] through a tee of u*4, off[u] through the same local), the edge loop scatters into nxt
  (func (export "push") (param $off i32) (param $tgt i32) (param $rank i32) (param $nxt i32) (param $n i32) (result i32)
    (local $u i32) (local $k i32) (local $last i32) (local $share i32) (local $s i32)
    ${LOOP('$U', LT('$u', '$n'), `
      (local.set $share (i32.add (i32.load ${AT('$rank', '$u', 2)})
        (i32.sub
          (local.tee $last (i32.load offset=4 (i32.add (local.get $off) (local.tee $k (i32.shl (local.get $u) (i32.const 2))))))
          (local.tee $k (i32.load (i32.add (local.get $off) (local.get $k)))))))
      (local.set $k (i32.and (local.get $k) (i32.const 0x1fff)))
      (local.set $last (i32.and (local.get $last) (i32.const 0x1fff)))
      ${LOOP('$K', LT('$k', '$last'), `
        (local.set $s (i32.add (local.get $s) (i32.load ${AT('$tgt', '$k', 2)})))
        ;; a store first, so the scattered accesses below fault inline (not out of line)
        (i32.store ${AT('$tgt', '$k', 2)} (i32.xor (i32.load ${AT('$tgt', '$k', 2)}) (i32.const 4)))
        (i32.store (i32.add (local.get $nxt) (i32.and (i32.load ${AT('$tgt', '$k', 2)}) (i32.const 0xfffc)))
          (i32.add (local.get $share) (i32.load (i32.add (local.get $nxt) (i32.and (i32.load ${AT('$tgt', '$k', 2)}) (i32.const 0xfffc))))))
        ${INC('$k')}`)}
      ;; no access after the inner loop: only the inner loop's faults can drop the outer chunk
      (local.set $s (i32.add (local.get $s) (local.get $u)))
      ${INC('$u')}`)}
    (local.get $s))

  ;; an outer stream a[i] (read before the inner loop), an inner stream over row i of b, and a host
  ;; call every 16 rows after the inner loop; rows are 'w' words
  (func (export "rows") (param $a i32) (param $b i32) (param $w i32) (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $x i32) (local $s i32) (local $row i32)
    ${LOOP('$I', LT('$i', '$n'), `
      (local.set $x (i32.load ${AT('$a', '$i', 2)}))
      (local.set $row (i32.add (local.get $b) (i32.shl (i32.mul (local.get $i) (local.get $w)) (i32.const 2))))
      (local.set $j (i32.const 0))
      ${LOOP('$J', LT('$j', '$w'), `
        (i32.store ${AT('$row', '$j', 2)} (i32.add (i32.load ${AT('$row', '$j', 2)}) (local.get $x)))
        ${INC('$j')}`)}
      (if (i32.eqz (i32.and (local.get $i) (i32.const 15))) (then (call $tick (local.get $i))))
      (local.set $s (i32.add (local.get $s) (i32.load ${AT('$row', '$j', 0)})))
      ${INC('$i')}`)}
    (local.get $s))

  ;; an outer stream that runs from the old end of memory into a page grown (after the inner loop)
  ;; at outer iteration k (k >= n: no grow, it traps at the old end)
  (func (export "grow") (param $base i32) (param $n i32) (param $k i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
    ${LOOP('$I', LT('$i', '$n'), `
      (local.set $s (i32.add (local.get $s) (i32.load ${AT('$base', '$i', 2)})))
      (local.set $j (i32.const 0))
      ${LOOP('$J', '(i32.lt_u (local.get $j) (i32.const 3))', `(local.set $s (i32.add (local.get $s) (i32.load8_u (i32.add (local.get $j) (i32.const 64))))) ${INC('$j')}`)}
      (if (i32.eq (local.get $i) (local.get $k)) (then (drop (memory.grow (i32.const 1)))))
      (i32.store ${AT('$base', '$i', 2)} (local.get $s))
      ${INC('$i')}`)}
    (local.get $s))

  ;; memory.grow inside the inner loop: a safepoint every iteration, so the outer loop stays as it is
  (func (export "growin") (param $base i32) (param $n i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
    ${LOOP('$I', LT('$i', '$n'), `
      (local.set $s (i32.add (local.get $s) (i32.load ${AT('$base', '$i', 2)})))
      (local.set $j (i32.const 0))
      ${LOOP('$J', '(i32.lt_u (local.get $j) (i32.const 2))', `(local.set $s (i32.add (local.get $s) (memory.size))) (if (i32.eq (local.get $i) (i32.const 7)) (then (drop (memory.grow (i32.const 0))))) ${INC('$j')}`)}
      ${INC('$i')}`)}
    (local.get $s))

  ;; a[i] += 1 through the outer stream, then an inner loop run once whose faults are in its own
  ;; chunked copy: it reads a[i+1] (an inner stream, so the loop is chunked and its refill needs the
  ;; outer page mapped), writes $s (a side effect: the loads after it fault inline, in the chunked
  ;; copy, not in its ordinary body) and reads b and c at ((i >> 2) & 15) * st: with st at least
  ;; the page size, two new pages every 4 rows.
  ;; Faults in an inner loop's ordinary body are checks of the outer fast copy itself and zero the
  ;; outer counter as their own; only the chunked copy's inline checks rely on the enclosing outer
  ;; chunks (dropOnFault's active list). Every 4 rows the new pages fault there: the sweeps clear
  ;; the outer page's reference bit and take its frame, and nothing checks the page table between
  ;; that and a[i+1] += 1 of the next row (the inner loop runs once: a second iteration's refill
  ;; would check the outer page again, and fault in the ordinary body), so an outer counter left
  ;; running writes a[i+1] into the frame now holding b's or c's page.
  (func (export "evict") (param $a i32) (param $b i32) (param $c i32) (param $st i32) (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $s i32) (local $p i32)
    ${LOOP('$I', LT('$i', '$n'), `
      (i32.store ${AT('$a', '$i', 2)} (i32.add (i32.load ${AT('$a', '$i', 2)}) (i32.const 1)))
      (local.set $p (i32.mul (local.get $st) (i32.and (i32.shr_u (local.get $i) (i32.const 2)) (i32.const 15))))
      (local.set $j (i32.const 0))
      ${LOOP('$J', '(i32.lt_u (local.get $j) (i32.const 1))', `
        (local.set $s (i32.add (local.get $s) (i32.load offset=4 (i32.add (local.get $a) (i32.shl (i32.add (local.get $i) (local.get $j)) (i32.const 2))))))
        (local.set $s (i32.xor (local.get $s) (i32.load (i32.add (local.get $b) (i32.add (local.get $p) (i32.and (local.get $s) (i32.const 0xfc)))))))
        (local.set $s (i32.add (local.get $s) (i32.load (i32.add (local.get $c) (local.get $p)))))
        ${INC('$j')}`)}
      ${INC('$i')}`)}
    (local.get $s))

  ;; three deep: c[i] read in the outermost loop, a[i*8+j] in the middle one, b scattered innermost
  (func (export "deep") (param $a i32) (param $b i32) (param $c i32) (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $k i32) (local $s i32)
    ${LOOP('$I', LT('$i', '$n'), `
      (local.set $s (i32.xor (local.get $s) (i32.load ${AT('$c', '$i', 2)})))
      (local.set $j (i32.const 0))
      ${LOOP('$J', '(i32.lt_u (local.get $j) (i32.const 8))', `
        (local.set $s (i32.add (local.get $s) (i32.load (i32.add (local.get $a) (i32.shl (i32.add (i32.shl (local.get $i) (i32.const 3)) (local.get $j)) (i32.const 2))))))
        (local.set $k (i32.const 0))
        ${LOOP('$K', '(i32.lt_u (local.get $k) (i32.const 2))', `
          (local.set $s (i32.add (i32.rotl (local.get $s) (i32.const 3)) (i32.load (i32.add (local.get $b) (i32.and (i32.mul (i32.add (local.get $s) (local.get $k)) (i32.const 40503)) (i32.const 0x1fffc))))))
          ${INC('$k')}`)}
        ${INC('$j')}`)}
      ${INC('$i')}`)}
    (local.get $s))
)`);

const CALLS: Call[] = [
  { fn: 'build', args: [0, 65536, 16384] },
  { fn: 'push', args: [0, 65536, 131072, 196608, 16000] },
  { fn: 'push', args: [0, 65536, 131072, 196608, 16383] },
  { fn: 'push', args: [END - 4 * 3000, 65536, 131072, 196608, 3000] }, // off[u+1] runs past the end: traps
  { fn: 'rows', args: [0, 65536, 37, 1000] },
  { fn: 'rows', args: [END - 400, 65536, 5, 200] }, // a[i] runs past the end: traps
  // rows of 8 KiB (two 4 KiB pages each): between two host calls every row's inner stream faults on
  // at least two new pages, so with 2-4 frames the page of a[i] is evicted inside the inner loop's
  // own chunked copy, and the outer chunk must re-translate it on the next row
  { fn: 'rows', args: [0, 65536, 2048, 24] },
  { fn: 'rows', args: [0, 65536, 1030, 47] },
  { fn: 'deep', args: [0, 65536, 131072, 3000] },
  { fn: 'evict', args: [0, 65536, 131072, 4096, 4000] },
  { fn: 'growin', args: [0, 100] },
  { fn: 'grow', args: [END - 64, 100, 1000] }, // no grow: traps at the old end
  { fn: 'grow', args: [END - 64, 100, 10] }, // grows at i = 10, then the outer stream runs into the new page
];

describe('outer-loop chunking', () => {
  it('versions the outer loops of the test module (so the tests below exercise it)', () => {
    const on = instrument(MODULE, { pageSize: 4096 }).counts;
    const off = instrument(MODULE, { pageSize: 4096, optimize: { outer: false } }).counts;
    // push, rows, grow, evict, deep (outermost and middle); not build (no inner loop) nor growin
    expect(on.chunkedLoops - off.chunkedLoops).toBeGreaterThanOrEqual(6);
    expect(on.chunkedAccesses - off.chunkedAccesses).toBeGreaterThanOrEqual(7);
  });

  it('makes the graph workload\'s per-node accesses streams', async () => {
    const { readFileSync } = await import('node:fs');
    const { workloadPath } = await import('../host/workloads.js');
    const bytes = readFileSync(workloadPath('graph'));
    const on = instrument(bytes, { pageSize: 4096 }).counts;
    const off = instrument(bytes, { pageSize: 4096, optimize: { outer: false } }).counts;
    expect(on.chunkedAccesses - off.chunkedAccesses).toBeGreaterThanOrEqual(3);
  });

  embeddedSuite(MODULE, CALLS, [2, 4]);

  // "evict" with larger pools than the suite's 2 and 4 frames (at 2, a's, b's and c's pages do not
  // fit at once, and the case does not catch a missed drop)
  it.each([[256, 8], [4096, 8], [4096, 6]])('matches V8 when an inner loop\'s chunked copy evicts the outer page (page size %i, %i frames)', async (pageSize, frames) => {
    const evict: Call = { fn: 'evict', args: [0, 65536, 131072, pageSize, 4000] };
    const diff = await runBoth(MODULE, [CALLS[0]!, evict, evict], { pageSize, frames, memory: 'each' });
    expect(diff.mismatches).toEqual([]);
    expect(diff.stats!.evictions).toBeGreaterThan(0);
  });

  it('matches V8 with outer chunking off', async () => {
    const diff = await runBoth(MODULE, CALLS, { pageSize: 4096, frames: 2, optimize: { outer: false } });
    expect(diff.mismatches).toEqual([]);
  });
});

serverSuite('outer-loop chunking', MODULE, CALLS, 'outer-chunk-test');
