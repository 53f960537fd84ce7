/**
 * @fileoverview `copyBytes`: a byte copy that stays fast when either side is shared memory.
 *
 * V8 copies to or from a SharedArrayBuffer with relaxed atomics (no torn words for other threads):
 * 8 bytes at a time when source and destination sit at the same offset mod 8, one byte at a time
 * otherwise. A page that arrives at an odd place in a socket's read buffer (behind a 10-byte ws
 * header and the 16-byte READ_OK header, say) and lands in a page-aligned frame is the slow case:
 * 64 KiB in 18–20 µs instead of 3 µs on the AMD EPYC VM, Node 20 and 24 alike (2026-12-03). Through
 * an aligned scratch buffer it is two fast copies, ~3 µs (the scratch stays in cache).
 */

/** Copies below this size are not worth the second pass. */
const BOUNCE_FROM = 256;
const CHUNK = 64 * 1024;
/** One scratch buffer with 8 bytes of slack, seen from each offset mod 8. */
const scratch = new Uint8Array(CHUNK + 8);
const scratchAt = Array.from({ length: 8 }, (_, o) => scratch.subarray(o, o + CHUNK));

/** `dst.set(src, at)`, through an aligned scratch buffer when shared memory would make it go byte by byte. */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array): void {
  const n = src.length;
  if (n < BOUNCE_FROM || ((src.byteOffset ^ (dst.byteOffset + at)) & 7) === 0
    || !(dst.buffer instanceof SharedArrayBuffer || src.buffer instanceof SharedArrayBuffer)) {
    dst.set(src, at);
    return;
  }
  // The scratch copy is aligned to whichever side is shared (the other side is plain memory: memmove);
  // CHUNK is a multiple of 8, so every chunk has the same alignment.
  const s = scratchAt[(dst.buffer instanceof SharedArrayBuffer ? dst.byteOffset + at : src.byteOffset) & 7]!;
  for (let i = 0; i < n; i += CHUNK) {
    const k = Math.min(CHUNK, n - i);
    s.set(i === 0 && k === n ? src : src.subarray(i, i + k));
    dst.set(k === CHUNK ? s : s.subarray(0, k), at + i);
  }
}
