/**
 * @fileoverview `MemoryServer`: a farmem memory server over WebSocket (`ws-peer.ts`), and optionally plain TCP
 * (`tcpPort`, `tcp-listener.ts`: the same protocol and the same `Connection`). It owns what
 * connections share: the listening sockets, the tokens, the namespaces and the slab arena (`arena.ts`), the send budget
 * (`budget.ts`), the limits on connections without HELLO (`admission.ts`), counters and shutdown.
 * Each connection's handshake, queue and replies are in `connection.ts`. The protocol contract is
 * in `host/protocol/index.ts`; what is bounded and by how much is in docs/server.md.
 *
 * Hostile input never takes the server down: every frame error becomes an ERROR reply (and a close
 * with the status name as reason for connection-level errors), is counted, and is published on the
 * `farmem:server:error` diagnostics channel. Nothing is logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FarmemError, OptionError } from '../errors.js';
import { DEFAULT_LIMITS, Status, type DecodeContext, type NamespaceStats, type StatsOk } from '../protocol/index.js';
import { MIN_PAGE_SIZE, MAX_PAGE_SIZE } from '../layout.js';
import { serverErrorChannel } from '../stats/channels.js';
import { Admission } from './admission.js';
import { Namespace, newCounters, SlabArena, type Counters } from './arena.js';
import { SendBudget } from './budget.js';
import { Connection, replyHeadroom } from './connection.js';
import type { PeerSocket } from './peer-socket.js';
import { TcpListener } from './tcp-listener.js';
import { upgradeToWs } from './ws-peer.js';
import { ReplyPool } from './reply-pool.js';

/** Published for every refused frame, failed connection and internal error. Subscribe to log. */
/** `farmem:server:error` (named in stats/channels.ts with farmem's other channels). */
export { serverErrorChannel };

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
  /**
   * Also listen for `tcp://` clients on this port (same host; 0 picks a free one, see `tcpPort`
   * after `listen()`); null (default) listens on ws only.
   */
  tcpPort?: number | null;
  /** Bytes of page data the server may hold over all namespaces (required). */
  capacity: number;
  /** Shared secret every HELLO must carry (required, non-empty). */
  token: string;
  /** A second secret: a HELLO carrying it also sees every namespace in STATS (and may drain). */
  adminToken?: string;
  /** Largest ws message and frame, in bytes: bounds the memory one request can pin. */
  maxPayload?: number;
  /** Most pages one READ/WRITE/FREE may list. */
  maxPagesPerRequest?: number;
  /** Slab size (a power of two): page slots are allocated this many bytes at a time. */
  slabBytes?: number;
  /** Most simultaneous connections past HELLO; more are refused at the HTTP upgrade (503). */
  maxConnections?: number;
  /** Reply bytes one connection may hold unsent before the server stops handling its requests. */
  maxBufferedBytes?: number;
  /** Reply bytes all connections together may hold unsent (≥ maxPayload). */
  maxTotalBufferedBytes?: number;
  /** A connection whose unsent replies make no progress for this long is cut off. */
  slowReaderMs?: number;
  /** A connection that has not completed HELLO after this long is closed. */
  helloTimeoutMs?: number;
  /** Connections without HELLO per remote address; a new one beyond closes the oldest. */
  maxUnauthenticatedPerAddress?: number;
  /** Connections without HELLO overall; a new one beyond closes the oldest. */
  maxUnauthenticated?: number;
  /** How long a drain waits for clients to move their pages away before `drained` resolves anyway. */
  drainTimeoutMs?: number;
}

const DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  tcpPort: null as number | null,
  maxPayload: DEFAULT_LIMITS.maxFrameBytes,
  maxPagesPerRequest: DEFAULT_LIMITS.maxPagesPerRequest,
  // 4 MiB slabs: 1024 slots of 4 KiB; small enough that a lightly used server stays small.
  slabBytes: 4 * 1024 * 1024,
  maxConnections: 1024,
  // 16 MiB: a loopback link (~1 GB/s, ~50 µs RTT) needs under 1 MiB in flight to stay busy; this
  // leaves room for 256 pipelined 64 KiB reads while 16 non-reading clients cannot exhaust the total.
  maxBufferedBytes: 16 * 1024 * 1024,
  maxTotalBufferedBytes: 256 * 1024 * 1024,
  // A reading client drains a full budget in well under a second even over a slow link.
  slowReaderMs: 10_000,
  helloTimeoutMs: 5000,
  // A client opens one connection per server; 16 leaves room for several clients behind one NAT.
  maxUnauthenticatedPerAddress: 16,
  maxUnauthenticated: 256,
  // Clients move a slab per round trip or so; a minute covers GiBs over loopback.
  drainTimeoutMs: 60_000,
};

const KNOWN_OPTIONS = new Set(['host', 'port', 'capacity', 'token', 'adminToken', ...Object.keys(DEFAULTS)]);

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new OptionError(`"${name}" must be an integer between ${min} and ${max}, got ${String(v)}`);
  }
  return v;
}

/**
 * Tokens are compared as SHA-256 digests with `timingSafeEqual` (equal lengths, constant time). The
 * decoder is injective (host/protocol/codec.ts), so equal strings means equal bytes on the wire.
 */
function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export class MemoryServer {
  readonly host: string;
  readonly capacity: number;
  /** Random per process; sent in HELLO_OK so clients can tell a restarted (emptied) server. */
  readonly instance: string = randomBytes(8).toString('hex');
  readonly limits: DecodeContext;
  readonly #port: number;
  readonly #tokenDigest: Buffer;
  readonly #adminDigest: Buffer | null;
  readonly #opts: Required<Omit<MemoryServerOptions, 'token' | 'capacity' | 'adminToken'>>;
  readonly #arena: SlabArena;
  // 64 MiB of recycled reply buffers, each ≤ 1 MiB (+ header): covers 64 in-flight 1 MiB reads.
  readonly replyPool = new ReplyPool(64 * 1024 * 1024, 1024 * 1024 + 64);
  /** Unsent reply bytes, per connection and in total. */
  readonly budget: SendBudget;
  readonly #admission: Admission;
  readonly #namespaces = new Map<string, Namespace>();
  readonly #connections = new Set<Connection>();
  #authenticated = 0;
  readonly #counters: Counters = newCounters();
  #http: HttpServer | null = null;
  #tcp: TcpListener | null = null;
  #boundTcpPort = 0;
  #progressTimer: NodeJS.Timeout | null = null;
  #closing = false;
  #boundPort = 0;
  #drainDeadline = 0;
  #drainTimer: NodeJS.Timeout | null = null;
  #resolveDrained!: () => void;
  /** Resolves once a drain finished: every page moved away (or freed), or the drain deadline passed. */
  readonly drained: Promise<void>;

  constructor(options: MemoryServerOptions) {
    if (options === null || typeof options !== 'object') throw new OptionError('MemoryServer options must be an object');
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw new OptionError(`Invalid option in MemoryServer options: "${key}"`);
    }
    const o = { ...DEFAULTS, ...options };
    if (typeof o.token !== 'string' || o.token.length === 0) throw new OptionError('"token" must be a non-empty string: every client must present it in HELLO');
    if (o.adminToken !== undefined && (typeof o.adminToken !== 'string' || o.adminToken.length === 0 || o.adminToken === o.token)) {
      throw new OptionError('"adminToken" must be a non-empty string different from "token"');
    }
    if (typeof o.host !== 'string' || o.host.length === 0) throw new OptionError('"host" must be a non-empty string');
    checkInt('port', o.port, 0, 65535);
    if (o.tcpPort !== null) checkInt('tcpPort', o.tcpPort, 0, 65535);
    checkInt('capacity', o.capacity, MIN_PAGE_SIZE, Number.MAX_SAFE_INTEGER);
    checkInt('maxPayload', o.maxPayload, 4096, 0xffff_ffff);
    checkInt('maxPagesPerRequest', o.maxPagesPerRequest, 1, 0xffff_ffff);
    checkInt('slabBytes', o.slabBytes, MAX_PAGE_SIZE, 1 << 30);
    if ((o.slabBytes & (o.slabBytes - 1)) !== 0) throw new OptionError(`"slabBytes" must be a power of two, got ${o.slabBytes}`);
    checkInt('maxConnections', o.maxConnections, 1, 1 << 20);
    checkInt('maxBufferedBytes', o.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER);
    // One largest reply must always fit, or a connection could wait for ever.
    checkInt('maxTotalBufferedBytes', o.maxTotalBufferedBytes, Math.max(o.maxPayload, o.maxBufferedBytes), Number.MAX_SAFE_INTEGER);
    checkInt('slowReaderMs', o.slowReaderMs, 10, 3_600_000);
    checkInt('helloTimeoutMs', o.helloTimeoutMs, 1, 3_600_000);
    checkInt('maxUnauthenticatedPerAddress', o.maxUnauthenticatedPerAddress, 1, 1 << 20);
    checkInt('maxUnauthenticated', o.maxUnauthenticated, o.maxUnauthenticatedPerAddress, 1 << 20);
    checkInt('drainTimeoutMs', o.drainTimeoutMs, 1, 24 * 3_600_000);
    this.host = o.host;
    this.#port = o.port;
    this.capacity = o.capacity;
    this.#tokenDigest = tokenDigest(o.token);
    this.#adminDigest = o.adminToken === undefined ? null : tokenDigest(o.adminToken);
    this.#opts = {
      host: o.host, port: o.port, tcpPort: o.tcpPort, maxPayload: o.maxPayload, maxPagesPerRequest: o.maxPagesPerRequest, slabBytes: o.slabBytes,
      maxConnections: o.maxConnections, maxBufferedBytes: o.maxBufferedBytes, maxTotalBufferedBytes: o.maxTotalBufferedBytes,
      slowReaderMs: o.slowReaderMs, helloTimeoutMs: o.helloTimeoutMs,
      maxUnauthenticatedPerAddress: o.maxUnauthenticatedPerAddress, maxUnauthenticated: o.maxUnauthenticated,
      drainTimeoutMs: o.drainTimeoutMs,
    };
    this.drained = new Promise((resolve) => { this.#resolveDrained = resolve; });
    this.limits = { pageSize: 0, maxFrameBytes: o.maxPayload, maxPagesPerRequest: o.maxPagesPerRequest };
    this.#arena = new SlabArena(o.capacity, o.slabBytes, replyHeadroom);
    this.budget = new SendBudget(o.maxBufferedBytes, o.maxTotalBufferedBytes);
    this.#admission = new Admission(o.maxUnauthenticatedPerAddress, o.maxUnauthenticated);
  }

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    if (this.#http) throw new FarmemError('FM_ERR_SERVER_STATE', 'MemoryServer.listen() was already called');
    // Our own HTTP server, so a socket that never finishes its upgrade request is dropped at the HELLO deadline.
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      res.end('farmem memory server: WebSocket connections only\n');
    });
    http.headersTimeout = this.#opts.helloTimeoutMs;
    http.requestTimeout = this.#opts.helloTimeoutMs;
    this.#http = http;
    http.on('upgrade', (req, duplex, head: Buffer) => {
      const socket = duplex as Socket;
      const peer = upgradeToWs(req, socket, head, this.#opts.maxPayload, () => this.#refusal()?.[1] ?? null);
      if (peer !== null) this.#accept(peer, socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(this.#port, this.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    http.on('error', (err) => this.reportError('-', Status.INTERNAL, `listening socket failed: ${err.message}`, err));
    this.#boundPort = (http.address() as AddressInfo).port;
    if (this.#opts.tcpPort !== null) {
      const o = this.#opts;
      // Past HELLO, not yet closed, and refused ones on their way out: a hard cap on open sockets.
      const tcp = new TcpListener(o.maxConnections + o.maxUnauthenticated + 64, (peer, address, port) => {
        const refused = this.#refusal();
        if (refused === null) this.#accept(peer, address, port);
        else peer.refuse(refused[0], refused[1]);
      });
      this.#tcp = tcp;
      this.#boundTcpPort = await tcp.listen(o.tcpPort!, this.host, (err) => this.reportError('-', Status.INTERNAL, `tcp listening socket failed: ${err.message}`, err));
    }
    const tick = Math.max(5, Math.min(1000, Math.floor(this.#opts.slowReaderMs / 4)));
    this.#progressTimer = setInterval(() => {
      const now = Date.now();
      for (const c of this.#connections) c.checkProgress(now);
    }, tick);
    this.#progressTimer.unref();
    return this.#boundPort;
  }

  /** Why a new connection is refused now (status, message), or null to accept it. */
  #refusal(): [Status, string] | null {
    if (this.#closing) return [Status.SHUTTING_DOWN, 'server shutting down'];
    if (this.#authenticated >= this.#opts.maxConnections) return [Status.TOO_MANY_CONNECTIONS, 'too many connections'];
    return null;
  }

  /** A new client socket, ws or tcp: one `Connection`, unauthenticated until its HELLO. */
  #accept(socket: PeerSocket, address: string, port: number): void {
    const conn = new Connection(this, socket, address, port);
    this.#connections.add(conn);
    socket.on('close', () => {
      this.#connections.delete(conn);
      this.#admission.remove(conn);
      if (conn.authenticated) this.#authenticated--;
      conn.detach();
      this.checkDrained();
    });
    this.#admission.add(conn);
  }

  get port(): number {
    return this.#boundPort;
  }

  /** The bound tcp:// port, or 0 when the server listens on ws only. */
  get tcpPort(): number {
    return this.#boundTcpPort;
  }

  get url(): string {
    return `ws://${this.#hostPart()}:${this.#boundPort}`;
  }

  /** `tcp://host:port`, or null when the server listens on ws only. */
  get tcpUrl(): string | null {
    return this.#tcp === null ? null : `tcp://${this.#hostPart()}:${this.#boundTcpPort}`;
  }

  #hostPart(): string {
    return this.host.includes(':') ? `[${this.host}]` : this.host;
  }

  get closing(): boolean {
    return this.#closing;
  }

  get draining(): boolean {
    return this.#drainDeadline !== 0;
  }

  /** Milliseconds left before a drain gives up waiting for clients. */
  get drainLeftMs(): number {
    return Math.max(0, this.#drainDeadline - Date.now());
  }

  /**
   * Starts draining (idempotent): every connected client, and every one that connects later, gets
   * a DRAINING notice and moves its slabs to other servers; `drained` resolves when the server holds
   * no page any more, or after `timeoutMs`. Requests are still served meanwhile (clients read their
   * pages back from here while they move them).
   */
  drain(timeoutMs = this.#opts.drainTimeoutMs): Promise<void> {
    if (this.#drainDeadline === 0) {
      this.#drainDeadline = Date.now() + timeoutMs;
      this.#drainTimer = setTimeout(() => this.#resolveDrained(), timeoutMs);
      this.#drainTimer.unref();
      for (const c of this.#connections) c.notifyDraining();
      this.checkDrained();
    }
    return this.drained;
  }

  /**
   * Called after pages were freed and connections closed: a draining server is done when it is
   * empty, or when no client is connected any more (nobody is left to move the rest).
   */
  checkDrained(): void {
    if (this.#drainDeadline !== 0 && (this.#arena.usedBytes === 0 || this.#authenticated === 0)) {
      if (this.#drainTimer) clearTimeout(this.#drainTimer);
      this.#resolveDrained();
    }
  }

  /** Connections open now, and those of them without HELLO. */
  get connectionCount(): { open: number; unauthenticated: number } {
    return { open: this.#connections.size, unauthenticated: this.#admission.size };
  }

  /** A snapshot of the whole server's counters, capacity and namespaces (what an admin's STATS answers). */
  get stats(): Omit<StatsOk, 'op' | 'id'> {
    return this.statsFor(null);
  }

  /**
   * What STATS answers: for `ns` (a non-admin caller's namespace) only that namespace's counters,
   * connections and entry; for null, the whole server. Capacity and used bytes are always the server's.
   */
  statsFor(ns: Namespace | null): Omit<StatsOk, 'op' | 'id'> {
    const all: NamespaceStats[] = [];
    if (ns) all.push({ name: ns.name, pageSize: ns.pageSize, pages: ns.pages });
    else for (const n of this.#namespaces.values()) all.push({ name: n.name, pageSize: n.pageSize, pages: n.pages });
    all.sort((a, b) => b.pages * b.pageSize - a.pages * a.pageSize);
    return {
      capacityBytes: this.capacity,
      usedBytes: this.#arena.usedBytes,
      slabBytes: this.#arena.allocatedBytes,
      connections: ns ? ns.connections : this.#connections.size,
      ...(ns ? ns.counters : this.#counters),
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
    if (this.#progressTimer) clearInterval(this.#progressTimer);
    const closed: Promise<void>[] = [];
    for (const conn of this.#connections) closed.push(conn.shutdown());
    await Promise.all(closed);
    const http = this.#http;
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
    if (this.#tcp) await this.#tcp.close();
  }

  /* ── used by Connection ───────────────────────────────────────────────────────────────────── */

  get counters(): Counters {
    return this.#counters;
  }

  get arena(): SlabArena {
    return this.#arena;
  }

  get opts(): Readonly<Required<Omit<MemoryServerOptions, 'token' | 'capacity' | 'adminToken'>>> {
    return this.#opts;
  }

  /** Which token HELLO carried: 'admin', 'client', or null for neither (compared in constant time). */
  authenticate(token: string): 'admin' | 'client' | null {
    const d = tokenDigest(token);
    if (this.#adminDigest && timingSafeEqual(d, this.#adminDigest)) return 'admin';
    return timingSafeEqual(d, this.#tokenDigest) ? 'client' : null;
  }

  /** A connection completed HELLO: it leaves the unauthenticated pool and counts against maxConnections. */
  authenticated(conn: Connection): void {
    this.#admission.remove(conn);
    this.#authenticated++;
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
