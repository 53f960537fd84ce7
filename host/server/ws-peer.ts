/**
 * @fileoverview The memory server's ws:// end: the HTTP upgrade (`upgradeToWs`) and `WsPeer`, a
 * WebSocket over the upgraded socket as a `PeerSocket` that streams like tcp:// does.
 *
 *   net.Socket ──'data' chunk──▶ WsDeframer (unmask in place) ──payload views──▶ 'message' (stream)
 *   Connection ──send(reply, room)──▶ ws header written into the room before the reply ──▶ one write
 *
 * Why not the `ws` package's server (it was, up to 2026-12-03): its receiver gathers every message
 * into a new buffer before the connection sees it, which for a 64 KiB WRITE is 15 µs of the
 * server's time per page, and it sends each reply as header + payload (a writev of two buffers).
 * On the AMD EPYC VM that made the server's CPU per 64 KiB read + write 93 µs over ws:// against
 * 65 µs over tcp:// (docs/architecture.md, "The 64 KiB ws fault on the AMD EPYC VM").
 *
 * Behaviour a client sees is the `ws` server's: a 101 only for a well-formed GET upgrade (400, 405
 * or 426 otherwise, 503 with the reason when the server refuses connections), no extension and no
 * subprotocol chosen, client frames must be masked, a message over `maxPayload` closes with 1009,
 * any other protocol error with 1002, pings are answered, a close is answered and then FIN.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import {
  acceptKey, closePayload, frameHeaderBytes, writeFrame, writeFrameHeader, WsDeframer, WsFrameError, CLOSE_NORMAL, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG,
} from '../protocol/ws-frames.js';
import { MAX_HEADER_ROOM, PEER_OPEN, SocketPeer, type PeerSocket } from './peer-socket.js';

/** A peer that does not answer our close (sent after its protocol error) within this is dropped. */
const CLOSE_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);

/** An upgraded socket as a `PeerSocket`: the payload of each client frame is a 'message' of the stream. */
export class WsPeer extends SocketPeer implements PeerSocket {
  /** A frame header of any length fits (the header of a message of 64 KiB or more is 10 bytes). */
  readonly headerRoom = MAX_HEADER_ROOM;
  readonly #deframer: WsDeframer;
  #closeSent = false;
  #closeReceived = false;
  /** A protocol error or a text message: what the client sends after it is not delivered. */
  #stopped = false;
  /**
   * The last payload piece of the socket read being deframed, delivered once the next one is seen
   * (with `more`) or the read ends: many small frames in one read make one turn of the connection,
   * as over tcp://, so their small replies still leave gathered in one write.
   */
  #held: Buffer | null = null;

  constructor(sock: Socket, maxPayload: number) {
    super(sock);
    this.#deframer = new WsDeframer(maxPayload, {
      data: (bytes) => {
        if (this.#stopped) return;
        // A view of the socket's chunk, which is this read's own: it may be kept past the call.
        if (this.#held !== null) this.emit('message', this.#held, true, true);
        this.#held = bytes;
      },
      control: (opcode, payload) => this.#control(opcode, payload),
      text: () => {
        // The connection answers MALFORMED_FRAME and closes; nothing after this reaches it.
        this.#release();
        this.emit('message', EMPTY, false);
        this.#stopped = true;
      },
    }, true);
    sock.on('data', (chunk: Buffer) => this.push(chunk));
    // The HTTP server's sockets allow half-open: a client's FIN would leave ours open for ever.
    sock.on('end', () => {
      this.#closeReceived = true;
      sock.end();
    });
    sock.resume(); // an upgraded socket may be left paused by the HTTP server
  }

  /** Bytes of the stream: read off the socket, or the head that came with the upgrade request. */
  push(chunk: Buffer): void {
    if (this.#closeReceived) return;
    try {
      this.#deframer.push(chunk);
      this.#release();
    } catch (err) {
      if (!(err instanceof WsFrameError)) throw err; // not the client's frames: a bug, not to be answered as one
      this.#release(); // the frames before the bad one are answered
      this.#stopped = true;
      this.#closeReceived = true; // nothing more is read
      this.emit('error', err);
      if (!this.#closeSent) {
        const t = setTimeout(() => this.sock.destroy(), CLOSE_GRACE_MS);
        t.unref();
        this.sock.once('close', () => clearTimeout(t));
        this.#sendClose(err.code, err.message);
      }
      this.sock.end();
    }
  }

  /** Delivers the held piece, the last of what came so far. */
  #release(): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    this.emit('message', held, true, false);
  }

  #control(opcode: number, payload: Buffer): void {
    if (opcode === OP_PING) {
      if (!this.#closeSent) this.#frame(OP_PONG, payload); // ≤ 125 bytes: copied behind the header
    } else if (opcode === OP_CLOSE) {
      if (payload.length === 1) throw new WsFrameError('client close frame has a 1-byte payload');
      this.#release(); // what came before the close is answered
      this.#closeReceived = true;
      this.#stopped = true;
      if (!this.#closeSent) this.#sendClose(payload.length >= 2 ? payload.readUInt16BE(0) : CLOSE_NORMAL, '');
      this.sock.end();
    }
  }

  get readyState(): number {
    if (this.sock.destroyed) return 3;
    return this.#closeSent || this.#closeReceived ? 2 : PEER_OPEN;
  }

  /**
   * Sends `data` after its first `room` bytes as one binary message: with room for its header the
   * header is written there and the frame leaves in one write (with no new view when it fills the room).
   */
  send(data: Uint8Array, cb?: (err?: Error) => void, room = 0): void {
    if (this.#closeSent) {
      if (cb) process.nextTick(cb, new Error('WebSocket is closing'));
      return;
    }
    const n = data.length - room;
    const h = frameHeaderBytes(n, false);
    if (room >= h) {
      const at = room - h;
      writeFrameHeader(data, at, OP_BINARY, n, false);
      this.write(at === 0 ? data : data.subarray(at), cb);
    } else {
      this.#frame(OP_BINARY, room === 0 ? data : data.subarray(room), cb);
    }
  }

  /** One whole frame of `payload` (ws-frames.ts `writeFrame`). */
  #frame(opcode: number, payload: Uint8Array, cb?: (err?: Error) => void): void {
    writeFrame(this.sock, opcode, false, payload, null, cb);
  }

  #sendClose(code: number, reason: string): void {
    this.#closeSent = true;
    this.#frame(OP_CLOSE, closePayload(code, reason));
  }

  /** Starts the close handshake (the caller bounds how long it may take); FIN once the client answered. */
  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.#closeSent || this.sock.destroyed) return;
    this.#sendClose(code, reason);
    if (this.#closeReceived) this.sock.end();
  }

}

/**
 * Answers an HTTP upgrade request: a `WsPeer` after the 101, or null after an HTTP error (the
 * socket is then closed). `refusal` says why the server takes no connection now (503), or null.
 */
export function upgradeToWs(req: IncomingMessage, sock: Socket, head: Buffer, maxPayload: number, refusal: () => string | null): WsPeer | null {
  sock.on('error', () => {}); // a peer that resets during the handshake is nothing to report
  const key = req.headers['sec-websocket-key'];
  const problem =
    req.method !== 'GET' ? [405, 'the WebSocket upgrade must be a GET request'] as const
    : req.headers.upgrade?.toLowerCase() !== 'websocket' ? [400, 'the Upgrade header must be "websocket"'] as const
    : typeof key !== 'string' || !/^[+/0-9A-Za-z]{22}==$/.test(key) ? [400, 'missing or invalid Sec-WebSocket-Key header'] as const
    : req.headers['sec-websocket-version'] !== '13' ? [426, 'Sec-WebSocket-Version must be 13'] as const
    : null;
  const refused = problem === null ? refusal() : null;
  if (problem !== null || refused !== null) {
    const [status, message] = problem ?? [503, refused!];
    sock.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${status === 426 ? 'Sec-WebSocket-Version: 13\r\n' : ''}` +
      `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`);
    sock.once('finish', () => sock.destroy());
    return null;
  }
  sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key as string)}\r\n\r\n`);
  const peer = new WsPeer(sock, maxPayload);
  if (head.length > 0) queueMicrotask(() => peer.push(head));
  return peer;
}
