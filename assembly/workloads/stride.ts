/**
 * @fileoverview stride: a strided scan with a stride of 4 KiB + 64 bytes, wrapping.
 *
 * Working set: `sizeBytes / 64` lines of 64 bytes (8 u64 words each). A pass visits every
 * line once, 65 lines (4160 bytes) apart: lane j visits lines j, j + 65, j + 130, … and, past
 * the end, wraps to lane j + 1. With 4 KiB pages each step lands on the next page, 64 bytes
 * further in, so a pass sweeps every page 65 times.
 *
 *   line l, lane j = l % 65:  ┌────────┬────────┬─── … ───┬────────┐
 *                             │ lane 0 │ lane 1 │         │lane 64 │  × lines/65
 *   visit order: column by column (all of lane 0, then lane 1, …)
 *
 *   pass 0     fill the 8 words of each line from the PRNG          (writes)
 *   pass 1, 2  sum the 8 words, rewrite word 0, and read the u64   (read-modify-write,
 *              at byte 60 that straddles into the next line         straddling reads)
 */
import { checkSize, reserve } from '../lib/heap';
import { nextU64, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

const LINE: usize = 64;
/** Stride in lines: 65 × 64 B = 4 KiB + 64 B. */
const STRIDE_LINES: usize = 65;
const SCAN_PASSES: u64 = 2;

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const lines = <usize>sizeBytes / LINE;
  const base = reserve(lines * LINE);
  const end = base + lines * LINE;
  const strideBytes = STRIDE_LINES * LINE;

  // Pass 0: fill, in the strided order.
  seedRandom(seed, 0);
  for (let lane: usize = 0; lane < STRIDE_LINES; lane++) {
    for (let p = base + lane * LINE; p < end; p += strideBytes) {
      for (let w: usize = 0; w < LINE; w += 8) store<u64>(p + w, nextU64());
    }
  }

  // Passes 1..: sum each line, rewrite its first word, read across into the next line.
  let h = fold(CHECKSUM_BASIS, <u64>lines);
  for (let pass: u64 = 1; pass <= SCAN_PASSES; pass++) {
    let sum: u64 = 0;
    let straddles: u64 = 0;
    for (let lane: usize = 0; lane < STRIDE_LINES; lane++) {
      for (let p = base + lane * LINE; p < end; p += strideBytes) {
        let lineSum: u64 = 0;
        for (let w: usize = 0; w < LINE; w += 8) lineSum += load<u64>(p + w);
        sum += lineSum;
        store<u64>(p, load<u64>(p) ^ (lineSum >> 7) ^ pass);
        // Bytes 60..67: the last 4 bytes of this line and the first 4 of the next.
        if (p + LINE < end) straddles += load<u64>(p + 60);
      }
    }
    h = fold(h, sum);
    h = fold(h, straddles);
  }
  return <i64>h;
}
