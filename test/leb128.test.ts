/**
 * @fileoverview `host/leb128.ts`, the one LEB128 codec of wasm framing and trace varints: byte
 * vectors from the WebAssembly spec's examples, round trips at every group boundary, and the two
 * failures (input that ends early, too many bytes or a value past 2^53).
 */

import { describe, expect, it } from 'vitest';
import { encodeUleb, MAX_ULEB_BYTES, readUleb, ULEB_INCOMPLETE, ULEB_MALFORMED, writeUleb } from '../host/leb128.js';

describe('LEB128', () => {
  it('encodes the known vectors', () => {
    expect([...encodeUleb(0)]).toEqual([0x00]);
    expect([...encodeUleb(127)]).toEqual([0x7f]);
    expect([...encodeUleb(128)]).toEqual([0x80, 0x01]);
    expect([...encodeUleb(624485)]).toEqual([0xe5, 0x8e, 0x26]);
    expect([...encodeUleb(2 ** 32 - 1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(encodeUleb(Number.MAX_SAFE_INTEGER).length).toBe(MAX_ULEB_BYTES);
  });

  it('round-trips at every 7-bit boundary, through both write paths, and advances the cursor', () => {
    const buf = new Uint8Array(2 * MAX_ULEB_BYTES);
    for (let bits = 0; bits <= 53; bits++) {
      for (const v of [2 ** bits - 1, 2 ** bits, Math.min(2 ** bits + 1, Number.MAX_SAFE_INTEGER)]) {
        if (v > Number.MAX_SAFE_INTEGER) continue;
        buf.fill(0xaa);
        const end = writeUleb(buf, 3, v);
        const at = { pos: 3 };
        expect(readUleb(buf, at, buf.length, MAX_ULEB_BYTES)).toBe(v);
        expect(at.pos).toBe(end);
      }
    }
  });

  it('accepts padding, as WebAssembly does (a caller checks for the shortest form itself)', () => {
    const at = { pos: 0 };
    expect(readUleb(Uint8Array.of(0x85, 0x80, 0x00), at, 3, 5)).toBe(5);
    expect(at.pos).toBe(3);
  });

  it('reports input that ends early, and leaves the cursor where it was', () => {
    const at = { pos: 1 };
    expect(readUleb(Uint8Array.of(0x00, 0x80, 0x80), at, 3, 5)).toBe(ULEB_INCOMPLETE);
    expect(at.pos).toBe(1);
    // `end` bounds the read even when the array goes on.
    expect(readUleb(Uint8Array.of(0x80, 0x01), { pos: 0 }, 1, 5)).toBe(ULEB_INCOMPLETE);
  });

  it('reports too many bytes and values past Number.MAX_SAFE_INTEGER', () => {
    const at = { pos: 0 };
    expect(readUleb(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x01), at, 6, 5)).toBe(ULEB_MALFORMED);
    expect(at.pos).toBe(0);
    const big = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f); // 2^56 - 1
    expect(readUleb(big, at, big.length, 8)).toBe(ULEB_MALFORMED);
  });
});
