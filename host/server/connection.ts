/**
 * @fileoverview `Connection`: one client connection of a `MemoryServer` — its handshake (HELLO
 * first, token, namespace binding), its queue of received frames, and its share of the send budget.
 * The socket is a `PeerSocket` (peer-socket.ts): a WebSocket (ws-peer.ts) or a TCP socket
 * (tcp-listener.ts), either a byte stream of frames that may end anywhere.
 *
 * Over 400 lines because it handles every op of the protocol for one connection, each a few lines
 * around the shared budget, reply pool and namespace.
 *
 *   ws message ──FrameReader──▶ queue of frames ──turn()──▶ handle one ──▶ reply (charged) ──▶ ws.send
 *                                     ▲   budget.admit(size of its reply)?      │ send callback:
 *                                     └── no: stop here, pause the socket ◀─────┘ release, wake
 *
 * A frame's reply is sized BEFORE it is built (a READ's reply is count × pageSize, known from its
 * header), and built only when the send budget (`budget.ts`) admits it, so no batch of READs can
 * make the server allocate more than the budget. While frames wait, the socket is paused (no more
 * input is read); it resumes once the queue is empty. One turn handles at most MAX_FRAMES_PER_TURN
 * frames or MAX_BYTES_PER_TURN reply bytes, then yields to the event loop, so one connection with
 * a huge batch delays others by one turn at most. A connection whose unsent replies make no progress
 * for `slowReaderMs` is cut off (`checkProgress`).
 *
 * Replies of pages too large to gather (one page of more than 16 KiB) are sent straight from the
 * page's arena slot, its header written into the slot's header room (`replyHeadroom`): no copy. The
 * slot stays pinned until ws's send callback (or the socket's end, `detach`) says the bytes left
 * user space; meanwhile a WRITE of that page goes to a new slot and a FREE defers the slot's reuse
 * (arena.ts), so the reply shows exactly what the page held when the READ was answered.
 *
 * WRITEs that land in their slots: a WRITE whose head has arrived but not all of its data gets
 * fresh slots (`SlabArena.land`, counted against the capacity), its data is copied into them piece
 * by piece as it arrives (`#landingSink`), and at its turn the pages move to them
 * (`commitLanded`): never gathered into a frame and copied again. Nothing indexes those slots
 * before the turn, so the frames queued before it see the pages as they were. A connection that
 * closes gives them back.
 */
import {
  decode, encodeDraining, encodeError, encodeHelloOk, encodeOk, encodeStatsOk, encodeWriteOk, fitUtf8, initReadOkAt, peekId, peekOp,
  peekReadCount, readItem, readOkBytes, readRequestCount, statsOkMaxBytes, writeHeadAt, writeHeadPages, ERROR_MAX_BYTES, FrameError, FrameReader,
  MAX_STATS_NAMESPACES, Op, PROTOCOL_VERSION, READ_OK_DATA, Status, STATUS_NAMES, type DecodeContext, type FrameSink, type Hello,
} from '../protocol/index.js';
import { isValidPageSize, MAX_PAGE_SIZE, MIN_PAGE_SIZE } from '../layout.js';
import type { Admitted } from './admission.js';
import type { Namespace } from './arena.js';
import type { BudgetUser } from './budget.js';
import type { PeerSocket } from './peer-socket.js';
import type { MemoryServer } from './server.js';

/**
 * Replies up to this size (a 16 KiB page plus header) are built in place in one gathered buffer
 * per turn, sent as one ws message; larger ones get a buffer of their own and are sent alone.
 */
const COALESCE_MAX_FRAME = 16 * 1024 + 16;
/** A gathered reply message never exceeds this size (nor maxPayload); it leaves at the end of the turn. */
const COALESCE_MAX_MESSAGE = 256 * 1024;
/** A cache line: slots stay 64-byte aligned, and the transport's header room (MAX_HEADER_ROOM, 10) and the READ_OK header (16) fit before each page. */
const HEADROOM = 64;

/**
 * Header room the arena gives each slot of `pageSize` (SlabArena): a one-page READ_OK header for
 * pages whose replies are sent alone, so they leave straight from the slot; none for gathered ones.
 */
export function replyHeadroom(pageSize: number): number {
  return readOkBytes(1, pageSize) > COALESCE_MAX_FRAME ? HEADROOM : 0;
}

/** A WRITE landing in its slots (`Connection.#landing`): its head (a copy), the slots, data bytes in and to come. */
interface Landing {
  readonly head: Uint8Array;
  readonly slots: Uint32Array;
  at: number;
  left: number;
}

/** Work per event-loop turn before yielding: ~1 ms of small requests, or 8 MiB of reply copies. */
const MAX_FRAMES_PER_TURN = 1024;
const MAX_BYTES_PER_TURN = 8 * 1024 * 1024;
/**
 * A drained queue keeps its array (reused by the next message, no allocation per message) up to
 * this many entries; a longer one is dropped, so a burst of tiny frames pins no memory afterwards.
 */
const KEEP_QUEUE_ENTRIES = 1024;
const NO_FRAME = new Uint8Array(0);
/** A peer that does not finish the close handshake within this is cut off. */
const CLOSE_GRACE_MS = 2000;

/** Statuses after which the connection stays usable; every other status closes it. */
function isRequestLevel(status: Status): boolean {
  return status === Status.OUT_OF_CAPACITY || status === Status.TOO_LARGE || status === Status.FORBIDDEN;
}

/** Close codes: 1008 for policy (auth, order, limits), 1002 for broken framing, 1001 for shutdown. */
function closeCode(status: Status): number {
  switch (status) {
    case Status.BAD_TOKEN: case Status.NOT_HELLO: case Status.PAGE_SIZE_MISMATCH: case Status.VERSION_MISMATCH:
    case Status.TOO_MANY_UNAUTHENTICATED: case Status.TOO_MANY_CONNECTIONS: case Status.SLOW_READER:
      return 1008;
    case Status.SHUTTING_DOWN:
      return 1001;
    default:
      return 1002;
  }
}

export class Connection implements BudgetUser, Admitted {
  /** Remote IP address (the unit of the unauthenticated-connection limit). */
  readonly address: string;
  readonly remote: string;
  readonly #server: MemoryServer;
  readonly #ws: PeerSocket;
  #reader: FrameReader;
  #ctx: DecodeContext;
  #ns: Namespace | null = null;
  /** HELLO carried the admin token: STATS covers the whole server. */
  #admin = false;
  #closing = false;
  #detached = false;
  #helloTimer: NodeJS.Timeout | null;
  readonly #closed: Promise<void>;
  /** Frames received and not yet handled: #queue[#qHead .. #qTail). */
  #queue: Uint8Array[] = [];
  #qHead = 0;
  #qTail = 0;
  /**
   * A WRITE arriving in pieces, its data copied into slots of its own as it comes (the overview's
   * WRITEs that land in their slots).
   */
  #landing: Landing | null = null;
  /** Heads of landed WRITEs in the queue → their slots, until handled (or dropped with the connection). */
  readonly #landed = new WeakMap<Uint8Array, Uint32Array>();
  /** A stream error (bad length field, text message) to act on once the frames before it are handled. */
  #deferred: unknown = null;
  /** Reply bytes built and not yet written to the socket (charged to the server's budget too). */
  #outstanding = 0;
  /** Waiting for the send budget. */
  #waiting = false;
  #turnQueued = false;
  readonly #turnFn: () => void;
  /** Last time a reply left or the socket's buffer shrank (slow-reader detection). */
  #lastProgress = Date.now();
  #lastBuffered = 0;
  /** Replies confirmed written (ws callbacks); checkProgress compares it with its last look. */
  #confirmed = 0;
  #lastConfirmed = 0;
  readonly #onSent: () => void;
  /**
   * Replies handed to ws, oldest first (buffer to recycle or null, bytes charged, arena slot to
   * unpin or -1); ws calls back in order.
   */
  #sent: Array<Uint8Array | null> = [];
  #sentBytes: number[] = [];
  #sentSlot: number[] = [];
  /** Unconfirmed replies are entries [#sentHead .. #sentTail); drained arrays are reused (KEEP_QUEUE_ENTRIES). */
  #sentHead = 0;
  #sentTail = 0;
  /** In a turn: small replies are built into #outBuf (see #gather). */
  #batching = false;
  /**
   * The gathered message being built: a recycled buffer sized for the queued small replies, charged
   * to the budget whole when taken (so what the budget counts is what is pinned), #outLen used.
   */
  #outBuf: Uint8Array | null = null;
  #outLen = 0;
  /** Largest gathered message: COALESCE_MAX_MESSAGE, or maxPayload (the peer's limit) if smaller. */
  readonly #outCap: number;
  readonly #onFrame: (frame: Uint8Array) => void;
  /** Header room every message starts with, for the socket's own header (PeerSocket.headerRoom). */
  readonly #room: number;

  constructor(server: MemoryServer, ws: PeerSocket, address: string, port: number) {
    this.#server = server;
    this.#ws = ws;
    this.#room = ws.headerRoom;
    this.address = address;
    this.remote = `${address}:${port}`;
    this.#ctx = server.limits;
    this.#outCap = Math.min(COALESCE_MAX_MESSAGE, server.opts.maxPayload);
    this.#reader = new FrameReader(server.limits);
    this.#closed = new Promise((resolve) => ws.once('close', () => resolve()));
    this.#onSent = () => this.#sentOne();
    this.#onFrame = (frame) => { this.#queue[this.#qTail++] = frame; };
    this.#turnFn = () => {
      this.#turnQueued = false;
      this.#turn();
    };
    this.#helloTimer = setTimeout(() => {
      this.#fail(new FrameError(Status.NOT_HELLO, `no HELLO within ${server.opts.helloTimeoutMs} ms`));
    }, server.opts.helloTimeoutMs);
    this.#helloTimer.unref();
    ws.on('message', (data, isBinary, more) => this.#message(data, isBinary, more));
    ws.on('error', (err) => server.reportError(this.remote, Status.MALFORMED_FRAME, `connection error: ${err.message}`, err));
  }

  get outstanding(): number {
    return this.#outstanding;
  }

  get authenticated(): boolean {
    return this.#ns !== null;
  }

  get namespace(): Namespace | null {
    return this.#ns;
  }

  /** Budget callback: bytes were released, try the waiting frames again. */
  wake(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.#schedule();
  }

  /** Admission callback: the oldest unauthenticated connection over a limit. */
  evict(reason: string): void {
    this.#fail(new FrameError(Status.TOO_MANY_UNAUTHENTICATED, reason));
  }

  /** Tells the client (if past HELLO) that this server drains. */
  notifyDraining(): void {
    if (this.#ns === null || this.#closing) return;
    this.#send(encodeDraining(this.#server.drainLeftMs));
  }

  /** Called periodically: cuts off a peer whose unsent replies made no progress for `slowReaderMs`. */
  checkProgress(now: number): void {
    if (this.#outstanding === 0 || this.#detached) {
      this.#lastProgress = now;
      this.#lastConfirmed = this.#confirmed;
      return;
    }
    const buffered = this.#ws.bufferedAmount;
    if (buffered < this.#lastBuffered || this.#confirmed !== this.#lastConfirmed) this.#lastProgress = now;
    this.#lastBuffered = buffered;
    this.#lastConfirmed = this.#confirmed;
    const idle = now - this.#lastProgress;
    if (idle > this.#server.opts.slowReaderMs) {
      this.#closing = true;
      this.#server.reportError(this.remote, Status.SLOW_READER,
        `${this.#outstanding} bytes of replies unread for ${idle} ms (limit ${this.#server.opts.slowReaderMs} ms): cut off`);
      // A close frame would queue behind the unread replies: drop the socket.
      this.#ws.terminate();
    }
  }

  /** Called once the socket closed: releases the namespace binding and the send budget. */
  detach(): void {
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    this.#closing = true;
    this.#detached = true;
    if (this.#ns !== null) {
      const arena = this.#server.arena;
      for (let i = this.#qHead; i < this.#qTail; i++) {
        const slots = this.#landed.get(this.#queue[i]!);
        if (slots !== undefined) arena.dropLanded(this.#ns, slots);
      }
      if (this.#landing !== null) arena.dropLanded(this.#ns, this.#landing.slots);
    }
    this.#landing = null;
    this.#queue = [];
    this.#qHead = 0;
    this.#qTail = 0;
    const server = this.#server;
    server.budget.forget(this);
    server.budget.release(this.#outstanding);
    this.#outstanding = 0;
    // The socket is closed: it reads none of the slots its unsent replies showed any more.
    if (this.#ns !== null) {
      const pool = this.#ns.pool;
      for (let i = this.#sentHead; i < this.#sentTail; i++) if (this.#sentSlot[i]! >= 0) pool.unpin(this.#sentSlot[i]!);
    }
    this.#sent = [];
    this.#sentBytes = [];
    this.#sentSlot = [];
    this.#sentHead = 0;
    this.#sentTail = 0;
    this.#outBuf = null;
    this.#outLen = 0;
    const ns = this.#ns;
    this.#ns = null;
    if (ns) {
      ns.connections--;
      server.maybeDrop(ns);
    }
  }

  shutdown(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#close(1001, 'server shutting down');
    }
    return this.#closed;
  }

  /* ── input ───────────────────────────────────────────────────────────────────────────────── */

  /** `more`: another piece of the same socket read follows at once; the turn waits for the last. */
  #message(data: Buffer, isBinary: boolean, more = false): void {
    if (this.#closing || this.#deferred !== null) return;
    if (!isBinary) {
      this.#deferred = new FrameError(Status.MALFORMED_FRAME, 'malformed frame: text message (the protocol is binary)');
    } else {
      try {
        this.#reader.pushStream(data, this.#onFrame, this.#landingSink);
      } catch (err) {
        // The reader itself failed (bad length field): the stream cannot be resynchronised.
        this.#deferred = err;
      }
    }
    if (!more && !this.#turnQueued && !this.#waiting) this.#turn();
  }

  /**
   * The sink of `#message`'s stream (`FrameReader.pushStream`): a WRITE whose head is in but not
   * all of its data lands, its data copied into slots of its own as it arrives (`#startLanding`),
   * so it is never gathered into a frame and copied again.
   */
  readonly #landingSink: FrameSink = ((conn: Connection): FrameSink => ({
    get sinkLeft(): number {
      return conn.#landing !== null ? conn.#landing.left : 0;
    },
    sinkIn(bytes: Uint8Array): void {
      const l = conn.#landing!;
      conn.#landIn(l, bytes);
      if (l.left === 0) {
        conn.#landing = null;
        conn.#landed.set(l.head, l.slots);
        conn.#onFrame(l.head);
      }
    },
    openSink: (buf, at) => conn.#startLanding(buf, at),
  }))(this);

  /**
   * Whether the incomplete frame at `buf[at]` is a well-formed WRITE whose head is all here, with
   * room for its pages under the capacity: if so it becomes the landing one (its head's length is
   * returned), else -1 and the reader gathers it.
   */
  #startLanding(buf: Uint8Array, at: number): number {
    const ns = this.#ns;
    if (ns === null) return -1;
    const headBytes = writeHeadAt(buf, at, this.#ctx);
    if (headBytes < 0) return -1;
    const head = new Uint8Array(buf.subarray(at, at + headBytes)); // a copy: the queue keeps it
    const count = writeHeadPages(head).length;
    const slots = this.#server.arena.land(ns, count);
    if (slots === null) return -1;
    this.#landing = { head, slots, at: 0, left: count * ns.pageSize };
    return headBytes;
  }

  /** Copies the next data bytes of the landing WRITE into its slots. */
  #landIn(l: Landing, data: Uint8Array): void {
    const pool = this.#ns!.pool;
    const P = pool.pageSize;
    for (let i = 0; i < data.length;) {
      const page = (l.at / P) | 0;
      const within = l.at - page * P;
      const take = Math.min(P - within, data.length - i);
      pool.storeAt(l.slots[page]!, within, i === 0 && take === data.length ? data : data.subarray(i, i + take));
      i += take;
      l.at += take;
      l.left -= take;
    }
  }

  /** Handles queued frames while the budget admits their replies; see the file overview. */
  #turn(): void {
    if (this.#closing) return;
    const q = this.#queue;
    const budget = this.#server.budget;
    let frames = 0;
    let bytes = 0;
    this.#batching = true;
    try {
      while (this.#qHead < this.#qTail && !this.#closing) {
        const f = q[this.#qHead]!;
        const cost = this.#replyBound(f);
        if (cost <= COALESCE_MAX_FRAME) {
          // Built into the gathered buffer; a new one is admitted (and charged) whole.
          if ((this.#outBuf === null || this.#outLen + cost > this.#outBuf.length) && !this.#gather(cost)) {
            this.#waiting = true;
            break;
          }
        } else if (!budget.admit(this, cost)) {
          this.#waiting = true;
          break;
        }
        this.#qHead++;
        this.#frame(f);
        bytes += cost;
        if (++frames >= MAX_FRAMES_PER_TURN || bytes >= MAX_BYTES_PER_TURN) {
          if (this.#qHead < this.#qTail) this.#schedule();
          break;
        }
      }
    } finally {
      this.#batching = false;
      this.#flushOut();
    }
    if (this.#closing) return;
    const ws = this.#ws;
    if (this.#qHead === this.#qTail) {
      if (this.#qTail > KEEP_QUEUE_ENTRIES) q.length = 0;
      else q.fill(NO_FRAME, 0, this.#qTail); // drop the messages' references, keep the array
      this.#qHead = 0;
      this.#qTail = 0;
      if (this.#deferred !== null) {
        this.#fail(this.#deferred);
        return;
      }
      if (ws.isPaused) ws.resume();
    } else if (!ws.isPaused) {
      ws.pause();
    }
  }

  #schedule(): void {
    if (this.#turnQueued || this.#closing) return;
    this.#turnQueued = true;
    setImmediate(this.#turnFn);
  }

  /**
   * Starts a new gathered buffer for the reply (bound `first`) to the frame at the queue head and
   * the small replies queued after it: their bounds summed (up to #outCap), rounded up to a power
   * of two so recycled buffers fit again. False (nothing taken) when the budget does not admit it.
   */
  #gather(first: number): boolean {
    this.#flushOut();
    const q = this.#queue;
    const cap = this.#outCap;
    let need = this.#room + first;
    for (let i = this.#qHead + 1, n = Math.min(this.#qTail, this.#qHead + MAX_FRAMES_PER_TURN); i < n; i++) {
      const b = this.#replyBound(q[i]!);
      if (b > COALESCE_MAX_FRAME || need + b > cap) break;
      need += b;
    }
    let size = 256;
    while (size < need) size *= 2;
    if (size > cap) size = cap;
    if (!this.#server.budget.admit(this, size)) return false;
    this.#outBuf = this.#server.replyPool.take(size);
    this.#outLen = this.#room;
    this.#outstanding += size;
    this.#server.budget.charge(size);
    return true;
  }

  /** Upper bound of the reply to `frame`, known before it is handled. */
  #replyBound(frame: Uint8Array): number {
    const ns = this.#ns;
    if (ns !== null) {
      const count = peekReadCount(frame);
      if (count > 0) {
        const bytes = readOkBytes(count, ns.pageSize);
        if (bytes <= this.#ctx.maxFrameBytes) return bytes; // else it is answered TOO_LARGE
      }
      if (frame.length >= 5 && peekOp(frame) === Op.STATS) return statsOkMaxBytes(this.#admin ? MAX_STATS_NAMESPACES : 1);
    }
    return ERROR_MAX_BYTES;
  }

  #frame(frame: Uint8Array): void {
    try {
      this.#handle(frame);
    } catch (err) {
      if (err instanceof FrameError && isRequestLevel(err.status)) {
        this.#reportError(err.status, err.message, err);
        this.#send(encodeError(err.requestId, err.status, err.message));
      } else {
        this.#fail(err);
      }
    }
  }

  #handle(frame: Uint8Array): void {
    const server = this.#server;
    const op = peekOp(frame);
    const landed = op === Op.WRITE ? this.#landed.get(frame) : undefined;
    if (landed !== undefined) {
      this.#landed.delete(frame);
      if (server.closing) server.arena.dropLanded(this.#ns!, landed);
      else {
        const pages = writeHeadPages(frame);
        this.#wrote(peekId(frame), pages.length, server.arena.commitLanded(this.#ns!, pages, landed));
        return;
      }
    }
    if (server.closing) throw new FrameError(Status.SHUTTING_DOWN, 'the server is shutting down', peekId(frame));
    if (this.#ns === null) {
      if (op !== Op.HELLO) throw new FrameError(Status.NOT_HELLO, `op 0x${op.toString(16)} before HELLO: send HELLO first`, peekId(frame));
      this.#hello(decode(frame, this.#ctx) as Hello);
      return;
    }
    const ns = this.#ns;
    // READ, the hot path: checked in place (what decode accepts) and answered without a message object.
    const count = readRequestCount(frame, this.#ctx);
    if (count >= 0) {
      this.#read(frame, count, ns);
      return;
    }
    const m = decode(frame, this.#ctx);
    const c = server.counters;
    const nc = ns.counters;
    switch (m.op) {
      case Op.READ:
        this.#read(frame, m.pages.length, ns);
        return;
      case Op.WRITE:
        this.#wrote(m.id, m.pages.length, server.arena.write(ns, m.pages, m.data));
        return;
      case Op.FREE:
        server.arena.free(ns, m.pages);
        c.frees++;
        nc.frees++;
        this.#send(encodeOk(m.id));
        server.checkDrained();
        return;
      case Op.DRAIN:
        if (!this.#admin) throw new FrameError(Status.FORBIDDEN, 'DRAIN needs the admin token (farmem serve --admin-token)', m.id);
        this.#send(encodeOk(m.id));
        void server.drain();
        return;
      case Op.STATS:
        this.#send(encodeStatsOk({ id: m.id, ...server.statsFor(this.#admin ? null : ns) }));
        return;
      case Op.HELLO:
        throw new FrameError(Status.NOT_HELLO, 'a second HELLO on one connection', m.id);
      default:
        throw new FrameError(Status.UNKNOWN_OP, `op ${m.op} is a reply, not a request`, m.id);
    }
  }

  /** Answers a WRITE of `count` pages that was stored (`stored`), or did not fit and stored nothing. */
  #wrote(id: number, count: number, stored: boolean): void {
    const server = this.#server;
    if (!stored) {
      const a = server.arena;
      throw new FrameError(Status.OUT_OF_CAPACITY,
        `WRITE of ${count} pages does not fit: ${a.usedBytes} of ${a.capacityBytes} bytes used; nothing of this WRITE was stored`, id);
    }
    const c = server.counters;
    const nc = this.#ns!.counters;
    c.writes++;
    c.pagesWritten += count;
    nc.writes++;
    nc.pagesWritten += count;
    this.#send(encodeWriteOk(id, count));
  }

  /**
   * Answers a READ of `count` pages (checked): a small reply is built in the gathered buffer; a
   * large one page is sent from its arena slot (pinned) when it can be, else it is copied from the
   * arena once, into a recycled buffer of its own.
   */
  #read(frame: Uint8Array, count: number, ns: Namespace): void {
    const server = this.#server;
    const id = peekId(frame);
    const P = ns.pageSize;
    const size = readOkBytes(count, P);
    if (size > this.#ctx.maxFrameBytes) {
      throw new FrameError(Status.TOO_LARGE, `READ of ${count} pages of ${P} bytes needs a reply larger than the ${this.#ctx.maxFrameBytes}-byte frame limit`, id);
    }
    const c = server.counters;
    const nc = ns.counters;
    c.reads++;
    c.pagesRead += count;
    nc.reads++;
    nc.pagesRead += count;
    if (count === 1 && size > COALESCE_MAX_FRAME) {
      const slot = server.arena.pinReply(ns, readItem(frame, 0));
      if (slot >= 0) {
        // The transport's header room, then header + page: exactly the READ_OK frame.
        const view = ns.pool.view(slot, this.#room + READ_OK_DATA);
        initReadOkAt(view, this.#room, id, 1, P);
        this.#sendAlone(view, null, slot, this.#room);
        return;
      }
    }
    let buf = this.#outBuf;
    let at = this.#outLen;
    const gathered = this.#batching && size <= COALESCE_MAX_FRAME && buf !== null && at + size <= buf.length;
    if (gathered) {
      this.#outLen = at + size;
    } else {
      buf = server.replyPool.take(this.#room + size);
      at = this.#room;
    }
    const arena = server.arena;
    let o = initReadOkAt(buf!, at, id, count, P);
    for (let i = 0; i < count; i++, o += P) arena.readPage(ns, readItem(frame, i), buf!, o);
    if (!gathered) this.#sendAlone(buf!, buf, -1, this.#room);
  }

  #hello(h: Hello): void {
    const server = this.#server;
    if (h.version !== PROTOCOL_VERSION) {
      throw new FrameError(Status.VERSION_MISMATCH, `protocol version ${h.version} is not supported; this server speaks version ${PROTOCOL_VERSION}`, h.id);
    }
    const who = server.authenticate(h.token);
    if (who === null) throw new FrameError(Status.BAD_TOKEN, 'bad token', h.id);
    const ps = h.pageSize;
    if (!isValidPageSize(ps)) {
      throw new FrameError(Status.PAGE_SIZE_MISMATCH, `page size ${ps} is not a power of two between ${MIN_PAGE_SIZE} and ${MAX_PAGE_SIZE}`, h.id);
    }
    const ns = server.attach(h.namespace, ps);
    if (!ns) {
      throw new FrameError(Status.PAGE_SIZE_MISMATCH,
        `namespace ${JSON.stringify(h.namespace)} holds pages of ${server.existingPageSize(h.namespace)} bytes, not ${ps}`, h.id);
    }
    this.#ns = ns;
    this.#admin = who === 'admin';
    this.#ctx = { ...server.limits, pageSize: ps };
    if (this.#helloTimer) clearTimeout(this.#helloTimer);
    this.#helloTimer = null;
    server.authenticated(this);
    this.#send(encodeHelloOk({
      id: h.id, version: PROTOCOL_VERSION, pageSize: ps, maxFrameBytes: this.#ctx.maxFrameBytes,
      maxPagesPerRequest: this.#ctx.maxPagesPerRequest, instance: server.instance,
    }));
    if (server.draining) this.notifyDraining();
  }

  /* ── output ──────────────────────────────────────────────────────────────────────────────── */

  /**
   * Sends a reply, charged to the budget until ws has written it. During a turn, a small reply is
   * copied into the gathered buffer (already charged; it leaves with the turn's other replies as one
   * ws message: one syscall, one ws header); otherwise it goes out at once.
   */
  #send(frame: Uint8Array): void {
    const buf = this.#outBuf;
    if (this.#batching && buf !== null && frame.length <= COALESCE_MAX_FRAME && this.#outLen + frame.length <= buf.length) {
      buf.set(frame, this.#outLen);
      this.#outLen += frame.length;
      return;
    }
    this.#sendAlone(frame, null, -1);
  }

  /**
   * Sends one reply as its own message (after the gathered ones: order kept), charged until
   * written; then `recycle` goes back to the reply pool, or the arena `slot` it shows is unpinned.
   * The first `room` bytes of `frame` are the transport's header room (see PeerSocket.send).
   */
  #sendAlone(frame: Uint8Array, recycle: Uint8Array | null, slot: number, room = 0): void {
    this.#outstanding += frame.length;
    this.#server.budget.charge(frame.length);
    this.#flushOut();
    this.#write(frame, recycle, frame.length, slot, room);
  }

  /** Sends the gathered buffer's used part; the whole buffer stays charged until ws wrote it. */
  #flushOut(): void {
    const buf = this.#outBuf;
    if (buf === null) return;
    this.#outBuf = null;
    const n = this.#outLen;
    this.#outLen = 0;
    if (n === this.#room) {
      // Admitted but unused (the frame failed before replying): give it back now.
      this.#server.replyPool.give(buf);
      this.#outstanding -= buf.length;
      this.#server.budget.release(buf.length);
      return;
    }
    this.#write(n === buf.length ? buf : buf.subarray(0, n), buf, buf.length, -1, this.#room);
  }

  /**
   * Hands `data` to the socket (its first `room` bytes the transport's header room); once written,
   * `recycle` goes back to the pool, the arena `slot` (≥ 0) is unpinned and `charged` bytes are released.
   */
  #write(data: Uint8Array, recycle: Uint8Array | null, charged: number, slot: number, room = 0): void {
    const t = this.#sentTail++;
    this.#sent[t] = recycle;
    this.#sentBytes[t] = charged;
    this.#sentSlot[t] = slot;
    this.#ws.send(data, this.#onSent, room);
  }

  /** ws wrote the oldest unconfirmed reply (or dropped it with the socket). */
  #sentOne(): void {
    if (this.#detached) return;
    const i = this.#sentHead++;
    const buf = this.#sent[i];
    const bytes = this.#sentBytes[i]!;
    const slot = this.#sentSlot[i]!;
    this.#sent[i] = null;
    if (this.#sentHead === this.#sentTail) {
      if (this.#sentTail > KEEP_QUEUE_ENTRIES) {
        this.#sent.length = 0;
        this.#sentBytes.length = 0;
        this.#sentSlot.length = 0;
      }
      this.#sentHead = 0;
      this.#sentTail = 0;
    } else if (this.#sentHead >= KEEP_QUEUE_ENTRIES) {
      this.#sent = this.#sent.slice(this.#sentHead, this.#sentTail);
      this.#sentBytes = this.#sentBytes.slice(this.#sentHead, this.#sentTail);
      this.#sentSlot = this.#sentSlot.slice(this.#sentHead, this.#sentTail);
      this.#sentTail -= this.#sentHead;
      this.#sentHead = 0;
    }
    if (buf) this.#server.replyPool.give(buf);
    if (slot >= 0) this.#ns!.pool.unpin(slot);
    this.#outstanding -= bytes;
    this.#confirmed++;
    this.#server.budget.release(bytes);
    this.wake();
  }

  /* ── failure ─────────────────────────────────────────────────────────────────────────────── */

  #reportError(status: Status, message: string, err?: unknown): void {
    if (this.#ns) this.#ns.counters.errors++;
    this.#server.reportError(this.remote, status, message, err);
  }

  /** Answers ERROR (when the socket is still open) and closes with the status name as reason. */
  #fail(err: unknown): void {
    if (this.#closing) return;
    this.#closing = true;
    const status = err instanceof FrameError ? err.status : Status.INTERNAL;
    const message = err instanceof Error ? err.message : String(err);
    const id = err instanceof FrameError ? err.requestId : 0;
    this.#reportError(status, message, err);
    if (this.#ws.readyState !== this.#ws.OPEN) {
      this.#ws.terminate();
      return;
    }
    this.#flushOut(); // replies to earlier frames go first
    this.#ws.send(encodeError(id, status, message));
    this.#close(closeCode(status), `${STATUS_NAMES[status] ?? 'ERROR'}: ${message}`);
  }

  /**
   * Starts the close handshake with a reason that always fits (≤ 123 UTF-8 bytes), and sets the
   * cut-off timer first, so a peer that never answers (or a close that fails) cannot keep the socket.
   */
  #close(code: number, reason: string): void {
    const ws = this.#ws;
    const t = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    t.unref();
    ws.once('close', () => clearTimeout(t));
    if (ws.isPaused) ws.resume(); // the peer's close frame must be read
    try {
      ws.close(code, fitUtf8(reason));
    } catch {
      ws.terminate();
    }
  }
}
