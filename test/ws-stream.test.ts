/**
 * @fileoverview The ws:// client transport (host/store/remote/ws-stream.ts): the deframer on frame
 * streams cut at random (every length encoding, fragmented messages with control frames between
 * their fragments) and on every frame RFC 6455 forbids a server to send; then `dialWsStream`
 * against a real `ws` server (payloads both ways, ping, close from either side, a text message)
 * and against servers that botch the upgrade (503, a wrong Sec-WebSocket-Accept, silence, the
 * first frame in the same segment as the response).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LinkEvents, LinkSocket } from '../host/store/remote/transport.js';
import { acceptKey, WsDeframer, WsFrameError } from '../host/protocol/ws-frames.js';
import { dialWsStream } from '../host/store/remote/ws-stream.js';

/** A server frame: FIN unless `fin` is false, no mask, the shortest length encoding unless `length64`. */
function frame(opcode: number, payload: Uint8Array, o: { fin?: boolean; length64?: boolean; first?: number } = {}): Buffer {
  const n = payload.length;
  const head = o.length64 ? 10 : n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.alloc(head + n);
  out[0] = (o.fin === false ? 0 : 0x80) | opcode | (o.first ?? 0);
  if (head === 2) out[1] = n;
  else if (head === 4) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.set(payload, head);
  return out;
}

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x;
  }
  return b;
}

/** Feeds `stream` to a deframer in pieces of 1..max bytes (seeded), copying each piece as the socket's reused buffer would hold it. */
function deframe(stream: Buffer, max: number, seed: number, maxPayload = 1 << 20) {
  const data: Buffer[] = [];
  const controls: Array<[number, string]> = [];
  const d = new WsDeframer(maxPayload, {
    data: (b) => data.push(Buffer.from(b)),
    control: (op, p) => controls.push([op, p.toString('latin1')]),
  });
  let s = seed >>> 0;
  const scratch = Buffer.alloc(max);
  for (let at = 0; at < stream.length;) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const n = Math.min(stream.length - at, 1 + (s % max));
    stream.copy(scratch, 0, at, at + n);
    d.push(scratch.subarray(0, n));
    scratch.fill(0xee); // what a later read would leave in the buffer
    at += n;
  }
  return { data: Buffer.concat(data), controls };
}

describe('WsDeframer', () => {
  const payloads = [0, 1, 125, 126, 127, 4112, 65535, 65536, 65552, 200_000].map((n, i) => bytes(n, i));
  const stream = Buffer.concat([
    ...payloads.map((p, i) => frame(0x2, p, { length64: i === 3 })), // one short length sent in 64 bits
    // A fragmented message with a ping and a pong between its fragments.
    frame(0x2, bytes(300, 50), { fin: false }),
    frame(0x9, Buffer.from('are you there')),
    frame(0x0, bytes(70_000, 51), { fin: false }),
    frame(0xa, Buffer.alloc(0)),
    frame(0x0, bytes(5, 52)),
    frame(0x8, Buffer.concat([Buffer.of(0x03, 0xe8), Buffer.from('bye')])),
  ]);
  const expected = Buffer.concat([...payloads, bytes(300, 50), bytes(70_000, 51), bytes(5, 52)]);

  for (const max of [1, 2, 3, 9, 11, 1000, 70_000, 1 << 20]) {
    test(`pieces of 1..${max} bytes: the payload stream and the control frames come out whole and in order`, () => {
      const { data, controls } = deframe(stream, max, max);
      expect(data.length).toBe(expected.length);
      expect(Buffer.compare(data, expected)).toBe(0);
      expect(controls).toEqual([[0x9, 'are you there'], [0xa, ''], [0x8, '\x03\xe8bye']]);
    });
  }

  const forbidden: Array<[string, Buffer, RegExp]> = [
    ['a text message', frame(0x1, Buffer.from('hi')), /text message/],
    ['a masked frame', Buffer.from([0x82, 0x81, 0, 0, 0, 0, 7]), /masked/],
    ['RSV1 set (no compression was negotiated)', frame(0x2, bytes(4, 1), { first: 0x40 }), /RSV/],
    ['a reserved data opcode', frame(0x3, bytes(4, 1)), /unknown opcode 3/],
    ['a reserved control opcode', frame(0xb, bytes(4, 1)), /unknown opcode 11/],
    ['a control frame over 125 bytes', frame(0x9, bytes(126, 1)), /control frame/],
    ['a fragmented control frame', frame(0x9, bytes(3, 1), { fin: false }), /control frame/],
    ['a continuation with no message begun', frame(0x0, bytes(3, 1)), /fragmentation/],
    ['a new message inside an unfinished one', Buffer.concat([frame(0x2, bytes(3, 1), { fin: false }), frame(0x2, bytes(3, 1))]), /fragmentation/],
    ['a message over maxPayload', frame(0x2, bytes(1025, 1)), /exceeds 1024 bytes/],
    ['a fragmented message over maxPayload', Buffer.concat([frame(0x2, bytes(600, 1), { fin: false }), frame(0x0, bytes(600, 2))]), /exceeds 1024 bytes/],
    ['a 64-bit length past 2^32', Buffer.from([0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]), /exceeds 1024 bytes/],
  ];
  for (const [what, bad, message] of forbidden) {
    test(`${what}: WsFrameError before any of its payload is delivered`, () => {
      const delivered: Buffer[] = [];
      const d = new WsDeframer(1024, { data: (b) => delivered.push(Buffer.from(b)), control: () => delivered.push(Buffer.from('control')) });
      const good = frame(0x2, bytes(10, 9));
      let error: unknown;
      try {
        d.push(Buffer.concat([good, bad]));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(WsFrameError);
      expect((error as Error).message).toMatch(message);
      // The good frame came through; of the bad one, at most the first fragment of a message that
      // only its second fragment made too long.
      expect(Buffer.compare(delivered[0]!, bytes(10, 9))).toBe(0);
      expect(Buffer.concat(delivered.slice(1)).length).toBeLessThanOrEqual(600);
    });
  }
});

/** `dialWsStream` with every event recorded. */
function dialRecorded(url: string, o: { maxPayload?: number; connectTimeoutMs?: number } = {}) {
  const got: Buffer[] = [];
  const events = {
    opened: false,
    invalid: [] as string[],
    errors: [] as Error[],
    closed: null as Promise<string> | null,
    data: () => Buffer.concat(got),
  };
  let closed!: (why: string) => void;
  events.closed = new Promise((r) => { closed = r; });
  let opened!: () => void;
  const open = new Promise<void>((r) => { opened = r; });
  const on: LinkEvents = {
    open: () => { events.opened = true; opened(); },
    data: (b) => got.push(Buffer.from(b)),
    invalid: (why) => events.invalid.push(why),
    error: (err) => events.errors.push(err),
    closed: (why) => closed(why),
  };
  const sock: LinkSocket = dialWsStream(url, { maxPayload: o.maxPayload ?? 1 << 20, connectTimeoutMs: o.connectTimeoutMs ?? 5000 }, on);
  return { sock, events, open, closed: events.closed };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('dialWsStream against a real ws server', () => {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  async function wsServer(onConnection: (ws: WebSocket) => void): Promise<string> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', onConnection);
    cleanup.push(() => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
    return `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/some/path?x=1`;
  }

  test('binary payloads of every length encoding arrive intact both ways, as one stream', async () => {
    const sizes = [0, 1, 125, 126, 1023, 1024, 65535, 65536, 300_000];
    const received: Buffer[] = [];
    const url = await wsServer((ws) => ws.on('message', (m: Buffer) => { received.push(m); ws.send(m); }));
    const c = dialRecorded(url);
    await c.open;
    for (const [i, n] of sizes.entries()) c.sock.send(bytes(n, i));
    const all = Buffer.concat(sizes.map((n, i) => bytes(n, i)));
    await until(() => c.events.data().length === all.length);
    expect(received.map((m) => m.length)).toEqual(sizes);
    expect(Buffer.compare(c.events.data(), all)).toBe(0);
    expect(c.events.invalid).toEqual([]);
    expect(c.sock.open).toBe(true);
    await c.sock.close(1000, 'done');
  });

  test('answers a ping with a pong of the same payload', async () => {
    let pong: Promise<string> | null = null;
    const url = await wsServer((ws) => {
      pong = new Promise((r) => ws.once('pong', (p: Buffer) => r(p.toString())));
      ws.ping(Buffer.from('ping-payload'));
    });
    const c = dialRecorded(url);
    await c.open;
    await until(() => pong !== null);
    expect(await pong).toBe('ping-payload');
    await c.sock.close(1000, 'done');
  });

  test('a close from the server: its code and reason end the connection', async () => {
    const url = await wsServer((ws) => ws.close(4001, 'go away'));
    const c = dialRecorded(url);
    expect(await c.closed).toBe('connection closed (code 4001, go away)');
    expect(c.sock.open).toBe(false);
  });

  /** Connects, closes from the client with `code` and `reason`; returns what the server saw and how the client ended. */
  async function closeFromClient(code: number, reason: string): Promise<{ seen: [number, string]; closed: string }> {
    let seen: Promise<[number, string]> | null = null;
    const url = await wsServer((ws) => { seen = new Promise((r) => ws.once('close', (c: number, why: Buffer) => r([c, why.toString()]))); });
    const c = dialRecorded(url);
    await c.open;
    await until(() => seen !== null);
    await c.sock.close(code, reason);
    return { seen: await seen!, closed: await c.closed };
  }

  test('a close from the client: the server sees its code and reason, and close() resolves', async () => {
    const { seen, closed } = await closeFromClient(1000, 'client closing');
    expect(seen).toEqual([1000, 'client closing']);
    expect(closed).toBe('connection closed (code 1000, client closing)'); // the server echoes them
  });

  test('a close reason longer than a close frame holds is cut to whole UTF-8 characters', async () => {
    const { seen } = await closeFromClient(4000, 'é'.repeat(100)); // 200 bytes; 123 would split a character
    expect(seen).toEqual([4000, 'é'.repeat(61)]);
  });

  test('a text message is reported as invalid and nothing after it is delivered', async () => {
    const url = await wsServer((ws) => { ws.send(Buffer.from('first')); ws.send('text'); ws.send(Buffer.from('never')); });
    const c = dialRecorded(url);
    await until(() => c.events.invalid.length > 0);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.events.invalid).toEqual(['server sent a text message']);
    expect(c.events.data().toString()).toBe('first');
    await c.sock.close(1002, 'bad frame');
  });

  test('a message over maxPayload is reported as invalid', async () => {
    const url = await wsServer((ws) => ws.send(Buffer.alloc(5000)));
    const c = dialRecorded(url, { maxPayload: 4096 });
    await until(() => c.events.invalid.length > 0);
    expect(c.events.invalid[0]).toMatch(/exceeds 4096 bytes/);
    await c.sock.close(1009, 'too big');
  });
});

describe('dialWsStream against servers that botch the upgrade', () => {
  const cleanup: Array<() => void> = [];
  afterEach(() => { for (const c of cleanup.splice(0)) c(); });

  async function rawServer(onSocket: (sock: net.Socket, request: string) => void): Promise<string> {
    const srv = net.createServer((sock) => {
      let head = '';
      sock.on('data', (d) => {
        if (head.includes('\r\n\r\n')) return;
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) onSocket(sock, head);
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => srv.close());
    return `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  }

  function accept(request: string): string {
    const key = /sec-websocket-key: *(\S+)/i.exec(request)![1]!;
    return acceptKey(key);
  }

  test('the accept key is RFC 6455\'s (its §1.3 example)', () => {
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    expect(acceptKey('dGhlIHNhbXBsZSBub25jZQ==')).toBe(createHash('sha1').update('dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64'));
  });

  test('HTTP 503: an error naming the status, then "connection failed"', async () => {
    const srv = http.createServer((_req, res) => { res.writeHead(503, { connection: 'close' }); res.end('full'); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => srv.close());
    const c = dialRecorded(`ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}`);
    expect(await c.closed).toBe('connection failed');
    expect(c.events.opened).toBe(false);
    expect(c.events.errors.map((e) => e.message)).toEqual(['Unexpected server response: 503']);
  });

  test('a 101 with the wrong Sec-WebSocket-Accept is refused', async () => {
    const url = await rawServer((sock) => sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n'));
    const c = dialRecorded(url);
    expect(await c.closed).toBe('connection failed');
    expect(c.events.opened).toBe(false);
    expect(c.events.errors[0]?.message).toMatch(/wrong Sec-WebSocket-Accept/);
  });

  test('a server that never answers the upgrade: the connect deadline ends it', async () => {
    const url = await rawServer(() => {});
    const c = dialRecorded(url, { connectTimeoutMs: 200 });
    expect(await c.closed).toBe('connection failed');
    expect(c.events.errors[0]?.message).toMatch(/connect timed out after 200 ms/);
  });

  test('the request carries path, host and version; frames in the same segment as the 101 are delivered', async () => {
    let request = '';
    const url = await rawServer((sock, req) => {
      request = req;
      sock.write(Buffer.concat([
        Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(req)}\r\n\r\n`),
        frame(0x2, Buffer.from('hello ')),
        frame(0x2, Buffer.from('world')),
      ]));
    });
    const c = dialRecorded(`${url}/p/q?r=s`);
    await until(() => c.events.data().length === 11);
    expect(c.events.opened).toBe(true);
    expect(c.events.data().toString()).toBe('hello world');
    expect(request).toMatch(/^GET \/p\/q\?r=s HTTP\/1\.1\r\n/);
    expect(request).toMatch(/\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    expect(request).toMatch(/\r\nSec-WebSocket-Version: 13\r\n/);
    c.sock.close(1000, '');
  });
});
