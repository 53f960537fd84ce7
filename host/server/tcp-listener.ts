/**
 * @fileoverview The memory server's `tcp://` listener: the same protocol as over ws, on a plain TCP
 * socket (NODELAY), for clients that want to skip WebSocket framing on the fault path. The stream is
 * the frames themselves, back to back: every frame starts with its own length (host/protocol/codec.ts).
 *
 *   net.Socket ──'data' chunk──▶ TcpPeer 'message' (stream) ──▶ Connection (the same one ws uses:
 *                                                               HELLO, auth, namespace, budget, limits)
 *
 * `TcpPeer` adapts a socket to `PeerSocket`; everything a hostile client can do is bounded where it
 * is for ws — the frame size as the length field arrives (FrameReader), input while frames wait
 * (the socket is paused, so TCP flow control pushes back), reply bytes (the send budget), the HELLO
 * deadline and connections without HELLO (admission) — plus a hard cap on open sockets
 * (`maxSockets`), where ws relies on the HTTP upgrade.
 */
import net from 'node:net';
import { encodeError, type Status } from '../protocol/index.js';
import { PEER_OPEN, SocketPeer, type PeerSocket } from './peer-socket.js';

/** A refused socket that does not read its ERROR and close within this is dropped. */
const REFUSE_GRACE_MS = 2000;

/** A TCP connection as a `PeerSocket`: each socket read is one 'message' of the stream. */
export class TcpPeer extends SocketPeer implements PeerSocket {
  /** The frames are the stream: no header of its own. */
  readonly headerRoom = 0;

  constructor(sock: net.Socket) {
    super(sock);
    sock.on('data', (chunk: Buffer) => this.emit('message', chunk, true));
  }

  get readyState(): number {
    return !this.sock.destroyed && this.sock.writable ? PEER_OPEN : 3;
  }

  send(data: Uint8Array, cb?: (err?: Error) => void, room = 0): void {
    this.write(room === 0 ? data : data.subarray(room), cb);
  }

  /** FIN after what was written; TCP has no close code (an ERROR frame carried the reason). */
  close(): void {
    this.sock.end();
  }

  /** Answers ERROR (request id 0) and closes: the connection is refused before it is admitted. */
  refuse(status: Status, message: string): void {
    const t = setTimeout(() => this.sock.destroy(), REFUSE_GRACE_MS);
    t.unref();
    this.sock.once('close', () => clearTimeout(t));
    this.sock.on('error', () => {}); // a peer that resets while refused is nothing to report
    this.sock.end(encodeError(0, status, message));
  }
}

/** Listens for tcp:// clients and hands every socket to `accept` as a `TcpPeer`. */
export class TcpListener {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  /** `maxSockets`: open sockets beyond this are closed by the kernel-facing layer at once. */
  constructor(maxSockets: number, accept: (peer: TcpPeer, address: string, port: number) => void) {
    this.#server = net.createServer({ noDelay: true }, (sock) => {
      this.#sockets.add(sock);
      sock.once('close', () => this.#sockets.delete(sock));
      accept(new TcpPeer(sock), sock.remoteAddress ?? '?', sock.remotePort ?? 0);
    });
    this.#server.maxConnections = maxSockets;
  }

  /** Starts listening; resolves with the bound port. */
  listen(port: number, host: string, onError: (err: Error) => void): Promise<number> {
    const srv = this.#server;
    return new Promise<number>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(port, host, () => {
        srv.off('error', reject);
        srv.on('error', onError);
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting and drops the sockets still open (their connections were shut down first). */
  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
