/**
 * @fileoverview The byte pipe under a `ServerLink`, chosen by the server URL's scheme: a WebSocket
 * (`ws://`, `wss://`) or a plain TCP socket with NODELAY (`tcp://`). All carry the same protocol
 * frames; they differ in what one delivery holds:
 *
 *   ws   (ws-stream.ts) the payload bytes of the server's binary messages as each socket read
 *        brings them: any cut of the frame stream (`stream`), like tcp
 *   tcp  one socket read = any cut of the frame stream (`stream`): the link's FrameReader keeps the
 *        tail; frames are self-delimiting (length first), so TCP needs no framing of its own
 *   wss  (the `ws` package, over TLS) one binary message = one or more whole frames (a message
 *        ending inside a frame is an error)
 *
 * Stream deliveries are views of the socket's one read buffer, reused by every read, so a delivery
 * is valid only while it is handled. A stream's link may also say where the next read goes
 * (`LinkEvents.nextRead`, `StreamReads`): straight into a page's memory while a large page's data
 * is due, so the kernel copies it into place and no user-space copy follows.
 *
 * `dial` connects and reports through the `LinkEvents` handlers; the link owns reconnecting.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { dialWsStream } from './ws-stream.js';

export interface LinkEvents {
  /** Connected: the link sends HELLO next. */
  open(): void;
  /**
   * Bytes from the server (see the file overview for what one delivery holds). On a stream they are
   * a view of the socket's read buffer, valid only during the call: whatever is kept must be copied.
   */
  data(bytes: Buffer): void;
  /** The server sent something the protocol has no place for (a ws text message). */
  invalid(why: string): void;
  /** A transport error; `closed` follows. */
  error(err: Error): void;
  /** The connection is gone; `why` says how it ended, for the error the link reports. */
  closed(why: string): void;
  /**
   * Streams (tcp, ws) ask before every socket read where it should land: a view of memory the
   * stream's next bytes belong in (reported by `direct`, never by `data`); a number n > 0: at most
   * n bytes into the buffer (a reply header, after which a large page may go straight into place);
   * 0: anything, into the buffer.
   */
  nextRead?(): Uint8Array | number;
  /** `n` bytes of the stream were read straight into the view `nextRead` last returned (or into the start of it). */
  direct?(n: number): void;
}

export interface LinkSocket {
  /** Deliveries may end inside a frame (tcp, ws). */
  readonly stream: boolean;
  /** Connected and writable. */
  readonly open: boolean;
  /**
   * Sends one or more whole frames: `bytes`, then each of `rest` (the tail of the last frame, sent
   * from where it lies where the transport can: tcp and ws write them as one gather; wss copies).
   */
  send(bytes: Uint8Array, rest?: readonly Uint8Array[] | null): void;
  /** Closes gracefully (ws: close handshake with `code` and `reason`; tcp: FIN); resolves once closed, dropping it after 1 s. */
  close(code: number, reason: string): Promise<void>;
  /** Drops the connection now: no read lands anywhere once this returns (`closed` follows). */
  abort(): void;
}

export interface DialOptions {
  /** Largest frame the server may send (ws: largest message). */
  readonly maxPayload: number;
  /** Deadline for connecting (TCP connect, plus the HTTP upgrade for ws). */
  readonly connectTimeoutMs: number;
}

/** A stream socket's read buffer (tcp, ws): one socket read of up to this many bytes is one pass over it. */
export const READ_BUFFER_BYTES = 64 * 1024;
/**
 * The reads of a stream socket (`net.connect`'s `onread`, whose buffer may change per read): into
 * one reused buffer, or where `plan` says. `plan` is asked after every read for the next one and
 * returns the buffer (or the first bytes of it) or a view of memory outside it; a read into such a
 * view goes to `direct(n)`, any other to `chunk`, a view of the buffer valid during the call.
 */
export class StreamReads {
  readonly #buf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /** Views of the buffer's first n bytes, made once per n. */
  readonly #heads: Buffer[] = [];
  /** The read in progress goes to memory outside the buffer. */
  #direct = false;
  /** `plan` is asked from the second read on: the first buffer is taken while the socket is made. */
  #planned = false;
  readonly onread: { buffer: () => Uint8Array; callback: (n: number) => boolean };

  constructor(plan: () => Uint8Array | number, chunk: (bytes: Buffer) => void, direct: (n: number) => void) {
    this.onread = {
      buffer: () => {
        if (!this.#planned) {
          this.#planned = true;
          return this.#buf;
        }
        const t = plan();
        this.#direct = typeof t !== 'number';
        return typeof t === 'number' ? this.#head(t) : t;
      },
      callback: (n) => {
        if (this.#direct) direct(n);
        else chunk(this.#buf.subarray(0, n));
        return true;
      },
    };
  }

  /** The buffer's first `n` bytes (all of it for 0 or more than it holds). */
  #head(n: number): Buffer {
    if (n <= 0 || n >= this.#buf.length) return this.#buf;
    return (this.#heads[n] ??= this.#buf.subarray(0, n));
  }
}

/** How long a graceful close may take before the socket is dropped. */
const CLOSE_GRACE_MS = 1000;

/** A URL's host as `net.connect` takes it (an IPv6 literal without its brackets). */
export function socketHost(u: URL): string {
  return u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
}

/**
 * Closes a net socket gracefully: `begin` starts the close (FIN, or a close frame first); resolves
 * once the socket closed, dropping it after CLOSE_GRACE_MS.
 */
export function closeGracefully(sock: net.Socket, begin: () => void): Promise<void> {
  if (sock.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => { sock.destroy(); resolve(); }, CLOSE_GRACE_MS);
    t.unref();
    sock.once('close', () => { clearTimeout(t); resolve(); });
    begin();
  });
}

/** True for the URL schemes `dial` speaks (`tcp://` or `ws(s)://`; see remote/url.ts for the whole form). */
export function isTcpUrl(url: string): boolean {
  return /^tcp:\/\//i.test(url);
}

export function dial(url: string, o: DialOptions, on: LinkEvents): LinkSocket {
  if (isTcpUrl(url)) return dialTcp(url, o, on);
  return /^ws:\/\//i.test(url) ? dialWsStream(url, o, on) : dialWs(url, o, on);
}

/**
 * Client frames are sent with an all-zero mask, which makes ws skip masking on both ends (a copy and
 * an XOR pass per frame). Masking guards browsers' traffic against cache-poisoning proxies; farmem
 * clients are not browsers and talk to memory servers directly.
 */
function zeroMask(mask: Uint8Array): void {
  mask.fill(0);
}

function dialWs(url: string, o: DialOptions, on: LinkEvents): LinkSocket {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: o.maxPayload, handshakeTimeout: o.connectTimeoutMs, generateMask: zeroMask });
  ws.on('open', () => on.open());
  ws.on('message', (data, isBinary) => {
    if (isBinary) on.data(data as Buffer);
    else on.invalid('server sent a text message');
  });
  ws.on('error', (err) => on.error(err));
  ws.on('close', (code, reason) => on.closed(`connection closed (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`));
  return {
    stream: false,
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
    send(bytes, rest) {
      ws.send(rest ? Buffer.concat([bytes, ...rest]) : bytes);
    },
    abort() {
      ws.terminate();
    },
    close(code, reason) {
      if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const t = setTimeout(() => { ws.terminate(); resolve(); }, CLOSE_GRACE_MS);
        t.unref();
        ws.once('close', () => { clearTimeout(t); resolve(); });
        ws.close(code, reason);
      });
    },
  };
}

function dialTcp(url: string, o: DialOptions, on: LinkEvents): LinkSocket {
  const u = new URL(url);
  // Reads land in one buffer of this socket's, reused by every read (`onread`): no 64 KiB
  // ArrayBuffer allocated per read for a stream of replies to churn through the GC.
  const reads = new StreamReads(() => on.nextRead?.() ?? 0, (bytes) => on.data(bytes), (n) => on.direct!(n));
  const sock = net.connect({ host: socketHost(u), port: Number(u.port), noDelay: true, onread: reads.onread });
  let connected = false;
  const connectTimer = setTimeout(() => sock.destroy(new Error(`connect timed out after ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
  connectTimer.unref();
  sock.once('connect', () => {
    connected = true;
    clearTimeout(connectTimer);
    on.open();
  });
  sock.on('error', (err) => on.error(err));
  sock.on('close', () => {
    clearTimeout(connectTimer);
    on.closed(connected ? 'connection closed by the server' : 'connection failed');
  });
  return {
    stream: true,
    get open() {
      return connected && !sock.destroyed && sock.writable;
    },
    send(bytes, rest) {
      if (!rest) {
        sock.write(bytes);
        return;
      }
      sock.cork();
      sock.write(bytes);
      for (const r of rest) sock.write(r);
      sock.uncork();
    },
    abort() {
      sock.destroy();
    },
    close() {
      return closeGracefully(sock, () => sock.end());
    },
  };
}
