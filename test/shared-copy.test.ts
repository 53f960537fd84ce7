/**
 * `copyBytes` (host/shared-copy.ts) copies exactly what `Uint8Array#set` would, whichever side is
 * shared memory and at every alignment, including copies longer than its scratch buffer.
 */
import { describe, expect, test } from 'vitest';
import { copyBytes } from '../host/shared-copy.js';

function filled(n: number, shared: boolean, seed: number): Uint8Array {
  const b = shared ? new Uint8Array(new SharedArrayBuffer(n)) : new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('copyBytes', () => {
  for (const [srcShared, dstShared] of [[false, true], [true, false], [true, true], [false, false]] as const) {
    test(`${srcShared ? 'shared' : 'plain'} → ${dstShared ? 'shared' : 'plain'}: same bytes as set(), every offset mod 8, sizes across the scratch size`, () => {
      const src = filled(200_000, srcShared, 1);
      for (const n of [0, 1, 255, 256, 4096, 65535, 65536, 65537, 150_001]) {
        for (let so = 0; so < 8; so++) {
          for (const dOff of [0, 3, 8, 13]) {
            const dst = filled(n + 32, dstShared, 2);
            const want = new Uint8Array(dst);
            const part = src.subarray(so + 5, so + 5 + n);
            want.set(part, 3 + dOff);
            copyBytes(dst.subarray(3), dOff, part); // a view that does not start at its buffer's start
            expect(Buffer.compare(Buffer.from(dst.buffer, dst.byteOffset, dst.length), Buffer.from(want))).toBe(0);
          }
        }
      }
    });
  }
});
