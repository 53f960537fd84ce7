/**
 * @fileoverview `PeerSocket`: what a server `Connection` needs from the socket to its client — the
 * subset of ws's `WebSocket` API it uses, so a ws socket is one as it is and the TCP transport
 * (`tcp-listener.ts`) is a small adapter over `net.Socket`. The two differ in one way only:
 *
 *   ws   each 'message' holds whole frames (a message ending inside a frame is MALFORMED_FRAME)
 *   tcp  each 'message' is a chunk of the byte stream (`stream` = true): a frame may span chunks,
 *        and the connection's FrameReader keeps the incomplete tail (at most one frame, ≤ maxPayload)
 *
 * Protocol frames carry their own length (host/protocol/codec.ts), so the TCP stream needs no
 * framing of its own. Both kinds are paused while their frames wait for the send budget, so the
 * input a connection holds stays bounded (ws: one message; tcp: one socket read plus one frame).
 */

/** ws's numbering of `readyState` (the TCP adapter uses the same). */
export const PEER_OPEN = 1;

export interface PeerSocket {
  /** True when a 'message' may end inside a frame (a byte stream); absent or false for ws. */
  readonly stream?: boolean;
  readonly readyState: number;
  /** `PEER_OPEN` (ws exposes its constants on the instance). */
  readonly OPEN: number;
  /** Bytes handed to `send` and not yet written to the kernel. */
  readonly bufferedAmount: number;
  readonly isPaused: boolean;
  pause(): void;
  resume(): void;
  /** Writes one or more whole frames; `cb` runs once they left user space (or with the error that dropped them). */
  send(data: Uint8Array, cb?: (err?: Error) => void): void;
  /** Closes after what was sent (ws: close handshake with code and reason; tcp: FIN, code and reason unused). */
  close(code?: number, reason?: string): void;
  /** Drops the connection at once. */
  terminate(): void;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'close', listener: () => void): this;
  once(event: 'close', listener: () => void): this;
}
