/**
 * @fileoverview seqscan: sequential scans over one array of u64 words.
 *
 * Working set: `sizeBytes / 8` words, scanned front to back five times.
 *
 *   pass 0  fill every word from the PRNG                      (writes)
 *   pass 1  sum the words                                      (reads)
 *   pass 2  sum them and rewrite each one                      (read-modify-write)
 *   pass 3  sum them two at a time with 128-bit SIMD loads     (v128 reads)
 *   pass 4  sum 8-byte words read 4 bytes off alignment        (reads straddling every page edge)
 *
 * Self-checks (trap on failure): passes 1 and 2 read the same sum, and pass 3's SIMD sum equals
 * the sum of the words pass 2 wrote.
 */
import { checkSize, reserve } from '../lib/heap';
import { nextU64, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

/** Multiplier of the pass-2 rewrite; odd, so the rewrite is a bijection on u64. */
const REWRITE_MUL: u64 = 0x9e3779b97f4a7c15;

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const n = <usize>sizeBytes >> 3;
  const words = reserve(n << 3);
  const end = words + (n << 3);

  // Pass 0: fill.
  seedRandom(seed, 0);
  for (let p = words; p < end; p += 8) store<u64>(p, nextU64());

  // Pass 1: sum.
  let sum1: u64 = 0;
  for (let p = words; p < end; p += 8) sum1 += load<u64>(p);

  // Pass 2: sum, and rewrite w[i] = w[i] * REWRITE_MUL + i (dirties every page again).
  let sum2: u64 = 0;
  let rewritten: u64 = 0;
  let i: u64 = 0;
  for (let p = words; p < end; p += 8, i++) {
    const w = load<u64>(p);
    sum2 += w;
    const nw = w * REWRITE_MUL + i;
    store<u64>(p, nw);
    rewritten += nw;
  }
  if (sum2 != sum1) unreachable(); // two reads of unchanged words disagree

  // Pass 3: the same sum with 16-byte SIMD loads (two u64 lanes each), plus the last word if
  // n is odd.
  let acc = i64x2.splat(0);
  const pairsEnd = words + ((n >> 1) << 4);
  for (let p = words; p < pairsEnd; p += 16) acc = i64x2.add(acc, v128.load(p));
  let sum3 = <u64>(i64x2.extract_lane(acc, 0) + i64x2.extract_lane(acc, 1));
  if (n & 1) sum3 += load<u64>(end - 8);
  if (sum3 != rewritten) unreachable(); // SIMD and scalar views of the same words disagree

  // Pass 4: words at byte offset 4 + 8k: one of them straddles every page boundary.
  let sum4: u64 = 0;
  for (let p = words + 4; p + 8 <= end; p += 8) sum4 += load<u64>(p);

  let h = fold(CHECKSUM_BASIS, <u64>n);
  h = fold(h, sum1);
  h = fold(h, sum2);
  h = fold(h, sum3);
  h = fold(h, sum4);
  return <i64>h;
}
