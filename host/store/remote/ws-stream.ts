/**
 * @fileoverview The ws:// client transport: a WebSocket (RFC 6455) over a plain `net` socket that
 * hands the link the payload bytes of the server's binary messages as they arrive, a stream like
 * tcp://, so a page lands in its frame straight from the socket's read buffer.
 *
 * Why not the `ws` package here (wss:// and the tests use it): its client delivers a message only
 * once it has gathered all of it, into a buffer of its own, which farmem then copies into the
 * frame. For a 64 KiB page that is an allocation, a gather and a second copy on the fault path.
 * Against the same ws echo server the `ws` package client's round trip is 1.1–1.4x this one's at
 * 4 KiB and 1.3–2.2x at 64 KiB (`farmem bench faultpath`, `wsPackageOverRawWsP50`, 2026-12-01;
 * docs/architecture.md, "A ws client that streams"). The server streams the same way (ws-peer.ts).
 *
 * What it implements of the RFC, all a client of a farmem server meets: the opening handshake
 * (GET + Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Accept checked); server frames as the deframer
 * (host/protocol/ws-frames.ts) reads them, ping answered with pong, close answered and then FIN; a
 * protocol error is `invalid`, after which nothing more is delivered; client frames masked with
 * the all-zero key (see transport.ts `zeroMask`), one write each.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { acceptKey, closePayload, writeFrame, WsDeframer, WsFrameError, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG } from '../../protocol/ws-frames.js';
import { closeGracefully, socketHost, StreamReads, type DialOptions, type LinkEvents, type LinkSocket } from './transport.js';

/** The handshake's response head may not exceed this. */
const MAX_RESPONSE_HEAD = 16 * 1024;
/** The longest header of a server frame (unmasked, 8-byte length). */
const MAX_SERVER_HEADER = 10;

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

  /**
   * Where the next read goes (StreamReads): the link's plan, within this ws frame. A view the link
   * asks for is cut to the frame's payload left (a read cannot skip a ws header); before a frame's
   * header a header-sized read grows by the longest server header (10 bytes).
   */
  const plan = (): Uint8Array | number => {
    if (head !== null || ended) return 0;
    const t = on.nextRead?.() ?? 0;
    if (typeof t === 'number') return t > 0 && deframer.atFrameStart ? t + MAX_SERVER_HEADER : t;
    const left = deframer.dataLeft;
    if (left === 0) return 0;
    return t.length > left ? t.subarray(0, left) : t;
  };
  const reads = new StreamReads(plan, (chunk) => {
    if (ended) return;
    try {
      if (head === null) deframer.push(chunk);
      else handshakeIn(chunk);
    } catch (err) {
      ended = true;
      if (err instanceof WsFrameError) on.invalid(err.message);
      else sock.destroy(err as Error);
    }
  }, (n) => {
    deframer.skipped(n);
    on.direct!(n);
  });
  const sock = net.connect({ host, port, noDelay: true, onread: reads.onread });
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
    writeFrame(sock, opcode, true, payload, rest);
  }

  function sendClose(code: number, reason: string): void {
    closeSent = true;
    sendFrame(OP_CLOSE, closePayload(code, reason));
  }

  return {
    stream: true,
    get open() {
      return head === null && !ended && !sock.destroyed && sock.writable;
    },
    send(bytes, rest) {
      sendFrame(OP_BINARY, bytes, rest);
    },
    abort() {
      sock.destroy();
    },
    close(code, reason) {
      return closeGracefully(sock, () => {
        if (head === null && !closeSent && sock.writable) sendClose(code, reason);
        else sock.end();
      });
    },
  };
}
