/**
 * @fileoverview Deterministic random numbers: SplitMix64 (Steele, Lea & Flood, OOPSLA 2014).
 *
 * Output i of a stream is a pure function of (stream seed, i):
 *
 *   randomAt(s, i) = mix64(s + (i + 1) * GAMMA)
 *
 * so a workload can replay a stream from any index (the hash table looks its inserted keys
 * up again this way) and a host test can recompute it in a few lines of BigInt code.
 * `nextU64()` walks one global stream; `seedRandom()` starts it.
 */

/** The golden-ratio increment of SplitMix64: odd, so (i + 1) * GAMMA never repeats mod 2^64. */
export const GAMMA: u64 = 0x9e3779b97f4a7c15;

/** SplitMix64's finalizer (Stafford's "Mix13"): a bijection on u64 with full avalanche. */
// @ts-ignore: decorator
@inline
export function mix64(z: u64): u64 {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

/** The seed of stream `stream` for the user's seed: distinct streams are independent. */
export function streamSeed(seed: i32, stream: u32): u64 {
  return mix64((<u64><u32>seed << 32) | <u64>stream);
}

/** Output `i` of the stream seeded with `s`. */
// @ts-ignore: decorator
@inline
export function randomAt(s: u64, i: u64): u64 {
  return mix64(s + (i + 1) * GAMMA);
}

let streamState: u64 = 0;

/** Starts the global stream: the next `nextU64()` returns `randomAt(streamSeed(seed, stream), 0)`. */
export function seedRandom(seed: i32, stream: u32): void {
  streamState = streamSeed(seed, stream);
}

/** The next output of the global stream. */
// @ts-ignore: decorator
@inline
export function nextU64(): u64 {
  streamState += GAMMA;
  return mix64(streamState);
}

/**
 * A number in [0, n) from the next output: the high half of (low 32 bits × n) (Lemire's
 * multiply-shift). Its bias (below n / 2^32) does not matter here; determinism does.
 */
// @ts-ignore: decorator
@inline
export function nextBelow(n: u32): u32 {
  return <u32>((<u64><u32>nextU64() * <u64>n) >> 32);
}
