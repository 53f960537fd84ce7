/**
 * @fileoverview grow: grows memory in steps while using everything it has so far.
 *
 * Working set: STEPS regions of `sizeBytes / STEPS` bytes (rounded down to 8), one after the
 * other from the heap start. Step s:
 *
 *   1. memory.grow until region s fits (a second run in the same instance may find the
 *      memory already grown; then nothing grows and the result is the same)
 *   2. fill region s from the PRNG (writes into freshly grown pages)
 *   3. sweep regions 0..s with a 256-byte stride: read a word, fold it in, rewrite it
 *
 *    step 0: [r0]
 *    step 1: [r0][r1]              ← memory.grow, then read/modify/write r0 and r1
 *    …
 *    step 15: [r0][r1] … [r15]
 *
 * Each sweep also reads the u64 at byte 252 of each 256-byte block, which straddles into the
 * next block: at every page boundary, since page sizes are multiples of 256.
 */
import { checkSize, heapStart, WASM_PAGE } from '../lib/heap';
import { nextU64, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

const STEPS: u32 = 16;
const SWEEP_STRIDE: usize = 256;

/** Grows memory, with one memory.grow, until [0, end) is addressable. */
function growTo(end: usize): void {
  const needPages = <i32>((<u64>end + (WASM_PAGE - 1)) >> 16);
  const havePages = memory.size();
  if (needPages > havePages && memory.grow(needPages - havePages) < 0) unreachable();
}

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const regionBytes = (<usize>sizeBytes / STEPS) & ~(<usize>7);
  const base = heapStart();

  seedRandom(seed, 0);
  let h = fold(CHECKSUM_BASIS, <u64>regionBytes);
  for (let s: u32 = 0; s < STEPS; s++) {
    const region = base + <usize>s * regionBytes;
    const end = region + regionBytes;
    growTo(end);
    if (<usize>memory.size() << 16 < end) unreachable(); // grow said yes but memory is short

    for (let p = region; p < end; p += 8) store<u64>(p, nextU64());

    let sum: u64 = 0;
    let straddles: u64 = 0;
    for (let p = base; p < end; p += SWEEP_STRIDE) {
      const w = load<u64>(p);
      sum += w;
      store<u64>(p, w ^ (<u64>s << 32) ^ (sum >> 11));
      if (p + SWEEP_STRIDE < end) straddles += load<u64>(p + SWEEP_STRIDE - 4);
    }
    h = fold(h, sum);
    h = fold(h, straddles);
  }
  return <i64>h;
}
