/**
 * @fileoverview The ws:// client transport: a WebSocket (RFC 6455) over a plain `net` socket that
 * hands the link the payload bytes of the server's binary messages as they arrive, a stream like
 * tcp://, so a page lands in its frame straight from the socket's read buffer.
 *
 * Why not the `ws` package here (the server, wss:// and the tests use it): its client delivers a
 * message only once it has gathered all of it, into a buffer of its own, which farmem then copies
 * into the frame. For a 64 KiB page that is an allocation, a gather and a second copy on the fault
 * path. Against the same ws echo server the `ws` package client's round trip is 1.1–1.4x this one's
 * at 4 KiB and 1.3–2.2x at 64 KiB (`farmem bench faultpath`, `wsPackageOverRawWsP50`, 2026-12-01;
 * docs/architecture.md, "A ws client that streams").
 *
 * What it implements of the RFC, all a client of a farmem server meets:
 *   - the opening handshake (GET + Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Accept checked);
 *   - server frames: binary messages, fragmented or not, as one byte stream (the protocol's frames
 *     are self-delimiting, so message boundaries carry nothing); ping (answered with pong), pong,
 *     close (answered, then FIN). Text frames, masked frames, RSV bits (no extension is negotiated),
 *     unknown opcodes, long or fragmented control frames and messages over `maxPayload` are
 *     protocol errors (`invalid`), after which nothing more is delivered;
 *   - client frames masked with an all-zero key (see transport.ts `zeroMask`), one write each.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { closeGracefully, READ_BUFFER_BYTES, socketHost, type DialOptions, type LinkEvents, type LinkSocket } from './transport.js';

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** RFC 6455 §1.3: appended to the client's key before hashing it into Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The handshake's response head may not exceed this. */
const MAX_RESPONSE_HEAD = 16 * 1024;
/** Client frames up to this size are copied behind their header into one buffer; larger ones go as header + payload (one writev). */
const COPY_BELOW = 1024;
/** Encodes close reasons. */
const UTF8 = new TextEncoder();

/** A server frame the protocol forbids; the connection cannot continue. */
export class WsFrameError extends Error {}

export interface DeframerEvents {
  /** A piece of a binary message's payload: a view of the chunk given to `push`, valid only during the call. */
  data(bytes: Buffer): void;
  /** A whole control frame (close, ping or pong) and its payload, which is the deframer's: copy what is kept. */
  control(opcode: number, payload: Buffer): void;
}

/** Server-to-client frames, from any cut of the byte stream into pieces. */
export class WsDeframer {
  readonly #maxPayload: number;
  readonly #on: DeframerEvents;
  /** The header being read (at most 10 bytes: a server frame carries no mask key). */
  readonly #header = Buffer.alloc(10);
  #headerHave = 0;
  /** Payload bytes of the current frame not yet seen. */
  #left = 0;
  #opcode = 0;
  /** A binary message whose last frame (FIN) has not come yet. */
  #inMessage = false;
  /** Payload bytes of the current message so far (checked against maxPayload). */
  #messageBytes = 0;
  /** The current control frame's payload (≤ 125 bytes), and how much of it is in. */
  readonly #control = Buffer.alloc(125);
  #controlHave = 0;

  constructor(maxPayload: number, on: DeframerEvents) {
    this.#maxPayload = maxPayload;
    this.#on = on;
  }

  /** Takes the next piece of the stream; throws WsFrameError on a forbidden frame. */
  push(buf: Buffer): void {
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      if (this.#left === 0) {
        pos = this.#readHeader(buf, pos);
        continue;
      }
      const take = Math.min(this.#left, end - pos);
      this.#left -= take;
      if (this.#opcode < OP_CLOSE) {
        this.#on.data(buf.subarray(pos, pos + take));
      } else {
        buf.copy(this.#control, this.#controlHave, pos, pos + take);
        this.#controlHave += take;
        if (this.#left === 0) this.#endControl();
      }
      pos += take;
    }
  }

  /** Reads header bytes from `buf[pos]` on; starts the frame once its header is whole. Returns the new position. */
  #readHeader(buf: Buffer, pos: number): number {
    const h = this.#header;
    while (pos < buf.length) {
      h[this.#headerHave++] = buf[pos++]!;
      if (this.#headerHave === 2) this.#checkStart(h[0]!, h[1]!);
      if (this.#headerHave >= 2 && this.#headerHave === headerBytes(h[1]!)) {
        this.#headerHave = 0;
        this.#startFrame(h);
        break;
      }
    }
    return pos;
  }

  /** The first two bytes of a frame: what no length can make legal. */
  #checkStart(b0: number, b1: number): void {
    if ((b0 & 0x70) !== 0) throw new WsFrameError('server frame has RSV bits set (no extension was negotiated)');
    if ((b1 & 0x80) !== 0) throw new WsFrameError('server frame is masked');
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode === OP_TEXT) throw new WsFrameError('server sent a text message');
    if (opcode >= OP_CLOSE) {
      if (opcode > OP_PONG) throw new WsFrameError(`server frame has unknown opcode ${opcode}`);
      if (!fin || (b1 & 0x7f) > 125) throw new WsFrameError('server control frame is fragmented or longer than 125 bytes');
    } else if (opcode !== OP_BINARY && opcode !== OP_CONTINUATION) {
      throw new WsFrameError(`server frame has unknown opcode ${opcode}`);
    } else if ((opcode === OP_CONTINUATION) !== this.#inMessage) {
      // a continuation needs a message begun; a new message needs the last one finished
      throw new WsFrameError('server frame breaks message fragmentation');
    }
  }

  #startFrame(h: Buffer): void {
    const opcode = h[0]! & 0x0f;
    const length7 = h[1]! & 0x7f;
    let length = length7;
    if (length7 === 126) length = h.readUInt16BE(2);
    else if (length7 === 127) length = h.readUInt32BE(2) === 0 ? h.readUInt32BE(6) : Infinity;
    this.#opcode = opcode;
    this.#left = length;
    if (opcode >= OP_CLOSE) {
      this.#controlHave = 0;
      if (length === 0) this.#endControl();
      return;
    }
    if (opcode === OP_BINARY) this.#messageBytes = 0;
    this.#messageBytes += length;
    if (this.#messageBytes > this.#maxPayload) throw new WsFrameError(`server message exceeds ${this.#maxPayload} bytes`);
    this.#inMessage = (h[0]! & 0x80) === 0;
  }

  #endControl(): void {
    this.#on.control(this.#opcode, this.#control.subarray(0, this.#controlHave));
  }
}

/** A server frame's header length from its second byte (no mask key: a masked frame is refused at that byte). */
function headerBytes(b1: number): number {
  const length7 = b1 & 0x7f;
  return length7 < 126 ? 2 : length7 === 126 ? 4 : 10;
}

/** Writes the header of a client frame (FIN, `opcode`, mask bit, zero key) for `length` payload bytes at `out[0]`; it is `clientHeaderBytes(length)` long. */
function writeClientHeader(out: Buffer, opcode: number, length: number): void {
  out[0] = 0x80 | opcode;
  let at: number;
  if (length < 126) {
    out[1] = 0x80 | length;
    at = 2;
  } else if (length < 0x10000) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(length, 2);
    at = 4;
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
    at = 10;
  }
  out.writeUInt32BE(0, at); // the all-zero mask key: the payload goes as it is
}

function clientHeaderBytes(length: number): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + 4;
}

/** Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/**
 * Checks the handshake's response head (status line and headers, without the blank line): throws
 * an Error saying what is wrong unless it is a 101 that accepts `key`.
 */
function checkResponse(head: string, key: string): void {
  const [status, ...lines] = head.split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})/.exec(status ?? '');
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify((status ?? '').slice(0, 80))}`);
  if (m[1] !== '101') throw new Error(`Unexpected server response: ${m[1]}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') throw new Error('server answered 101 without "Upgrade: websocket"');
  if (headers.get('sec-websocket-accept') !== acceptKey(key)) throw new Error('server answered with a wrong Sec-WebSocket-Accept');
  if (headers.has('sec-websocket-extensions')) throw new Error('server chose an extension the client did not offer');
}

export function dialWsStream(url: string, o: DialOptions, on: LinkEvents): LinkSocket {
  const u = new URL(url);
  const host = socketHost(u);
  const port = Number(u.port || 80);
  const key = randomBytes(16).toString('base64');
  /** The handshake's response as it arrives; null once upgraded. */
  let head: Buffer | null = Buffer.alloc(0);
  /** A protocol error or a close frame ended deliveries. */
  let ended = false;
  let closeCode = 1006;
  let closeReason = '';
  let closeSent = false;

  const deframer = new WsDeframer(o.maxPayload, {
    data: (bytes) => on.data(bytes),
    control: (opcode, payload) => {
      if (opcode === OP_PING) {
        sendFrame(OP_PONG, payload);
      } else if (opcode === OP_CLOSE) {
        ended = true;
        closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        closeReason = payload.subarray(2).toString('utf8');
        if (!closeSent) sendClose(payload.length >= 2 ? closeCode : 1000, '');
        sock.end();
      }
    },
  });

  const readBuf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const onread = {
    buffer: readBuf,
    callback: (n: number) => {
      if (ended) return true;
      const chunk = readBuf.subarray(0, n);
      try {
        if (head === null) deframer.push(chunk);
        else handshakeIn(chunk);
      } catch (err) {
        ended = true;
        if (err instanceof WsFrameError) on.invalid(err.message);
        else sock.destroy(err as Error);
      }
      return true;
    },
  };
  const sock = net.connect({ host, port, noDelay: true, onread });
  const connectTimer = setTimeout(() => sock.destroy(new Error(`connect timed out after ${o.connectTimeoutMs} ms (TCP connect and WebSocket upgrade)`)), o.connectTimeoutMs);
  connectTimer.unref();
  sock.once('connect', () => {
    const path = (u.pathname || '/') + u.search;
    sock.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
  sock.on('error', (err) => on.error(err));
  sock.on('close', () => {
    clearTimeout(connectTimer);
    on.closed(head !== null ? 'connection failed' : `connection closed (code ${closeCode}${closeReason.length ? `, ${closeReason}` : ''})`);
  });

  /** Response bytes until the head's blank line; what follows it is the first of the frames. */
  function handshakeIn(chunk: Buffer): void {
    head = Buffer.concat([head!, chunk]); // copied: the read buffer is reused
    const blank = head.indexOf('\r\n\r\n');
    if (blank < 0) {
      if (head.length > MAX_RESPONSE_HEAD) throw new Error(`WebSocket handshake response head exceeds ${MAX_RESPONSE_HEAD} bytes`);
      return;
    }
    checkResponse(head.toString('latin1', 0, blank), key);
    const rest = head.subarray(blank + 4);
    head = null;
    clearTimeout(connectTimer);
    on.open();
    if (rest.length > 0 && !ended) deframer.push(rest);
  }

  /** Sends one message: `payload`, then each of `rest`, written from where they are (one gather). */
  function sendFrame(opcode: number, payload: Uint8Array, rest?: readonly Uint8Array[] | null): void {
    let length = payload.length;
    if (rest) for (const r of rest) length += r.length;
    const h = clientHeaderBytes(length);
    if (!rest && length < COPY_BELOW) {
      const frame = Buffer.allocUnsafe(h + length);
      writeClientHeader(frame, opcode, length);
      frame.set(payload, h);
      sock.write(frame);
      return;
    }
    const header = Buffer.allocUnsafe(h);
    writeClientHeader(header, opcode, length);
    sock.cork();
    sock.write(header);
    sock.write(payload);
    if (rest) for (const r of rest) sock.write(r);
    sock.uncork();
  }

  function sendClose(code: number, reason: string): void {
    closeSent = true;
    // A close frame's reason is at most 123 bytes; encodeInto writes whole UTF-8 characters only.
    const payload = Buffer.allocUnsafe(2 + 123);
    payload.writeUInt16BE(code, 0);
    const { written } = UTF8.encodeInto(reason, payload.subarray(2));
    sendFrame(OP_CLOSE, payload.subarray(0, 2 + written));
  }

  return {
    stream: true,
    get open() {
      return head === null && !ended && !sock.destroyed && sock.writable;
    },
    send(bytes, rest) {
      sendFrame(OP_BINARY, bytes, rest);
    },
    close(code, reason) {
      return closeGracefully(sock, () => {
        if (head === null && !closeSent && sock.writable) sendClose(code, reason);
        else sock.end();
      });
    },
  };
}
