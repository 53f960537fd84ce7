/**
 * @fileoverview Unsigned LEB128, the one copy: 7 bits a byte, low group first, the high bit set on
 * every byte but the last. WebAssembly's section framing (abi.ts, instrument/sections.ts,
 * instrument/instrument.ts) and the trace format's varints (trace/) both use it; each caller bounds
 * the length and turns a failure into its own error.
 */

/** `readUleb`: the bytes ran out before the last byte (the cursor is left where it was). */
export const ULEB_INCOMPLETE = -1;
/** `readUleb`: more than `maxBytes` bytes, or a value past `Number.MAX_SAFE_INTEGER`. */
export const ULEB_MALFORMED = -2;

/** Where a reader stands; `readUleb` moves `pos` past a number it decoded. */
export interface ByteCursor {
  pos: number;
}

/**
 * Decodes one number of at most `maxBytes` bytes from `bytes[cursor.pos .. end)`. Returns it and
 * advances `cursor.pos`, or returns `ULEB_INCOMPLETE` / `ULEB_MALFORMED` and leaves `cursor.pos`.
 * Padding (a last group of 0 after others) is accepted, as in WebAssembly; a caller that wants the
 * shortest form only can check that the last byte read is not 0.
 */
export function readUleb(bytes: Uint8Array, cursor: ByteCursor, end: number, maxBytes: number): number {
  let pos = cursor.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (pos >= end) return ULEB_INCOMPLETE;
    const b = bytes[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (value > Number.MAX_SAFE_INTEGER) return ULEB_MALFORMED;
      cursor.pos = pos;
      return value;
    }
    scale *= 128;
  }
  return ULEB_MALFORMED;
}

/** Encodes `value` (a safe non-negative integer) at `buf[pos]`; returns the position after it. */
export function writeUleb(buf: Uint8Array, pos: number, value: number): number {
  if (value < 0x10000000) {
    // Fast path: 28 bits fit in four 7-bit groups with 32-bit operations.
    while (value >= 0x80) {
      buf[pos++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[pos++] = value;
    return pos;
  }
  while (value >= 0x80) {
    buf[pos++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  buf[pos++] = value;
  return pos;
}

/** Most bytes of a u32 (a WebAssembly size, count or index): 32 bits / 7, rounded up. */
export const MAX_U32_ULEB_BYTES = 5;

/** Most bytes `writeUleb` writes for a safe integer (53 bits / 7, rounded up). */
export const MAX_ULEB_BYTES = 8;

/** `value` as a fresh LEB128 byte array (for building small headers; hot paths use `writeUleb`). */
export function encodeUleb(value: number): Uint8Array {
  const buf = new Uint8Array(MAX_ULEB_BYTES);
  return buf.subarray(0, writeUleb(buf, 0, value));
}
