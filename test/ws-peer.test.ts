/**
 * The memory server's own WebSocket end (host/server/ws-peer.ts), spoken to byte by byte over a
 * plain TCP socket: the upgrade's answers (101, and 400/405/426/503 with a reason), client frames
 * masked with random and all-zero keys and cut anywhere, ping/pong, the close handshake, and the
 * protocol errors the `ws` server answered before it (unmasked frames, RSV bits, unknown opcodes,
 * messages over maxPayload) with the same close codes.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { decode, DEFAULT_LIMITS, encodeHello, encodeRead, encodeWrite, FrameReader, Op, PROTOCOL_VERSION, type Message } from '../host/protocol/index.js';
import { acceptKey, WsDeframer, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG } from '../host/protocol/ws-frames.js';
import { MemoryServer, type MemoryServerOptions } from '../host/server/index.js';
import { page, PS, TEST_TOKEN } from './support/raw-client.js';

const servers: MemoryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(options: Partial<MemoryServerOptions> = {}): Promise<MemoryServer> {
  const s = new MemoryServer({ host: '127.0.0.1', port: 0, capacity: 64 << 20, token: TEST_TOKEN, ...options });
  await s.listen();
  servers.push(s);
  return s;
}

/** A client frame: FIN unless told, masked with `key` (4 bytes; all zero allowed) unless `key` is null. */
function frame(opcode: number, payload: Uint8Array, o: { key?: Buffer | null; fin?: boolean; first?: number } = {}): Buffer {
  const key = o.key === undefined ? randomBytes(4) : o.key;
  const n = payload.length;
  const len = n < 126 ? [n] : n < 0x10000 ? [126, n >>> 8, n & 0xff] : [127, 0, 0, 0, 0, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const head = Buffer.from([(o.first ?? ((o.fin ?? true) ? 0x80 : 0)) | opcode, (key ? 0x80 : 0) | len[0]!, ...len.slice(1)]);
  const body = Buffer.from(payload);
  if (key) for (let i = 0; i < n; i++) body[i] = body[i]! ^ key[i & 3]!;
  return Buffer.concat([head, key ?? Buffer.alloc(0), body]);
}

/** A raw WebSocket client: what the server answers, as HTTP head, farmem messages and control frames. */
class Wire {
  readonly sock: net.Socket;
  head = '';
  readonly messages: Message[] = [];
  readonly controls: Array<[number, Buffer]> = [];
  ended = false;
  pageSize = PS;
  /** Payload pieces the deframer handed on: one per frame, or more for a frame cut across reads. */
  pieces = 0;
  readonly #reader = new FrameReader(DEFAULT_LIMITS);
  readonly #deframer = new WsDeframer(1 << 26, {
    data: (b) => {
      this.pieces++;
      this.#reader.push(Buffer.from(b), (f) => this.messages.push(decode(f, { ...DEFAULT_LIMITS, pageSize: this.pageSize })));
    },
    control: (op, p) => this.controls.push([op, Buffer.from(p)]),
  });

  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('error', () => {});
    this.sock.on('end', () => { this.ended = true; });
    this.sock.on('close', () => { this.ended = true; });
    this.sock.on('data', (chunk: Buffer) => {
      if (!this.head.includes('\r\n\r\n')) {
        const text = this.head + chunk.toString('latin1');
        const blank = text.indexOf('\r\n\r\n');
        this.head = blank < 0 ? text : text.slice(0, blank + 4);
        if (blank >= 0 && this.head.startsWith('HTTP/1.1 101') && blank + 4 < text.length) this.#deframer.push(Buffer.from(text.slice(blank + 4), 'latin1'));
        return;
      }
      this.#deframer.push(chunk);
    });
  }

  static async open(port: number, extra = ''): Promise<Wire> {
    const w = new Wire(port);
    const key = randomBytes(16).toString('base64');
    w.sock.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    await w.until(() => w.head.includes('\r\n\r\n'));
    expect(w.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(w.head).toContain(`Sec-WebSocket-Accept: ${acceptKey(key)}\r\n`);
    expect(w.head).not.toMatch(/sec-websocket-extensions/i);
    return w;
  }

  async until(cond: () => boolean, ms = 5000): Promise<void> {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > ms) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** The close frame's code and reason, once the server sent it. */
  async closed(): Promise<{ code: number; reason: string }> {
    await this.until(() => this.controls.some(([op]) => op === OP_CLOSE));
    const p = this.controls.find(([op]) => op === OP_CLOSE)![1];
    return { code: p.readUInt16BE(0), reason: p.subarray(2).toString('utf8') };
  }

  async hello(): Promise<void> {
    this.sock.write(frame(OP_BINARY, encodeHello(1, PROTOCOL_VERSION, PS, TEST_TOKEN, 'wire')));
    await this.until(() => this.messages.length === 1);
    expect(this.messages[0]).toMatchObject({ op: Op.HELLO_OK });
  }
}

/** Sends a raw HTTP request and returns the whole answer. */
async function answer(port: number, request: string): Promise<string> {
  const sock = net.connect({ host: '127.0.0.1', port });
  sock.on('error', () => {});
  sock.write(request);
  let text = '';
  sock.on('data', (c: Buffer) => { text += c.toString('latin1'); });
  await new Promise((r) => sock.once('close', r));
  return text;
}

describe('the upgrade', () => {
  const upgrade = (lines: string) => `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n${lines}\r\n`;
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';

  test('a well-formed upgrade is answered 101 with the accept key; an offered extension is not taken', async () => {
    const s = await serve();
    const w = await Wire.open(s.port, 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n');
    await w.hello();
    w.sock.destroy();
  });

  test.each([
    ['no key', upgrade('Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'), /^HTTP\/1\.1 400 [^]*Sec-WebSocket-Key/],
    ['a key that is not 16 bytes of base64', upgrade(`Upgrade: websocket\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n`), /^HTTP\/1\.1 400 /],
    ['another protocol', upgrade(`Upgrade: h2c\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`), /^HTTP\/1\.1 400 [^]*"websocket"/],
    ['version 8', upgrade(`Upgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 8\r\n`), /^HTTP\/1\.1 426 [^]*Sec-WebSocket-Version: 13\r\n/],
    ['a POST', `POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n`, /^HTTP\/1\.1 405 /],
  ])('%s: an HTTP error that says what is wrong, and the socket closed', async (_what, request, expected) => {
    const s = await serve();
    expect(await answer(s.port, request)).toMatch(expected);
    expect(s.connectionCount.open).toBe(0);
  });

  test('past maxConnections: 503 with the reason', async () => {
    const s = await serve({ maxConnections: 1 });
    const first = await Wire.open(s.port);
    await first.hello();
    const text = await answer(s.port, upgrade(`Upgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`));
    expect(text).toMatch(/^HTTP\/1\.1 503 [^]*\r\n\r\ntoo many connections$/);
    first.sock.destroy();
  });

  test('frames that arrive with the upgrade request are read', async () => {
    const s = await serve();
    const w = new Wire(s.port);
    const k = randomBytes(16).toString('base64');
    w.sock.write(Buffer.concat([
      Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${k}\r\nSec-WebSocket-Version: 13\r\n\r\n`),
      frame(OP_BINARY, encodeHello(1, PROTOCOL_VERSION, PS, TEST_TOKEN, 'early')),
    ]));
    await w.until(() => w.messages.length === 1);
    expect(w.messages[0]).toMatchObject({ op: Op.HELLO_OK });
    w.sock.destroy();
  });
});

describe('frames', () => {
  test('random and all-zero mask keys, fragmented messages, every cut of the stream: the pages come back', async () => {
    const s = await serve();
    const w = await Wire.open(s.port);
    await w.hello();
    const pages = [3, 4, 5];
    const write = encodeWrite(2, pages, pages.map((p) => page(p)), PS);
    const bytes = Buffer.concat([
      frame(OP_BINARY, write.subarray(0, 5000), { key: Buffer.alloc(4), fin: false }),
      frame(OP_PING, Buffer.from('mid-message')),
      frame(0x0, write.subarray(5000), { key: Buffer.from([1, 2, 3, 4]) }),
      frame(OP_BINARY, encodeRead(3, pages)),
    ]);
    for (let at = 0; at < bytes.length; at += 777) {
      w.sock.write(bytes.subarray(at, at + 777));
      await new Promise((r) => setImmediate(r));
    }
    await w.until(() => w.messages.length === 3);
    expect(w.controls).toEqual([[OP_PONG, Buffer.from('mid-message')]]);
    expect(w.messages[1]).toMatchObject({ op: Op.WRITE_OK, id: 2 });
    const read = w.messages[2] as Message & { data: Uint8Array };
    expect(read).toMatchObject({ op: Op.READ_OK, id: 3 });
    expect(Buffer.from(read.data)).toEqual(Buffer.concat(pages.map((p) => page(p))));
    w.sock.destroy();
  });

  test('a 64 KiB page is answered in one unmasked frame whose header sits in the slot\'s header room', async () => {
    const P = 65536;
    const s = await serve();
    const w = await Wire.open(s.port);
    w.pageSize = P;
    w.sock.write(frame(OP_BINARY, encodeHello(1, PROTOCOL_VERSION, P, TEST_TOKEN, 'big')));
    await w.until(() => w.messages.length === 1);
    const chunks: Buffer[] = [];
    w.sock.on('data', (c: Buffer) => chunks.push(c));
    w.sock.write(frame(OP_BINARY, encodeWrite(2, [7], [page(7, P)], P)));
    await w.until(() => w.messages.length === 2);
    chunks.length = 0;
    w.sock.write(frame(OP_BINARY, encodeRead(3, [7])));
    await w.until(() => chunks.reduce((n, c) => n + c.length, 0) >= 10 + 16 + P);
    const all = Buffer.concat(chunks);
    expect(all.length).toBe(10 + 16 + P); // one frame: a 10-byte header, READ_OK, the page
    expect([all[0], all[1]]).toEqual([0x80 | OP_BINARY, 127]);
    expect(all.readUInt32BE(6)).toBe(16 + P);
    expect(all.subarray(26)).toEqual(Buffer.from(page(7, P)));
    w.sock.destroy();
  });

  test('many small frames in one read are one turn: their replies leave gathered, not one frame each', async () => {
    const s = await serve();
    const w = await Wire.open(s.port);
    await w.hello();
    const n = 50;
    w.sock.write(frame(OP_BINARY, encodeWrite(2, [1], [page(1)], PS)));
    await w.until(() => w.messages.length === 2);
    const before = w.pieces;
    w.sock.write(Buffer.concat(Array.from({ length: n }, (_, i) => frame(OP_BINARY, encodeRead(10 + i, [1])))));
    await w.until(() => w.messages.length === 2 + n);
    expect(w.messages.slice(2).map((m) => m.id)).toEqual(Array.from({ length: n }, (_, i) => 10 + i));
    // 50 replies of 4 KiB in one gathered frame of ~200 KiB, read in a few pieces; 50 frames would be ≥ 50.
    expect(w.pieces - before).toBeLessThan(12);
    w.sock.destroy();
  });

  test('a client close is answered with the same code, then the server ends the socket', async () => {
    const s = await serve();
    const w = await Wire.open(s.port);
    await w.hello();
    w.sock.write(frame(OP_CLOSE, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])));
    expect((await w.closed()).code).toBe(1000);
    await w.until(() => w.ended);
    await w.until(() => s.connectionCount.open === 0);
  });

  test.each([
    ['an unmasked frame', frame(OP_BINARY, Buffer.from([1, 2, 3]), { key: null }), 1002, /not masked/],
    ['RSV1 set', frame(OP_BINARY, Buffer.from([1, 2, 3]), { first: 0xc0 }), 1002, /RSV/],
    ['a reserved opcode', frame(0x3, Buffer.from([1, 2, 3])), 1002, /unknown opcode 3/],
    ['a fragmented ping', frame(OP_PING, Buffer.from([1]), { fin: false }), 1002, /control frame/],
    ['a continuation with no message', frame(0x0, Buffer.from([1])), 1002, /fragmentation/],
    ['a message over maxPayload', frame(OP_BINARY, Buffer.alloc(5000)), 1009, /exceeds 4096 bytes/],
  ])('%s: close %i with the reason, and the socket ends', async (_what, bad, code, reason) => {
    const s = await serve({ maxPayload: 4096 });
    const w = await Wire.open(s.port);
    await w.hello();
    w.sock.write(bad);
    const c = await w.closed();
    expect(c.code).toBe(code);
    expect(c.reason).toMatch(reason);
    await w.until(() => w.ended);
    await w.until(() => s.connectionCount.open === 0);
  });
});
