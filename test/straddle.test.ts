/**
 * @fileoverview The in-wasm straddle path (host/instrument/straddle.ts) against V8. A module fills
 * its memory front to back (so with a big pool consecutive pages get adjacent frames), then reads
 * and writes 2-, 4-, 8- and 16-byte values across every page end, at every page size: with all
 * memory local the straddles must stay in wasm (the host counts almost none), with a 2-frame pool
 * the frames are apart and the host's bounce buffer serves them; results, traps and memory agree
 * with the original either way. Also: a straddle into the page past the end of memory traps like
 * the original, with nothing written; a wrapped `base + offset` still traps; a straddling store to
 * a clean page (only read so far) takes the host's write fault and lands; with the option off
 * (`optimize: { straddle: false }`) every straddle goes to the host.
 */
import { describe, expect, it } from 'vitest';
import { PAGE_SIZES, runBoth, wat, type Call } from './support/differential.js';

const PAGES = 4;
const MODULE = wat(`(module
  (memory (export "mem") ${PAGES} ${PAGES})

  ;; bytes [0, n) = i * 7 + 1, in order: first-touch order gives adjacent frames
  (func (export "fill") (param $n i32) (local $i i32)
    (loop $L (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (i32.store8 (local.get $i) (i32.add (i32.mul (local.get $i) (i32.const 7)) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $L)))))

  ;; around every multiple of $page below $end: loads of 2, 4, 8, 16 bytes at every offset that
  ;; crosses it, and an 8-byte read-modify-write; returns a checksum
  (func (export "cross") (param $page i32) (param $end i32) (result i64) (local $b i32) (local $k i32) (local $s i64)
    (local.set $b (local.get $page))
    (loop $P (if (i32.lt_u (local.get $b) (local.get $end)) (then
      (local.set $k (i32.const 1))
      (loop $K (if (i32.lt_u (local.get $k) (i32.const 16)) (then
        (local.set $s (i64.add (i64.rotl (local.get $s) (i64.const 5))
          (i64.extend_i32_u (i32.load16_u (i32.sub (local.get $b) (i32.const 1))))))
        (local.set $s (i64.add (local.get $s) (i64.extend_i32_u (i32.load (i32.sub (local.get $b) (i32.and (local.get $k) (i32.const 3)))))))
        (local.set $s (i64.xor (local.get $s) (i64.load (i32.sub (local.get $b) (i32.and (local.get $k) (i32.const 7))))))
        (local.set $s (i64.add (local.get $s) (i64x2.extract_lane 1 (v128.load (i32.sub (local.get $b) (local.get $k))))))
        (i64.store offset=4 (i32.sub (local.get $b) (i32.const 8))
          (i64.add (i64.load offset=4 (i32.sub (local.get $b) (i32.const 8))) (local.get $s)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $K))))
      (local.set $b (i32.add (local.get $b) (local.get $page)))
      (br $P))))
    (local.get $s))

  (func (export "touch") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $L (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 256)))
      (br $L))))
    (local.get $s))

  (func (export "ld64") (param $p i32) (result i64) (i64.load (local.get $p)))
  (func (export "st64") (param $p i32) (param $v i64) (i64.store (local.get $p) (local.get $v)))
  (func (export "ld64hi") (param $p i32) (result i64) (i64.load offset=0xfffffff0 (local.get $p)))
)`);

const END = PAGES * 65536;

function calls(pageSize: number): Call[] {
  // every page read in order (mapped clean), then a straddling store to two of them: the host's
  // write fault
  const out: Call[] = [{ fn: 'touch', args: [END] }, { fn: 'st64', args: [2 * pageSize - 5, 0x0a0b0c0d0e0f1011n] },
    { fn: 'ld64', args: [2 * pageSize - 6] }, { fn: 'fill', args: [END] }];
  for (const b of [pageSize, 2 * pageSize, 65536, END - pageSize]) {
    out.push({ fn: 'ld64', args: [b - 3] }, { fn: 'st64', args: [b - 5, 0x0102030405060708n] }, { fn: 'ld64', args: [b - 4] });
  }
  out.push(
    { fn: 'cross', args: [pageSize, END] },
    { fn: 'ld64', args: [END - 4] }, // straddles the end of memory: traps
    { fn: 'st64', args: [END - 2, 0x1111111111111111n] }, // traps with nothing written
    { fn: 'ld64', args: [END - 8] },
    { fn: 'ld64hi', args: [0x20] }, // p + 0xfffffff0 wraps past 2^32: traps
  );
  return out;
}

describe('straddling accesses', () => {
  describe.each(PAGE_SIZES.filter((p) => p < 65536))('at page size %i', (pageSize) => {
    it('stay in wasm when the frames are adjacent (all memory local)', async () => {
      const diff = await runBoth(MODULE, calls(pageSize), { pageSize, local: { fraction: 1 }, memory: 'end' });
      expect(diff.mismatches).toEqual([]);
      // `cross` alone makes 75 straddling accesses per page end; the host sees only the first
      // writes to clean pages (the opening stores) and the traps.
      expect(diff.stats!.straddles).toBeLessThan(8);
      expect(diff.original.results.filter((r) => r.startsWith('trap')).length).toBe(3);
    });

    it('all go to the host with the option off (--no-straddle)', async () => {
      const diff = await runBoth(MODULE, calls(pageSize), { pageSize, local: { fraction: 1 }, memory: 'end', optimize: { straddle: false } });
      expect(diff.mismatches).toEqual([]);
      expect(diff.stats!.straddles).toBeGreaterThan(75 * (END / pageSize - 1));
    });

    it('take the bounce buffer when the frames are apart (2 frames)', async () => {
      const diff = await runBoth(MODULE, calls(pageSize), { pageSize, frames: 2, memory: 'end' });
      expect(diff.mismatches).toEqual([]);
      expect(diff.stats!.straddles).toBeGreaterThan(END / pageSize);
    });
  });
});
