/**
 * @fileoverview Folding values into a run's checksum.
 *
 * `fold(h, v)` is order-sensitive (it multiplies after each xor), so a checksum built with it
 * changes if any value or its position changes; plain wrapping sums are used where the order
 * of visits must not matter.
 */

/** Starting value of every checksum (FNV-1a's 64-bit offset basis). */
export const CHECKSUM_BASIS: u64 = 0xcbf29ce484222325;

/** Folds `v` into `h`: xor, multiply by an odd constant, xor-shift the high half down. */
// @ts-ignore: decorator
@inline
export function fold(h: u64, v: u64): u64 {
  h = (h ^ v) * 0x9e3779b97f4a7c15;
  return h ^ (h >> 32);
}
