/**
 * @fileoverview `MemoryServer`: a farmem memory server over `ws`. It owns the connection life
 * cycle (HELLO first, token check, namespace binding), dispatches decoded frames to the slab arena
 * (`arena.ts`), answers every request in order, applies backpressure to clients that do not read
 * their replies, and shuts down gracefully. The protocol contract is in `host/protocol/index.ts`.
 *
 * Hostile input never takes the server down: every frame error becomes an ERROR reply (and a close
 * with the status name as reason for connection-level errors), is counted, and is published on the
 * `farmem:server:error` diagnostics channel. Nothing is logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { FarmemError, OptionError } from '../errors.js';
import {
  initReadOk, decode, encodeError, encodeHelloOk, encodeOk, encodeStatsOk, encodeWriteOk, FrameError, FrameReader,
  peekOp, peekId, readOkBytes, DEFAULT_LIMITS, Op, PROTOCOL_VERSION, Status, STATUS_NAMES,
  type DecodeContext, type Hello, type NamespaceStats, type StatsOk,
} from '../protocol/index.js';
import { MAX_PAGE_SIZE, MIN_PAGE_SIZE } from '../layout.js';
import { Namespace, SlabArena } from './arena.js';
import { ReplyPool } from './reply-pool.js';

/** Published for every refused frame, failed connection and internal error. Subscribe to log. */
export const serverErrorChannel = diagnostics_channel.channel('farmem:server:error');

export interface ServerErrorEvent {
  readonly server: MemoryServer;
  readonly remote: string;
  readonly status: Status;
  readonly message: string;
  readonly error?: unknown;
}

export interface MemoryServerOptions {
  /** Interface to listen on. Loopback by default: exposing a memory server is a deliberate choice. */
  host?: string;
  /** 0 picks a free port; `listen()` returns the bound one. */
  port?: number;
  /** Bytes of page data the server may hold over all namespaces (required). */
  capacity: number;
  /** Shared secret every HELLO must carry (required, non-empty). */
  token: string;
  /** Largest ws message and frame, in bytes: bounds the memory one request can pin. */
  maxPayload?: number;
  /** Most pages one READ/WRITE/FREE may list. */
  maxPagesPerRequest?: number;
  /** Slab size (a power of two): page slots are allocated this many bytes at a time. */
  slabBytes?: number;
  /** Most simultaneous connections; more are refused at the HTTP upgrade (503). */
  maxConnections?: number;
  /** Queued reply bytes per connection above which the server stops reading that connection. */
  maxBufferedBytes?: number;
  /** A connection that has not completed HELLO after this long is closed. */
  helloTimeoutMs?: number;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  maxPayload: DEFAULT_LIMITS.maxFrameBytes,
  maxPagesPerRequest: DEFAULT_LIMITS.maxPagesPerRequest,
  // 4 MiB slabs: 1024 slots of 4 KiB; small enough that a lightly used server stays small.
  slabBytes: 4 * 1024 * 1024,
  maxConnections: 1024,
  // Four full-size replies in flight per connection keeps the socket busy without unbounded growth.
  maxBufferedBytes: 64 * 1024 * 1024,
  helloTimeoutMs: 10_000,
};

const KNOWN_OPTIONS = new Set(['host', 'port', 'capacity', 'token', ...Object.keys(DEFAULTS)]);

/**
 * Replies up to this size (a 16 KiB page plus header) are gathered into one ws message per incoming
 * message; larger ones are sent alone, since copying them costs more than a message header saves.
 */
const COALESCE_MAX_FRAME = 16 * 1024 + 16;
/** A gathered reply message never exceeds this size (nor maxPayload); it leaves at the end of the incoming message. */
const COALESCE_MAX_MESSAGE = 256 * 1024;

/** Statuses after which the connection stays usable; every other status closes it. */
function isRequestLevel(status: Status): boolean {
  return status === Status.OUT_OF_CAPACITY || status === Status.TOO_LARGE;
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new OptionError(`"${name}" must be an integer between ${min} and ${max}, got ${String(v)}`);
  }
  return v;
}

function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Live server counters; `stats` snapshots them. */
interface Counters {
  reads: number;
  writes: number;
  frees: number;
  errors: number;
  pagesRead: number;
  pagesWritten: number;
}

export class MemoryServer {
  readonly host: string;
  readonly capacity: number;
  /** Random per process; sent in HELLO_OK so clients can tell a restarted (emptied) server. */
  readonly instance: string = randomBytes(8).toString('hex');
  readonly limits: DecodeContext;
  readonly #port: number;
  readonly #tokenDigest: Buffer;
  readonly #opts: Required<Omit<MemoryServerOptions, 'token' | 'capacity'>>;
  readonly #arena: SlabArena;
  // 64 MiB of recycled reply buffers, each ≤ 1 MiB (+ header): covers 64 in-flight 1 MiB reads.
  readonly replyPool = new ReplyPool(64 * 1024 * 1024, 1024 * 1024 + 64);
  readonly #namespaces = new Map<string, Namespace>();
  readonly #connections = new Set<Connection>();
  readonly #counters: Counters = { reads: 0, writes: 0, frees: 0, errors: 0, pagesRead: 0, pagesWritten: 0 };
  #wss: WebSocketServer | null = null;
  #closing = false;
  #boundPort = 0;

  constructor(options: MemoryServerOptions) {
    if (options === null || typeof options !== 'object') throw new OptionError('MemoryServer options must be an object');
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new OptionError(`Invalid option in MemoryServer options: "${key}"`);
    }
    const o = { ...DEFAULTS, ...options };
    if (typeof o.token !== 'string' || o.token.length === 0) throw new OptionError('"token" must be a non-empty string: every client must present it in HELLO');
    if (typeof o.host !== 'string' || o.host.length === 0) throw new OptionError('"host" must be a non-empty string');
    checkInt('port', o.port, 0, 65535);
    checkInt('capacity', o.capacity, MIN_PAGE_SIZE, Number.MAX_SAFE_INTEGER);
    checkInt('maxPayload', o.maxPayload, 4096, 0xffff_ffff);
    checkInt('maxPagesPerRequest', o.maxPagesPerRequest, 1, 0xffff_ffff);
    checkInt('slabBytes', o.slabBytes, MAX_PAGE_SIZE, 1 << 30);
    if ((o.slabBytes & (o.slabBytes - 1)) !== 0) throw new OptionError(`"slabBytes" must be a power of two, got ${o.slabBytes}`);
    checkInt('maxConnections', o.maxConnections, 1, 1 << 20);
    checkInt('maxBufferedBytes', o.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER);
    checkInt('helloTimeoutMs', o.helloTimeoutMs, 1, 3_600_000);
    this.host = o.host;
    this.#port = o.port;
    this.capacity = o.capacity;
    this.#tokenDigest = tokenDigest(o.token);
    this.#opts = {
      host: o.host, port: o.port, maxPayload: o.maxPayload, maxPagesPerRequest: o.maxPagesPerRequest, slabBytes: o.slabBytes,
      maxConnections: o.maxConnections, maxBufferedBytes: o.maxBufferedBytes, helloTimeoutMs: o.helloTimeoutMs,
    };
    this.limits = { pageSize: 0, maxFrameBytes: o.maxPayload, maxPagesPerRequest: o.maxPagesPerRequest };
    this.#arena = new SlabArena(o.capacity, o.slabBytes);
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.#wss) throw new FarmemError('FM_ERR_SERVER_STATE', 'MemoryServer.listen() was already called');
    const wss = new WebSocketServer({
      host: this.host,
      port: this.#port,
      maxPayload: this.#opts.maxPayload,
      perMessageDeflate: false,
      clientTracking: false,
      verifyClient: (_info, cb) => {
        if (this.#closing) cb(false, 503, 'server shutting down');
        else if (this.#connections.size >= this.#opts.maxConnections) cb(false, 503, 'too many connections');
        else cb(true);
      },
    });
    this.#wss = wss;
    wss.on('connection', (ws, req) => {
      const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      const conn = new Connection(this, ws, remote);
      this.#connections.add(conn);
      ws.on('close', () => {
        this.#connections.delete(conn);
        conn.detach();
      });
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    wss.on('error', (err) => this.reportError('-', Status.INTERNAL, `listening socket failed: ${err.message}`, err));
    this.#boundPort = (wss.address() as AddressInfo).port;
    return this.#boundPort;
  }

  get port(): number {
    return this.#boundPort;
  }

  get url(): string {
    return `ws://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.#boundPort}`;
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** A snapshot of the counters, capacity and namespaces (what STATS answers). */
  get stats(): Omit<StatsOk, 'op' | 'id'> {
    const all: NamespaceStats[] = [];
    for (const ns of this.#namespaces.values()) all.push({ name: ns.name, pageSize: ns.pageSize, pages: ns.pages });
    all.sort((a, b) => b.pages * b.pageSize - a.pages * a.pageSize);
    return {
      capacityBytes: this.capacity,
      usedBytes: this.#arena.usedBytes,
      slabBytes: this.#arena.allocatedBytes,
      connections: this.#connections.size,
      ...this.#counters,
      namespaceCount: all.length,
      namespaces: all,
    };
  }

  /**
   * Stops accepting connections, closes open ones (code 1001) and resolves once all are closed.
   * Requests already received are answered first; requests after this are answered SHUTTING_DOWN.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const wss = this.#wss;
    const closed: Promise<void>[] = [];
    for (const conn of this.#connections) closed.push(conn.shutdown());
    await Promise.all(closed);
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  /* ── used by Connection ───────────────────────────────────────────────────────────────────── */

  get counters(): Counters {
    return this.#counters;
  }

  get arena(): SlabArena {
    return this.#arena;
  }

  get opts(): Readonly<Required<Omit<MemoryServerOptions, 'token' | 'capacity'>>> {
    return this.#opts;
  }

  tokenMatches(token: string): boolean {
    return timingSafeEqual(tokenDigest(token), this.#tokenDigest);
  }

  /** Binds a connection to namespace `name` with `pageSize`; null on a page-size mismatch. */
  attach(name: string, pageSize: number): Namespace | null {
    let ns = this.#namespaces.get(name);
    if (ns && ns.pageSize !== pageSize) return null;
    if (!ns) {
      ns = new Namespace(name, this.#arena.pool(pageSize));
      this.#namespaces.set(name, ns);
    }
    ns.connections++;
    return ns;
  }

  existingPageSize(name: string): number {
    return this.#namespaces.get(name)?.pageSize ?? 0;
  }

  /** Drops a namespace that holds no pages and has no connections. */
  maybeDrop(ns: Namespace): void {
    if (ns.connections === 0 && ns.pages === 0 && this.#namespaces.get(ns.name) === ns) this.#namespaces.delete(ns.name);
  }

  reportError(remote: string, status: Status, message: string, error?: unknown): void {
    this.#counters.errors++;
    if (serverErrorChannel.hasSubscribers) {
      const event: ServerErrorEvent = { server: this, remote, status, message, error };
      serverErrorChannel.publish(event);
    }
  }
}

/** Close codes: 1008 for policy (auth, order), 1002 for broken framing, 1001 for shutdown. */
function closeCode(status: Status): number {
  return status === Status.BAD_TOKEN || status === Status.NOT_HELLO || status === Status.PAGE_SIZE_MISMATCH || status === Status.VERSION_MISMATCH
    ? 1008
    : status === Status.SHUTTING_DOWN ? 1001 : 1002;
}

/** One client connection: its handshake state, namespace and backpressure. */
class Connection {
  readonly #server: MemoryServer;
  readonly #ws: WebSocket;
  readonly #remote: string;
  readonly #reader: FrameReader;
  #ctx: DecodeContext;
  #ns: Namespace | null = null;
  #closing = false;
  #paused = false;
  #helloTimer: NodeJS.Timeout | null;
  readonly #closed: Promise<void>;
  readonly #onSent: () => void;
  /** Replies handed to ws, oldest first (null: not recycled); ws calls back in send order. */
  #sent: Array<Uint8Array | null> = [];
  #sentHead = 0;
  /** Replies gathered while one incoming message is handled (see #send). */
  #batching = false;
  readonly #out: Uint8Array[] = [];
  readonly #outRecycle: boolean[] = [];
  #outBytes = 0;
  readonly #onFrame: (frame: Uint8Array) => void;

  constructor(server: MemoryServer, ws: WebSocket, remote: string) {
    this.#server = server;
    this.#ws = ws;
    this.#remote = remote;
    this.#ctx = server.limits;
    this.#reader = new FrameReader(server.limits);
    this.#closed = new Promise((resolve) => ws.once('close', () => resolve()));
    this.#onSent = () => {
      const buf = this.#sent[this.#sentHead];
      this.#sent[this.#sentHead++] = null;
      if (this.#sentHead === this.#sent.length) {
        this.#sent.length = 0;
        this.#sentHead = 0;
      } else if (this.#sentHead >= 1024) {
        this.#sent = this.#sent.slice(this.#sentHead);
        this.#sentHead = 0;
      }
      if (buf) this.#server.replyPool.give(buf);
      if (this.#paused && this.#ws.bufferedAmount <= this.#server.opts.maxBufferedBytes / 2) {
        this.#paused = false;
        this.#ws.resume();
      }
    };
    this.#onFrame = (frame) => this.#frame(frame);
    this.#helloTimer = setTimeout(() => {
      this.#fail(new FrameError(Status.NOT_HELLO, `no HELLO within ${server.opts.helloTimeoutMs} ms`));
    }, server.opts.helloTimeoutMs);
    this.#helloTimer.unref();
    ws.on('message', (data, isBinary) => this.#message(data as Buffer, isBinary));
    ws.on('error', (err) => server.reportError(remote, Status.MALFORMED_FRAME, `connection error: ${err.message}`, err));
  }

  /** Called once the socket closed: releases the namespace binding. */
  detach(): void {
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    this.#closing = true;
    const ns = this.#ns;
    this.#ns = null;
    if (ns) {
      ns.connections--;
      this.#server.maybeDrop(ns);
    }
  }

  shutdown(): Promise<void> {
    this.#closing = true;
    this.#ws.close(1001, 'server shutting down');
    // A peer that does not answer the close handshake is cut off after a short grace period.
    const t = setTimeout(() => this.#ws.terminate(), 2000);
    t.unref();
    return this.#closed.finally(() => clearTimeout(t));
  }

  #message(data: Buffer, isBinary: boolean): void {
    if (this.#closing) return;
    if (!isBinary) {
      this.#fail(new FrameError(Status.MALFORMED_FRAME, 'malformed frame: text message (the protocol is binary)'));
      return;
    }
    this.#batching = true;
    try {
      this.#reader.push(data, this.#onFrame);
      if (this.#reader.buffered !== 0 && !this.#closing) {
        throw new FrameError(Status.MALFORMED_FRAME, `malformed frame: message ended inside a frame (${this.#reader.buffered} bytes of it)`);
      }
    } catch (err) {
      // Errors from the reader itself (bad length field): the stream cannot be resynchronised.
      this.#fail(err);
    } finally {
      this.#batching = false;
      this.#flushOut();
    }
  }

  #frame(frame: Uint8Array): void {
    if (this.#closing) return;
    try {
      this.#handle(frame);
    } catch (err) {
      if (err instanceof FrameError && isRequestLevel(err.status)) {
        this.#server.reportError(this.#remote, err.status, err.message, err);
        this.#send(encodeError(err.requestId, err.status, err.message));
      } else {
        this.#fail(err);
      }
    }
  }

  #handle(frame: Uint8Array): void {
    const server = this.#server;
    const op = peekOp(frame);
    if (server.closing) throw new FrameError(Status.SHUTTING_DOWN, 'the server is shutting down', peekId(frame));
    if (this.#ns === null) {
      if (op !== Op.HELLO) throw new FrameError(Status.NOT_HELLO, `op 0x${op.toString(16)} before HELLO: send HELLO first`, peekId(frame));
      this.#hello(decode(frame, this.#ctx) as Hello);
      return;
    }
    const m = decode(frame, this.#ctx);
    const ns = this.#ns;
    const c = server.counters;
    switch (m.op) {
      case Op.READ: {
        const count = m.pages.length;
        if (readOkBytes(count, ns.pageSize) > this.#ctx.maxFrameBytes) {
          throw new FrameError(Status.TOO_LARGE, `READ of ${count} pages of ${ns.pageSize} bytes needs a reply larger than the ${this.#ctx.maxFrameBytes}-byte frame limit`, m.id);
        }
        const frame = server.replyPool.take(readOkBytes(count, ns.pageSize));
        server.arena.read(ns, m.pages, initReadOk(frame, m.id, count));
        c.reads++;
        c.pagesRead += count;
        this.#send(frame, true);
        return;
      }
      case Op.WRITE: {
        if (!server.arena.write(ns, m.pages, m.data)) {
          const a = server.arena;
          throw new FrameError(Status.OUT_OF_CAPACITY,
            `WRITE of ${m.pages.length} pages does not fit: ${a.usedBytes} of ${a.capacityBytes} bytes used; nothing of this WRITE was stored`, m.id);
        }
        c.writes++;
        c.pagesWritten += m.pages.length;
        this.#send(encodeWriteOk(m.id, m.pages.length));
        return;
      }
      case Op.FREE:
        server.arena.free(ns, m.pages);
        c.frees++;
        this.#send(encodeOk(m.id));
        return;
      case Op.STATS:
        this.#send(encodeStatsOk({ id: m.id, ...server.stats }));
        return;
      case Op.HELLO:
        throw new FrameError(Status.NOT_HELLO, 'a second HELLO on one connection', m.id);
      default:
        throw new FrameError(Status.UNKNOWN_OP, `op ${m.op} is a reply, not a request`, m.id);
    }
  }

  #hello(h: Hello): void {
    const server = this.#server;
    if (h.version !== PROTOCOL_VERSION) {
      throw new FrameError(Status.VERSION_MISMATCH, `protocol version ${h.version} is not supported; this server speaks version ${PROTOCOL_VERSION}`, h.id);
    }
    if (!server.tokenMatches(h.token)) throw new FrameError(Status.BAD_TOKEN, 'bad token', h.id);
    const ps = h.pageSize;
    if (ps < MIN_PAGE_SIZE || ps > MAX_PAGE_SIZE || (ps & (ps - 1)) !== 0) {
      throw new FrameError(Status.PAGE_SIZE_MISMATCH, `page size ${ps} is not a power of two between ${MIN_PAGE_SIZE} and ${MAX_PAGE_SIZE}`, h.id);
    }
    const ns = server.attach(h.namespace, ps);
    if (!ns) {
      throw new FrameError(Status.PAGE_SIZE_MISMATCH,
        `namespace "${h.namespace}" holds pages of ${server.existingPageSize(h.namespace)} bytes, not ${ps}`, h.id);
    }
    this.#ns = ns;
    this.#ctx = { ...server.limits, pageSize: ps };
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    this.#send(encodeHelloOk({
      id: h.id, version: PROTOCOL_VERSION, pageSize: ps, maxFrameBytes: this.#ctx.maxFrameBytes,
      maxPagesPerRequest: this.#ctx.maxPagesPerRequest, instance: server.instance,
    }));
  }

  /** Sends a reply; a `recycle`d buffer goes back to the reply pool once written to the socket. */
  /**
   * Sends a reply. While a message's frames are handled, small replies are gathered and leave as one
   * ws message (one syscall, one ws header) once the message is done; large ones go out at once.
   */
  #send(frame: Uint8Array, recycle = false): void {
    if (this.#batching && frame.length <= COALESCE_MAX_FRAME) {
      // A gathered message stays within the peer's message limit (our maxPayload).
      if (this.#outBytes + frame.length > Math.min(COALESCE_MAX_MESSAGE, this.#server.opts.maxPayload)) this.#flushOut();
      this.#out.push(frame);
      this.#outRecycle.push(recycle);
      this.#outBytes += frame.length;
      return;
    }
    this.#flushOut();
    this.#write(frame, recycle);
  }

  #flushOut(): void {
    const n = this.#out.length;
    if (n === 0) return;
    if (n === 1) {
      this.#write(this.#out[0]!, this.#outRecycle[0]!);
    } else {
      const pool = this.#server.replyPool;
      const all = Buffer.allocUnsafe(this.#outBytes);
      let o = 0;
      for (let i = 0; i < n; i++) {
        const f = this.#out[i]!;
        all.set(f, o);
        o += f.length;
        if (this.#outRecycle[i]) pool.give(f);
      }
      this.#write(all, false);
    }
    this.#out.length = 0;
    this.#outRecycle.length = 0;
    this.#outBytes = 0;
  }

  #write(frame: Uint8Array, recycle: boolean): void {
    const ws = this.#ws;
    this.#sent.push(recycle ? frame : null);
    ws.send(frame, this.#onSent);
    if (!this.#paused && ws.bufferedAmount > this.#server.opts.maxBufferedBytes) {
      this.#paused = true;
      ws.pause();
    }
  }

  /** Answers ERROR (when the socket is still open) and closes with the status name as reason. */
  #fail(err: unknown): void {
    if (this.#closing) return;
    this.#closing = true;
    const status = err instanceof FrameError ? err.status : Status.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    const id = err instanceof FrameError ? err.requestId : 0;
    this.#server.reportError(this.#remote, status, message, err);
    if (this.#ws.readyState !== this.#ws.OPEN) return;
    this.#flushOut(); // replies to earlier frames go first
    this.#ws.send(encodeError(id, status, message));
    this.#ws.close(closeCode(status), `${STATUS_NAMES[status] ?? 'ERROR'}: ${message}`.slice(0, 120));
    const t = setTimeout(() => this.#ws.terminate(), 2000);
    t.unref();
    this.#ws.once('close', () => clearTimeout(t));
  }
}
