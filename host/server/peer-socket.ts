/**
 * @fileoverview `PeerSocket`: what a server `Connection` needs from the socket to its client — the
 * subset of the `ws` package's `WebSocket` API it uses: `WsPeer` (ws-peer.ts) over an upgraded HTTP
 * socket, `TcpPeer` (tcp-listener.ts) over a plain `net.Socket`. Both are streams: each 'message'
 * is a piece of the byte stream of protocol frames (ws: the payload of client frames, whatever
 * their message boundaries), a frame may span pieces, and the connection's FrameReader keeps the
 * incomplete tail (at most one frame, ≤ maxPayload).
 *
 * Protocol frames carry their own length (host/protocol/codec.ts), so the stream needs no
 * framing of its own. Both are paused while their frames wait for the send budget, so the input
 * a connection holds stays bounded (one socket read plus one frame).
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

/** The most header room any transport asks for (`PeerSocket.headerRoom`): a ws frame header. */
export const MAX_HEADER_ROOM = 10;

/** ws's numbering of `readyState` (the TCP adapter uses the same). */
export const PEER_OPEN = 1;

export interface PeerSocket {
  readonly readyState: number;
  /** `PEER_OPEN` (ws exposes its constants on the instance). */
  readonly OPEN: number;
  /** Bytes handed to `send` and not yet written to the kernel. */
  readonly bufferedAmount: number;
  readonly isPaused: boolean;
  /** Free bytes a message should start with, for the transport's own header (ws: 10, tcp: 0). */
  readonly headerRoom: number;
  pause(): void;
  resume(): void;
  /**
   * Writes one or more whole frames; `cb` runs once they left user space (or with the error that
   * dropped them). The first `room` bytes of `data` (0, or `headerRoom`) are not part of the
   * message: the transport may write its own header there, so the message leaves in one write.
   */
  send(data: Uint8Array, cb?: (err?: Error) => void, room?: number): void;
  /** Closes after what was sent (ws: close handshake with code and reason; tcp: FIN, code and reason unused). */
  close(code?: number, reason?: string): void;
  /** Drops the connection at once. */
  terminate(): void;
  /**
   * `more`: another 'message' from the same socket read follows at once (ws: the payload of the
   * next frame in it), so the listener may wait for the last one before acting on the frames.
   */
  on(event: 'message', listener: (data: Buffer, isBinary: boolean, more?: boolean) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close', listener: () => void): this;
  once(event: 'close', listener: () => void): this;
}

/** What both peers share: a `net.Socket` (NODELAY) whose flow control and write queue are the peer's own. */
export abstract class SocketPeer extends EventEmitter {
  readonly OPEN = PEER_OPEN;
  protected readonly sock: Socket;

  constructor(sock: Socket) {
    super();
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('error', (err) => this.emit('error', err));
    sock.on('close', () => this.emit('close'));
  }

  get bufferedAmount(): number {
    return this.sock.writableLength;
  }

  get isPaused(): boolean {
    return this.sock.isPaused();
  }

  pause(): void {
    this.sock.pause();
  }

  resume(): void {
    this.sock.resume();
  }

  terminate(): void {
    this.sock.destroy();
  }

  /** Writes `bytes`; `cb` runs once they left user space (or with the error that dropped them). */
  protected write(bytes: Uint8Array, cb?: (err?: Error) => void): void {
    if (cb === undefined) this.sock.write(bytes);
    else this.sock.write(bytes, cb as (err?: Error | null) => void);
  }
}
