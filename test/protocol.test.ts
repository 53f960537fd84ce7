/**
 * @fileoverview Codec tests, in bytes: round trips of every op, hex golden frames, frames split
 * across writes at every byte, 10,000 frames in one buffer, and one test per malformed-frame error
 * (class, code, wire status, message).
 */
import { describe, expect, test } from 'vitest';
import { AuthError, ProtocolError, ServerOutOfMemoryError } from '../host/errors.js';
import {
  decode, encode, encodeDrain, encodeDraining, encodeError, encodeHello, encodeRead, encodeReadOk, encodeWrite, encodeWriteHead, encodeWriteOk, errorFromStatus, fitUtf8, FrameError, FrameReader,
  initReadOkAt, readItem, readOkBytes, readRequestCount, DEFAULT_LIMITS, MAX_CLOSE_REASON_BYTES, Op, PROTOCOL_VERSION, Status, type DecodeContext, type Message,
} from '../host/protocol/index.js';

const PS = 256;
const ctx: DecodeContext = { ...DEFAULT_LIMITS, pageSize: PS };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function pageBytes(count: number, seed: number): Uint8Array {
  const d = new Uint8Array(count * PS);
  for (let i = 0; i < d.length; i++) d[i] = (i * 31 + seed) & 0xff;
  return d;
}

/** Page data decodes as a view of the frame (a Buffer when the frame is one); compare bytes only. */
function norm(m: Message): Message {
  return 'data' in m ? { ...m, data: new Uint8Array(m.data) } : m;
}

function expectFrameError(fn: () => unknown, status: Status, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FrameError);
  expect(caught).toBeInstanceOf(ProtocolError);
  const e = caught as FrameError;
  expect(e.status).toBe(status);
  expect(e[ProtocolError.wireStatus]).toBe(status);
  expect(e.code).toMatch(/^FM_ERR_PROTOCOL_/);
  expect(e.message).toMatch(message);
}

const samples: Message[] = [
  { op: Op.HELLO, id: 1, version: PROTOCOL_VERSION, pageSize: 4096, token: 'sécret', namespace: 'guest-1' },
  { op: Op.HELLO_OK, id: 1, version: 1, pageSize: 4096, maxFrameBytes: 1 << 24, maxPagesPerRequest: 65536, instance: '0123456789abcdef' },
  { op: Op.READ, id: 2, pages: new Uint32Array([0, 1, 0xffff_ffff]) },
  { op: Op.READ_OK, id: 2, count: 3, data: pageBytes(3, 1) },
  { op: Op.WRITE, id: 3, pages: new Uint32Array([9, 8]), data: pageBytes(2, 2) },
  { op: Op.WRITE_OK, id: 3, count: 2 },
  { op: Op.FREE, id: 4, pages: new Uint32Array([5]) },
  { op: Op.OK, id: 4 },
  { op: Op.STATS, id: 5 },
  {
    op: Op.STATS_OK, id: 5, capacityBytes: 2 ** 40, usedBytes: 2 ** 33 + 7, slabBytes: 2 ** 34, connections: 3,
    reads: 1, writes: 2, frees: 3, errors: 4, pagesRead: 2 ** 52, pagesWritten: 6, namespaceCount: 2,
    namespaces: [{ name: 'a', pageSize: 4096, pages: 10 }, { name: 'ß', pageSize: 256, pages: 2 ** 40 }],
  },
  { op: Op.ERROR, id: 6, status: Status.OUT_OF_CAPACITY, message: 'full: 10 of 10 bytes used' },
  { op: Op.DRAIN, id: 7 },
  { op: Op.DRAINING, id: 0, deadlineMs: 60_000 },
];

describe('round trips', () => {
  for (const m of samples) {
    test(`${Op[m.op]} survives encode → decode`, () => {
      const frame = encode(m, PS);
      const back = decode(frame, ctx);
      expect(norm(back)).toEqual(norm(m));
      // Re-encoding the decoded message gives the same bytes.
      expect(hex(encode(back, PS))).toBe(hex(frame));
    });
  }

  test('page lists decode from unaligned buffers too', () => {
    const frame = encodeRead(9, [7, 8, 9]);
    const shifted = new Uint8Array(frame.length + 1).subarray(1);
    shifted.set(frame);
    expect((decode(shifted, ctx) as { pages: Uint32Array }).pages).toEqual(new Uint32Array([7, 8, 9]));
  });
});

describe('golden frames', () => {
  test('READ', () => {
    expect(hex(encodeRead(7, [1, 2]))).toBe(
      '18000000' + '02' + '00' + '0000' + '07000000' + // length 24, op READ, reserved, id 7
      '02000000' + '01000000' + '02000000'); // count 2, pages 1 and 2
  });

  test('HELLO', () => {
    expect(hex(encodeHello(1, 1, 4096, 't', 'ns'))).toBe(
      '1b000000' + '01' + '00' + '0000' + '01000000' + // length 27, op HELLO, id 1
      '0100' + '0100' + '0200' + '0000' + '00100000' + // version 1, token 1 B, namespace 2 B, reserved, page size 4096
      '74' + '6e73'); // "t", "ns"
  });

  test('WRITE', () => {
    const page = new Uint8Array(PS).fill(0xab);
    const frame = encodeWrite(0x01020304, [0x10], [page], PS);
    expect(hex(frame.subarray(0, 20))).toBe('14010000' + '03' + '00' + '0000' + '04030201' + '01000000' + '10000000');
    expect(frame.length).toBe(20 + PS);
  });

  test('WRITE head: followed by its pages it is the WRITE frame, its length field counting them', () => {
    const pages = [new Uint8Array(PS).fill(1), new Uint8Array(PS).fill(2), new Uint8Array(PS).fill(3)];
    const head = encodeWriteHead(7, [5, 9, 2], pages, PS);
    expect(head.length).toBe(16 + 3 * 4);
    expect(new DataView(head.buffer, head.byteOffset).getUint32(0, true)).toBe(16 + 3 * (4 + PS));
    expect(Buffer.concat([head, ...pages]).equals(Buffer.from(encodeWrite(7, [5, 9, 2], pages, PS)))).toBe(true);
    expect(() => encodeWriteHead(7, [5, 9], pages, PS)).toThrow(RangeError);
    expect(() => encodeWriteHead(7, [5], [new Uint8Array(PS - 1)], PS)).toThrow(RangeError);
  });

  test('WRITE_OK and ERROR', () => {
    expect(hex(encodeWriteOk(3, 2))).toBe('10000000' + '83' + '00' + '0000' + '03000000' + '02000000');
    expect(hex(encodeError(5, Status.OUT_OF_CAPACITY, 'full'))).toBe(
      '14000000' + 'ff' + '00' + '0000' + '05000000' + '0300' + '0400' + '66756c6c');
  });

  test('DRAIN and the DRAINING notice', () => {
    expect(hex(encodeDrain(9))).toBe('0c000000' + '06' + '00' + '0000' + '09000000'); // header only, op DRAIN
    expect(hex(encodeDraining(30_000))).toBe('10000000' + 'c0' + '00' + '0000' + '00000000' + '30750000'); // id 0, deadline 30000 ms
    expect(decode(fromHex('10000000 c0 00 0000 00000000 e8030000'), ctx)).toEqual({ op: Op.DRAINING, id: 0, deadlineMs: 1000 });
  });
  test('a DRAINING notice with a request id is malformed', () => {
    expectFrameError(() => decode(fromHex('10000000 c0 00 0000 05000000 e8030000'), ctx), Status.MALFORMED_FRAME, /DRAINING is a notice/);
  });

  test('decodes a hand-written FREE frame', () => {
    expect(decode(fromHex('14000000 04 00 0000 2a000000 01000000 ffffffff'), ctx)).toEqual(
      { op: Op.FREE, id: 42, pages: new Uint32Array([0xffff_ffff]) });
  });
});

describe('FrameReader', () => {
  const frames = samples.map((m) => encode(m, PS));
  const stream = Buffer.concat(frames);

  test('frames split at every byte boundary reassemble exactly', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const reader = new FrameReader(DEFAULT_LIMITS);
      const out: string[] = [];
      reader.push(stream.subarray(0, cut), (f) => out.push(hex(f)));
      reader.push(stream.subarray(cut), (f) => out.push(hex(f)));
      expect(out).toEqual(frames.map(hex));
      expect(reader.buffered).toBe(0);
    }
  });

  test('one byte at a time', () => {
    const reader = new FrameReader(DEFAULT_LIMITS);
    const out: Message[] = [];
    for (let i = 0; i < stream.length; i++) {
      reader.push(stream.subarray(i, i + 1), (f) => out.push(norm(decode(f, ctx))));
      if (i === 0) expect(reader.buffered).toBe(1);
    }
    expect(reader.buffered).toBe(0);
    expect(out).toEqual(samples.map(norm));
  });

  test('10,000 frames in one buffer', () => {
    const parts: Uint8Array[] = [];
    for (let i = 1; i <= 10_000; i++) parts.push(encodeRead(i, [i, i + 1, i * 3]));
    const reader = new FrameReader(DEFAULT_LIMITS);
    let n = 0;
    reader.push(Buffer.concat(parts), (f) => {
      const m = decode(f, ctx);
      n++;
      if (m.op !== Op.READ || m.id !== n || m.pages[2] !== n * 3) throw new Error(`frame ${n} decoded wrong`);
    });
    expect(n).toBe(10_000);
    expect(reader.buffered).toBe(0);
  });

  test('a length above maxFrameBytes is refused before the body arrives', () => {
    const reader = new FrameReader({ maxFrameBytes: 1024, maxPagesPerRequest: 16 });
    expectFrameError(() => reader.push(fromHex('01080000 02'), () => {}), Status.TOO_LARGE, /2049 bytes exceeds the limit of 1024/);
  });

  test('a length below the header size is malformed', () => {
    const reader = new FrameReader(DEFAULT_LIMITS);
    expectFrameError(() => reader.push(fromHex('0b000000'), () => {}), Status.MALFORMED_FRAME, /less than the 12-byte header/);
  });
});

describe('malformed frames', () => {
  const read = encodeRead(7, [1, 2]);

  test('shorter than a header', () => {
    expectFrameError(() => decode(read.subarray(0, 11), ctx), Status.MALFORMED_FRAME, /shorter than the 12-byte header/);
  });
  test('length field disagrees with the frame', () => {
    expectFrameError(() => decode(read.subarray(0, 20), ctx), Status.MALFORMED_FRAME, /length field says 24 bytes but the frame has 20/);
  });
  test('missing bytes', () => {
    const f = Buffer.from(read.subarray(0, 20));
    f.writeUInt32LE(20, 0);
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /READ of 2 pages must be 24 bytes, got 20 \(missing bytes\)/);
  });
  test('leftover bytes', () => {
    const f = Buffer.concat([read, Buffer.alloc(4)]);
    f.writeUInt32LE(28, 0);
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /got 28 \(leftover bytes\)/);
  });
  test('non-zero reserved byte', () => {
    const f = Buffer.from(read);
    f[5] = 1;
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /reserved header bytes must be 0/);
  });
  test('unknown op', () => {
    const f = Buffer.from(read);
    f[4] = 0x42;
    expectFrameError(() => decode(f, ctx), Status.UNKNOWN_OP, /unknown op 0x42/);
  });
  test('a huge page count is TOO_LARGE, not an allocation', () => {
    const f = Buffer.from(read);
    f.writeUInt32LE(0xffff_fff0, 12);
    expectFrameError(() => decode(f, ctx), Status.TOO_LARGE, /lists 4294967280 pages, more than the limit of 65536/);
  });
  test('a frame above maxFrameBytes', () => {
    expectFrameError(() => decode(read, { ...ctx, maxFrameBytes: 16 }), Status.TOO_LARGE, /24 bytes exceeds the limit of 16/);
  });
  test('WRITE data that is not count × pageSize', () => {
    const f = encodeWrite(1, [1], [new Uint8Array(PS)], PS);
    expectFrameError(() => decode(f, { ...ctx, pageSize: 512 }), Status.MALFORMED_FRAME, /WRITE of 1 pages of 512 bytes must be 532 bytes, got 276/);
  });
  test('WRITE before the page size is known', () => {
    const f = encodeWrite(1, [1], [new Uint8Array(PS)], PS);
    expectFrameError(() => decode(f, { ...ctx, pageSize: 0 }), Status.NOT_HELLO, /WRITE before HELLO/);
  });
  test('HELLO with an invalid UTF-8 namespace', () => {
    const f = Buffer.from(encodeHello(1, 1, 4096, 't', 'ns'));
    f[f.length - 1] = 0xff;
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /HELLO namespace is not valid UTF-8/);
  });
  test('HELLO strings decode exactly: a leading BOM is kept, so "\uFEFFns" and "ns" are different names', () => {
    const bom = decode(encodeHello(1, 1, 4096, '\uFEFFt', '\uFEFFns'), ctx) as { token: string; namespace: string };
    expect(bom.namespace).toBe('\uFEFFns');
    expect(bom.token).toBe('\uFEFFt');
    expect((decode(encodeHello(1, 1, 4096, 't', 'ns'), ctx) as { namespace: string }).namespace).toBe('ns');
  });
  test.each([
    ['an overlong "n" (C1 AE)', [0xc1, 0xae]],
    ['an overlong NUL (C0 80)', [0xc0, 0x80]],
    ['a UTF-16 surrogate encoded as UTF-8 (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['a truncated sequence (E2 82)', [0xe2, 0x82]],
  ])('HELLO with %s in its namespace is refused, never normalised to another name', (_what, bytes) => {
    const f = Buffer.from(encodeHello(1, 1, 4096, 't', 'x'.repeat(bytes.length)));
    Buffer.from(bytes).copy(f, f.length - bytes.length);
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /HELLO namespace is not valid UTF-8/);
  });
  test('close reasons are cut to 123 UTF-8 bytes on a character boundary', () => {
    expect(fitUtf8('short')).toBe('short');
    const long = `PAGE_SIZE_MISMATCH: namespace "${'é'.repeat(128)}" holds pages of 4096 bytes`;
    const cut = fitUtf8(long);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_CLOSE_REASON_BYTES);
    expect(Buffer.byteLength(cut)).toBeGreaterThan(MAX_CLOSE_REASON_BYTES - 4);
    expect(long.startsWith(cut)).toBe(true); // whole characters only: no U+FFFD at the end
    const emoji = fitUtf8('😀'.repeat(40)); // 4-byte characters: 30 fit in 120 bytes
    expect(emoji).toBe('😀'.repeat(30));
  });
  test('HELLO with an empty namespace', () => {
    const f = Buffer.from(encodeHello(1, 1, 4096, 't', 'n'));
    f.writeUInt16LE(0, 16);
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /namespace must be 1\.\.256 bytes, got 0/);
  });
  test('ERROR whose message runs past the frame', () => {
    const f = Buffer.from(encodeError(1, Status.INTERNAL, 'abc'));
    f.writeUInt16LE(9, 14);
    expectFrameError(() => decode(f, ctx), Status.MALFORMED_FRAME, /ERROR must be 25 bytes, got 19 \(missing bytes\)/);
  });
  test('the request id is kept when the header was readable', () => {
    const f = Buffer.from(read);
    f[4] = 0x42;
    expect(() => decode(f, ctx)).toThrow(expect.objectContaining({ requestId: 7 }));
  });
});

describe('READ checked in place (the server hot path)', () => {
  /** What decode says of a frame: the READ's page list, or the FrameError's status. */
  function viaDecode(f: Uint8Array, c: DecodeContext): number[] | string {
    try {
      const m = decode(f, c);
      return m.op === Op.READ ? [...m.pages] : `op ${m.op}`;
    } catch (err) {
      return `status ${(err as FrameError).status}`;
    }
  }
  function inPlace(f: Uint8Array, c: DecodeContext): number[] | null {
    const n = readRequestCount(f, c);
    return n < 0 ? null : Array.from({ length: n }, (_, i) => readItem(f, i));
  }

  test('readRequestCount accepts exactly the READs decode accepts, with the same pages, under every byte mutation', () => {
    const small: DecodeContext = { ...ctx, maxPagesPerRequest: 3, maxFrameBytes: 64 };
    const frames = [encodeRead(7, [1, 2]), encodeRead(9, [0xffff_ffff, 0, 5]), encodeRead(1, []), encodeRead(3, [1, 2, 3, 4])];
    let checked = 0;
    for (const c of [ctx, small]) {
      for (const base of frames) {
        const variants: Uint8Array[] = [base, base.subarray(0, base.length - 1), Buffer.concat([base, Buffer.alloc(4)])];
        for (let i = 0; i < base.length; i++) {
          for (const v of [0, 1, 0x80, 0xff]) {
            const f = Buffer.from(base);
            f[i] = v;
            variants.push(f);
          }
        }
        for (const f of variants) {
          const d = viaDecode(f, c);
          const p = inPlace(f, c);
          if (p === null) expect(Array.isArray(d)).toBe(false); // decode refuses it (or it is no READ)
          else expect(p).toEqual(d);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(400);
  });

  test('initReadOkAt builds a READ_OK in place that decodes like encodeReadOk', () => {
    const data = pageBytes(2, 9);
    const buf = new Uint8Array(100 + readOkBytes(2, PS)).fill(0xee);
    const at = initReadOkAt(buf, 100, 42, 2, PS);
    buf.set(data, at);
    const frame = buf.subarray(100);
    expect(hex(frame)).toBe(hex(encodeReadOk(42, data, PS)));
    expect(buf.subarray(0, 100).every((b) => b === 0xee)).toBe(true);
  });
});

describe('wire status → typed error', () => {
  test('BAD_TOKEN is an AuthError', () => {
    const e = errorFromStatus(Status.BAD_TOKEN, 'bad token', 'ws://x');
    expect(e).toBeInstanceOf(AuthError);
    expect(e.code).toBe('FM_ERR_AUTH');
    expect(e[ProtocolError.wireStatus]).toBe(Status.BAD_TOKEN);
    expect(e.message).toMatch(/ws:\/\/x refused the token: bad token/);
  });
  test('OUT_OF_CAPACITY is a ServerOutOfMemoryError', () => {
    const e = errorFromStatus(Status.OUT_OF_CAPACITY, 'full', 'ws://x');
    expect(e).toBeInstanceOf(ServerOutOfMemoryError);
    expect(e.code).toBe('FM_ERR_SERVER_OUT_OF_MEMORY');
    expect(e.message).toMatch(/add servers or start them with a larger --capacity/);
  });
  test('others are ProtocolErrors named by status', () => {
    const e = errorFromStatus(Status.PAGE_SIZE_MISMATCH, 'holds 4096', 'ws://x');
    expect(e.constructor).toBe(ProtocolError);
    expect(e.code).toBe('FM_ERR_PROTOCOL_PAGE_SIZE_MISMATCH');
  });
});
