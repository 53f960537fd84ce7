/**
 * @fileoverview sort: in-place quicksort of random i32 values.
 *
 * Working set: one array of `sizeBytes / 4` i32. Quicksort with median-of-three pivots and
 * Hoare partitioning (two cursors streaming toward each other), recursion into the smaller
 * part only (stack depth ≤ log2 n), insertion sort below 16 elements.
 *
 *   1. fill from the PRNG (the low 32 bits of each output, as i32) and sum
 *   2. sort ascending
 *   3. verify: sorted, and the same sum as before (traps if not)
 *   4. checksum = fold over i of (i + 1) × a[i], so it depends on the sorted order itself
 */
import { checkSize, reserve } from '../lib/heap';
import { nextU64, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

/** Parts this small are finished by insertion sort. */
const SMALL: i32 = 16;

// @ts-ignore: decorator
@inline
function at(a: usize, i: i32): i32 {
  return load<i32>(a + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function set(a: usize, i: i32, v: i32): void {
  store<i32>(a + (<usize>i << 2), v);
}

// @ts-ignore: decorator
@inline
function swap(a: usize, i: i32, j: i32): void {
  const t = at(a, i);
  set(a, i, at(a, j));
  set(a, j, t);
}

/** Sorts a[lo..hi] (inclusive) by insertion. */
function insertionSort(a: usize, lo: i32, hi: i32): void {
  for (let i = lo + 1; i <= hi; i++) {
    const v = at(a, i);
    let j = i - 1;
    while (j >= lo && at(a, j) > v) {
      set(a, j + 1, at(a, j));
      j--;
    }
    set(a, j + 1, v);
  }
}

/** Sorts a[lo..hi] (inclusive). */
function quicksort(a: usize, lo: i32, hi: i32): void {
  while (hi - lo >= SMALL) {
    // Median of three: order a[lo], a[mid], a[hi]; the median lands in a[mid].
    const mid = lo + ((hi - lo) >> 1);
    if (at(a, mid) < at(a, lo)) swap(a, mid, lo);
    if (at(a, hi) < at(a, lo)) swap(a, hi, lo);
    if (at(a, hi) < at(a, mid)) swap(a, hi, mid);
    const pivot = at(a, mid);

    // Hoare partition: afterwards a[lo..j] <= pivot <= a[j+1..hi].
    let i = lo - 1;
    let j = hi + 1;
    while (true) {
      do i++; while (at(a, i) < pivot);
      do j--; while (at(a, j) > pivot);
      if (i >= j) break;
      swap(a, i, j);
    }

    // Recurse into the smaller part, loop on the larger one.
    if (j - lo < hi - j) {
      quicksort(a, lo, j);
      lo = j + 1;
    } else {
      quicksort(a, j + 1, hi);
      hi = j;
    }
  }
  insertionSort(a, lo, hi);
}

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const n = sizeBytes >> 2;
  const a = reserve(<usize>n << 2);

  // 1. Fill.
  seedRandom(seed, 0);
  let sumBefore: i64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <i32>nextU64();
    set(a, i, v);
    sumBefore += v;
  }

  // 2. Sort.
  quicksort(a, 0, n - 1);

  // 3. Verify, and 4. checksum.
  let h = fold(CHECKSUM_BASIS, <u64>n);
  let sumAfter: i64 = at(a, 0);
  let weighted: u64 = <u64><i64>at(a, 0);
  for (let i = 1; i < n; i++) {
    const v = at(a, i);
    if (v < at(a, i - 1)) unreachable(); // not sorted
    sumAfter += v;
    weighted += <u64>(i + 1) * <u64><i64>v;
  }
  if (sumAfter != sumBefore) unreachable(); // elements were lost or duplicated
  h = fold(h, weighted);
  h = fold(h, <u64>sumAfter);
  h = fold(h, <u64><i64>at(a, n >> 1)); // the median
  return <i64>h;
}
