/**
 * @fileoverview RFC 6455 framing for both ends of farmem's ws:// transport, written for the fault
 * path: a deframer that takes any cut of the byte stream and hands on binary payload as views of
 * the pieces it was given (no gather, no copy), and the frame header writer.
 *
 *   client (host/store/remote/ws-stream.ts)  reads server frames (unmasked); writes masked frames
 *                                            with the all-zero key (the payload goes as it is)
 *   server (host/server/ws-peer.ts)          reads client frames (masked: unmasked in place, skipped
 *                                            for the all-zero key); writes unmasked frames
 *
 * What either end may receive: binary messages, fragmented or not, as one byte stream (farmem's
 * frames are self-delimiting, so message boundaries carry nothing); ping, pong and close. Frames
 * with the wrong mask bit, RSV bits (no extension is negotiated), unknown opcodes, long or
 * fragmented control frames, broken fragmentation and messages over `maxPayload` are protocol
 * errors (`WsFrameError`). A text message is one too, unless the reader asks to hear of it (`text`).
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';

export const OP_CONTINUATION = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close codes (RFC 6455 §7.4.1) the transport itself uses. */
export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_TOO_BIG = 1009;

/** Frames up to this size are copied behind their header into one buffer; larger ones go as header + payload (one writev). */
const COPY_BELOW = 1024;
const UTF8 = new TextEncoder();

/** RFC 6455 §1.3: appended to the client's key before hashing it into Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** A frame the protocol forbids; the connection cannot continue. `code` is the close code to send. */
export class WsFrameError extends Error {
  readonly code: number;

  constructor(message: string, code = CLOSE_PROTOCOL_ERROR) {
    super(message);
    this.code = code;
  }
}

export interface DeframerEvents {
  /** A piece of a binary message's payload: a view of the piece given to `push` (unmasked in place), valid only during the call. */
  data(bytes: Buffer): void;
  /** A whole control frame (close, ping or pong) and its payload, which is the deframer's: copy what is kept. */
  control(opcode: number, payload: Buffer): void;
  /** A text message began; its payload is dropped. Without this handler a text message is a WsFrameError. */
  text?(): void;
}

/** Frames from the other end, from any cut of the byte stream into pieces. */
export class WsDeframer {
  readonly #maxPayload: number;
  readonly #on: DeframerEvents;
  /** Frames must be masked (a server reading a client) or must not be (a client reading a server). */
  readonly #masked: boolean;
  /** Who sent the frames, for error messages. */
  readonly #peer: string;
  /** The header being read (at most 14 bytes: 2, an extended length of 8, a mask key of 4). */
  readonly #header = Buffer.alloc(14);
  #headerHave = 0;
  /** Payload bytes of the current frame not yet seen. */
  #left = 0;
  #opcode = 0;
  /** The current frame's mask key (0: none, or the all-zero one) and its payload bytes seen so far. */
  #key = 0;
  #keyPhase = 0;
  /** A data message whose last frame (FIN) has not come yet. */
  #inMessage = false;
  /** The current message is text: its payload is dropped. */
  #dropping = false;
  /** Payload bytes of the current message so far (checked against maxPayload). */
  #messageBytes = 0;
  /** The current control frame's payload (≤ 125 bytes), and how much of it is in. */
  readonly #control = Buffer.alloc(125);
  #controlHave = 0;

  /** `masked`: the frames come from a client, so each must carry a mask key. */
  constructor(maxPayload: number, on: DeframerEvents, masked = false) {
    this.#maxPayload = maxPayload;
    this.#on = on;
    this.#masked = masked;
    this.#peer = masked ? 'client' : 'server';
  }

  /** Takes the next piece of the stream (unmasking it in place); throws WsFrameError on a forbidden frame. */
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
      if (this.#key !== 0) {
        unmask(buf, pos, pos + take, this.#key, this.#keyPhase);
        this.#keyPhase = (this.#keyPhase + take) & 3;
      }
      if (this.#opcode < OP_CLOSE) {
        if (!this.#dropping) this.#on.data(buf.subarray(pos, pos + take));
      } else {
        buf.copy(this.#control, this.#controlHave, pos, pos + take);
        this.#controlHave += take;
        if (this.#left === 0) this.#endControl();
      }
      pos += take;
    }
  }

  /**
   * Payload bytes of the current data frame still to come that a caller may read into memory of
   * its own and report with `skipped` (unmasked, not a text message being dropped); 0 between frames.
   */
  get dataLeft(): number {
    return this.#left > 0 && this.#key === 0 && this.#opcode < OP_CLOSE && !this.#dropping ? this.#left : 0;
  }

  /** Between frames, with none of the next header seen: the next byte starts a header. */
  get atFrameStart(): boolean {
    return this.#left === 0 && this.#headerHave === 0;
  }

  /** `n` (at most `dataLeft`) payload bytes of the current frame were read elsewhere, not pushed. */
  skipped(n: number): void {
    this.#left -= n;
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
    const who = this.#peer;
    if ((b0 & 0x70) !== 0) throw new WsFrameError(`${who} frame has RSV bits set (no extension was negotiated)`);
    if (((b1 & 0x80) !== 0) !== this.#masked) throw new WsFrameError(`${who} frame is ${this.#masked ? 'not masked' : 'masked'}`);
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    if (opcode === OP_TEXT && this.#on.text === undefined) throw new WsFrameError(`${who} sent a text message`);
    if (opcode >= OP_CLOSE) {
      if (opcode > OP_PONG) throw new WsFrameError(`${who} frame has unknown opcode ${opcode}`);
      if (!fin || (b1 & 0x7f) > 125) throw new WsFrameError(`${who} control frame is fragmented or longer than 125 bytes`);
    } else if (opcode > OP_BINARY) {
      throw new WsFrameError(`${who} frame has unknown opcode ${opcode}`);
    } else if ((opcode === OP_CONTINUATION) !== this.#inMessage) {
      // a continuation needs a message begun; a new message needs the last one finished
      throw new WsFrameError(`${who} frame breaks message fragmentation`);
    }
  }

  #startFrame(h: Buffer): void {
    const opcode = h[0]! & 0x0f;
    const length7 = h[1]! & 0x7f;
    let length = length7;
    let at = 2;
    if (length7 === 126) {
      length = h.readUInt16BE(2);
      at = 4;
    } else if (length7 === 127) {
      length = h.readUInt32BE(2) === 0 ? h.readUInt32BE(6) : Infinity;
      at = 10;
    }
    this.#opcode = opcode;
    this.#left = length;
    this.#key = this.#masked ? h.readInt32BE(at) : 0;
    this.#keyPhase = 0;
    if (opcode >= OP_CLOSE) {
      this.#controlHave = 0;
      if (length === 0) this.#endControl();
      return;
    }
    if (opcode !== OP_CONTINUATION) {
      this.#messageBytes = 0;
      this.#dropping = opcode === OP_TEXT;
      if (this.#dropping) this.#on.text!();
    }
    this.#messageBytes += length;
    if (this.#messageBytes > this.#maxPayload) throw new WsFrameError(`${this.#peer} message exceeds ${this.#maxPayload} bytes`, CLOSE_TOO_BIG);
    this.#inMessage = (h[0]! & 0x80) === 0;
  }

  #endControl(): void {
    this.#on.control(this.#opcode, this.#control.subarray(0, this.#controlHave));
  }
}

/** XORs `buf[start, end)` with the big-endian mask `key`, starting `phase` bytes into it (RFC 6455 §5.3). */
function unmask(buf: Buffer, start: number, end: number, key: number, phase: number): void {
  for (let i = start, j = phase; i < end; i++, j = (j + 1) & 3) buf[i] = buf[i]! ^ ((key >>> ((3 - j) << 3)) & 0xff);
}

/** A frame's header length from its second byte: the length form, and the mask key when the mask bit is set. */
function headerBytes(b1: number): number {
  const length7 = b1 & 0x7f;
  return (length7 < 126 ? 2 : length7 === 126 ? 4 : 10) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

/** The header length of a frame of `length` payload bytes, with a (zero) mask key when `masked`. */
export function frameHeaderBytes(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Writes the header of a whole frame (FIN, `opcode`) of `length` payload bytes at `out[at]`, masked
 * with the all-zero key when `masked`; it is `frameHeaderBytes(length, masked)` long.
 */
export function writeFrameHeader(out: Uint8Array, at: number, opcode: number, length: number, masked: boolean): void {
  const m = masked ? 0x80 : 0;
  out[at] = 0x80 | opcode;
  if (length < 126) {
    out[at + 1] = m | length;
    at += 2;
  } else if (length < 0x10000) {
    out[at + 1] = m | 126;
    out[at + 2] = length >>> 8;
    out[at + 3] = length & 0xff;
    at += 4;
  } else {
    out[at + 1] = m | 127;
    const hi = Math.floor(length / 2 ** 32);
    const lo = length >>> 0;
    for (let i = 0; i < 4; i++) {
      out[at + 2 + i] = (hi >>> (24 - 8 * i)) & 0xff;
      out[at + 6 + i] = (lo >>> (24 - 8 * i)) & 0xff;
    }
    at += 10;
  }
  if (masked) out.fill(0, at, at + 4);
}

/**
 * Writes one whole frame to `sock`: `payload`, then each of `rest`, written from where they lie (one
 * gather), or copied behind the header into one buffer when small. `masked`: a client's frame (the
 * all-zero key). `cb` runs once the last part left user space.
 */
export function writeFrame(sock: Socket, opcode: number, masked: boolean, payload: Uint8Array, more?: readonly Uint8Array[] | null, cb?: (err?: Error) => void): void {
  const rest = more && more.length > 0 ? more : null;
  let length = payload.length;
  if (rest) for (const r of rest) length += r.length;
  const h = frameHeaderBytes(length, masked);
  const done = cb as ((err?: Error | null) => void) | undefined;
  if (!rest && length < COPY_BELOW) {
    const frame = Buffer.allocUnsafe(h + length);
    writeFrameHeader(frame, 0, opcode, length, masked);
    frame.set(payload, h);
    sock.write(frame, done);
    return;
  }
  const header = Buffer.allocUnsafe(h);
  writeFrameHeader(header, 0, opcode, length, masked);
  sock.cork();
  sock.write(header);
  if (rest) {
    sock.write(payload);
    for (let i = 0; i < rest.length; i++) sock.write(rest[i]!, i === rest.length - 1 ? done : undefined);
  } else {
    sock.write(payload, done);
  }
  sock.uncork();
}

/** A close frame's payload: `code`, then as much of `reason` as fits (123 bytes; whole UTF-8 characters only). */
export function closePayload(code: number, reason: string): Buffer {
  const payload = Buffer.allocUnsafe(2 + 123);
  payload.writeUInt16BE(code, 0);
  const { written } = UTF8.encodeInto(reason, payload.subarray(2));
  return payload.subarray(0, 2 + written);
}
