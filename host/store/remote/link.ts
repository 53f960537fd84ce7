/**
 * @fileoverview `ServerLink`: one client connection to one farmem memory server, over ws or tcp
 * (`transport.ts`, by the URL's scheme). It does the HELLO handshake, pipelines requests (matched to replies by request id, at most `maxInFlight` sent and
 * `maxQueued` waiting), enforces a deadline per request, and reconnects with exponential backoff
 * when the connection drops, resending what was in flight in its original order (every op is
 * idempotent, and one connection is ordered, so a resend cannot reorder two writes of a page).
 *
 * Over 400 lines because the state machine below is one concept: handshake, pipelining, deadlines,
 * reconnect and resend all work on the same table of pending requests.
 *
 *   state:  connecting ──HELLO_OK──▶ ready ──socket lost──▶ down ──HELLO_OK, same instance──▶ ready
 *                 │                    │                      │
 *                 │ ERROR (auth, ...)  │ ERROR, closed        └──HELLO_OK, new instance──▶ lost
 *                 ▼                    ▼
 *               failed               failed                 close() from any state ──▶ closed
 *
 * A request never hangs: it resolves with its reply or rejects with a typed error by its deadline —
 * `ProtocolError`/`AuthError`/`ServerOutOfMemoryError` for an ERROR reply, `StoreError` with code
 * FM_ERR_TIMEOUT (connected, no reply), FM_ERR_SERVER_UNREACHABLE (connection lost and not back in
 * time), FM_ERR_SERVER_DATA_LOST (the server restarted and lost its pages), FM_ERR_STORE_BUSY
 * (queue full) or FM_ERR_STORE_CLOSED.
 *
 * On a stream (tcp, ws) a page read's data goes into its pages as it arrives: copied from the
 * socket's read buffer, or, for pages of 32 KiB and more, read by the kernel straight into them
 * (`#nextRead`); a read given up while the socket's next read is bound for its pages drops the
 * connection first (and resends the rest), so no late byte lands in memory its caller reuses.
 */
import { DataLostError, FarmemError, StoreError } from '../../errors.js';
import {
  decode, encodeHello, encodeRead, encodeReadOneInto, errorFromStatus, FrameError, FrameReader, DEFAULT_LIMITS, HEADER_BYTES, listBytes, Op, peekId, peekOp,
  peekIdAt, PROTOCOL_VERSION, READ_OK_DATA, SINK_HEAD, readOkDataAt, readOkHeaderAt, Status, type DecodeContext, type FrameSink, type HelloOk, type Reply,
} from '../../protocol/index.js';
import { copyBytes } from '../../shared-copy.js';
import { dial, type LinkSocket } from './transport.js';

export type LinkState = 'connecting' | 'ready' | 'down' | 'lost' | 'failed' | 'closed';

export interface LinkOptions {
  readonly url: string;
  readonly token: string;
  readonly namespace: string;
  readonly pageSize: number;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  readonly maxQueued: number;
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs`. */
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Called after every state change (re-replication starts when a link fails or comes back). */
  readonly onState?: (link: ServerLink) => void;
}

/** Called when a page read completed: with null once the page is in place, else with why not. */
export type PageReadDone = (err: Error | null) => void;

/**
 * A request waiting for its reply. Either a `call` (its promise's resolve/reject) or a page read
 * (`readPage`: the destination and a callback); page-read records are recycled once answered, so
 * the fault path allocates none. One class for both keeps the in-flight table monomorphic.
 */
class Pending {
  id = 0;
  deadline = 0;
  resolve: ((reply: Reply) => void) | null = null;
  reject: ((err: Error) => void) | null = null;
  /** A page read (`done` set): one page goes to `dest[destAt ..]`, or page i of several to `dests[i]`. */
  dest: Uint8Array | null = null;
  destAt = 0;
  dests: readonly Uint8Array[] | null = null;
  done: PageReadDone | null = null;
  /** Bytes that follow `frame` on the wire, sent from where they are (a WRITE's pages), or null. */
  data: readonly Uint8Array[] | null = null;
  /** The whole frame's length: `frame` and `data`. */
  length: number;
  constructor(public frame: Uint8Array) {
    this.length = frame.length;
  }

  fail(err: Error): void {
    if (this.done !== null) this.done(err);
    else this.reject!(err);
  }
}

/** Counters of one link, for `RemoteStore.stats`. */
export interface LinkStats {
  url: string;
  state: LinkState;
  inFlight: number;
  queued: number;
  requests: number;
  timeouts: number;
  reconnects: number;
  bytesOut: number;
  bytesIn: number;
  /** Of `bytesIn`, page bytes the socket read straight into their pages (`#nextRead`). */
  bytesDirect: number;
  /** The server announced a drain. */
  draining: boolean;
}

/**
 * Pages of at least this size are read from a stream straight into their frames (`#nextRead`): a
 * copy of 64 KiB from the socket's buffer into a frame costs ~8 µs here, a sixth of a raw 64 KiB
 * round trip, while a page's own read costs a syscall (~1 µs) that pays off only for large pages.
 */
const DIRECT_MIN_PAGE = 32 * 1024;

/** Request frames up to this size (a READ of ~1000 pages) are gathered into one message per tick. */
const COALESCE_MAX_FRAME = 4096;
/** A gathered message is at most this size, and at most the server's maxFrameBytes. */
const COALESCE_MAX_MESSAGE = 64 * 1024;
/**
 * Flushes run as a reaction to this settled promise: one reaction per tick, where Node's
 * `queueMicrotask` also builds an AsyncResource and a bound function per call (measured: the
 * largest part of a 64 KiB read's client-side cost that a raw ws client does not have).
 */
const SETTLED = Promise.resolve();

export class ServerLink {
  readonly url: string;
  readonly #o: LinkOptions;
  #state: LinkState = 'connecting';
  #draining = false;
  #ws: LinkSocket | null = null;
  #reader: FrameReader = new FrameReader(DEFAULT_LIMITS);
  #ctx: DecodeContext;
  #instance = '';
  #helloId = 0;
  #nextId = 1;
  readonly #inFlight = new Map<number, Pending>();
  /** Answered page-read records, reused by `readPage`. */
  readonly #spare: Pending[] = [];
  #queue: Pending[] = [];
  #sweeper: NodeJS.Timeout | null = null;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #backoffMs: number;
  /** When the connection was lost (0 while connected); down for longer than timeoutMs → failed. */
  #downSince = 0;
  /** Why the connection is not usable (last transport error, or the ERROR that failed it). */
  #lastError: Error | null = null;
  #opened: { resolve: () => void; reject: (err: Error) => void } | null = null;
  readonly #onFrame: (frame: Uint8Array) => void;
  /**
   * On a stream (tcp, ws): the READ_OK of a page read whose data is still arriving, copied into its
   * pages piece by piece instead of being gathered into a frame first (#streamSink); null otherwise.
   */
  #sink: Pending | null = null;
  /** Data bytes of the sink still to come, and how many came already. */
  #sinkLeft = 0;
  #sinkAt = 0;
  /** The page read the socket's next read lands in (`#nextRead` returned a view of its pages), or null. */
  #direct: Pending | null = null;
  /** Small request frames gathered in this tick: #out[0 .. #outCount) (see #send; the array is reused). */
  readonly #out: Uint8Array[] = [];
  #outCount = 0;
  #outBytes = 0;
  #flushQueued = false;
  readonly #flushFn: () => void;
  /** Limits the server announced in HELLO_OK (DEFAULT_LIMITS until then). */
  maxFrameBytes = DEFAULT_LIMITS.maxFrameBytes;
  maxPagesPerRequest = DEFAULT_LIMITS.maxPagesPerRequest;
  /** Placement's estimate of the server's free bytes: from STATS at connect, minus slabs placed since. */
  freeBytes = 0;
  readonly stats: LinkStats;

  constructor(options: LinkOptions) {
    this.url = options.url;
    this.#o = options;
    this.#ctx = { ...DEFAULT_LIMITS, pageSize: options.pageSize };
    this.#backoffMs = options.minBackoffMs;
    this.#onFrame = (frame) => this.#frame(frame);
    this.#flushFn = () => {
      this.#flushQueued = false;
      this.#flushOut();
    };
    this.stats = { url: options.url, state: 'connecting', inFlight: 0, queued: 0, requests: 0, timeouts: 0, reconnects: 0, bytesOut: 0, bytesIn: 0, bytesDirect: 0, draining: false };
  }

  get state(): LinkState {
    return this.#state;
  }

  /** The server announced a drain (DRAINING): it still serves, but takes no new slabs. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Connected and past HELLO: new slabs are placed only on ready servers. */
  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** Whether requests may still succeed: connected, or reconnecting to the same server. */
  get usable(): boolean {
    return this.#state === 'ready' || this.#state === 'down' || this.#state === 'connecting';
  }

  /** Connects and completes HELLO. Rejects with AuthError, ProtocolError or StoreError. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#opened = { resolve, reject };
      this.#startSweeper();
      this.#connect();
    });
  }

  /**
   * Sends a request built by `build(id)` and resolves with its reply (never an ERROR: those reject
   * with the typed error). Pipelined: does not wait for earlier requests.
   */
  call(build: (id: number) => Uint8Array): Promise<Reply> {
    return this.callWithData(build, null);
  }

  /**
   * `call` for a frame whose tail is `data` (a WRITE's pages, after the head `build` makes:
   * encodeWriteHead): the tail is sent from where it lies, not copied into a frame first. The caller
   * keeps `data` unchanged until the call settled (a resend after a reconnect sends it again).
   */
  callWithData(build: (id: number) => Uint8Array, data: readonly Uint8Array[] | null): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const refused = this.#refusal();
      if (refused !== null) {
        reject(refused);
        return;
      }
      const id = this.#allocId();
      const p = new Pending(build(id));
      p.id = id;
      p.resolve = resolve;
      p.reject = reject;
      if (data !== null) {
        for (const d of data) p.length += d.length;
        // A small frame is gathered with others (#send), so it is built whole.
        if (p.length <= COALESCE_MAX_FRAME) p.frame = Buffer.concat([p.frame, ...data]);
        else p.data = data;
      }
      this.#issue(p);
    });
  }

  /**
   * Reads one page into `dest[destAt .. destAt + pageSize)` and calls `done` — the fault path's
   * form of `call(READ)`: no promise, a recycled request record, and the reply's bytes copied
   * from the received message straight into `dest`. `done` may run before this returns (when the
   * link is unusable or its queue is full); it gets the same typed errors `call` rejects with.
   */
  readPage(page: number, dest: Uint8Array, destAt: number, done: PageReadDone): void {
    const refused = this.#refusal();
    if (refused !== null) {
      done(refused);
      return;
    }
    // A Buffer: ws sends it as it is (a plain Uint8Array gets a Buffer view made per send).
    const p = this.#spare.pop() ?? new Pending(Buffer.alloc(listBytes(1)));
    p.id = this.#allocId();
    encodeReadOneInto(p.frame, p.id, page);
    p.dest = dest;
    p.destAt = destAt;
    p.done = done;
    this.#issue(p);
  }

  /**
   * Reads `pages[i]` into `dests[i]` (pageSize bytes each) with one READ and calls `done`: a
   * prefetch run. As with `readPage`, the reply's data goes straight into place — piece by piece as
   * it arrives on a stream (tcp, ws), from the received message over wss — never into a reply
   * object first.
   */
  readPages(pages: Uint32Array, dests: readonly Uint8Array[], done: PageReadDone): void {
    const refused = this.#refusal();
    if (refused !== null) {
      done(refused);
      return;
    }
    const id = this.#allocId();
    const p = new Pending(encodeRead(id, pages));
    p.id = id;
    p.dests = dests;
    p.done = done;
    this.#issue(p);
  }

  #issue(p: Pending): void {
    p.deadline = Date.now() + this.#o.timeoutMs;
    this.stats.requests++;
    if (this.#state === 'ready' && this.#inFlight.size < this.#o.maxInFlight && this.#queue.length === 0) this.#send(p);
    else this.#queue.push(p);
  }

  /** Why a new request is refused now (the link is unusable, or its queue is full), else null. */
  #refusal(): Error | null {
    if (!this.usable) return this.#unusableError();
    if (this.#queue.length >= this.#o.maxQueued) {
      return new StoreError('FM_ERR_STORE_BUSY', `${this.url}: ${this.#o.maxQueued} requests already queued; wait for earlier ones (or raise maxQueued)`);
    }
    return null;
  }

  /** Closes the connection; pending requests reject with FM_ERR_STORE_CLOSED. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#stopTimers();
    this.#rejectAll(new StoreError('FM_ERR_STORE_CLOSED', `${this.url}: the store was closed with this request pending`));
    const ws = this.#ws;
    this.#ws = null;
    if (ws) await ws.close(1000, 'client closing');
  }

  /* ── connection life cycle ──────────────────────────────────────────────────────────────── */

  #connect(): void {
    this.#sink = null;
    this.#reader = new FrameReader({ maxFrameBytes: this.maxFrameBytes, maxPagesPerRequest: this.maxPagesPerRequest });
    // Events of a socket this link has already replaced (or closed) are ignored.
    const ws: LinkSocket = dial(this.url, { maxPayload: this.maxFrameBytes, connectTimeoutMs: this.#o.timeoutMs }, {
      open: () => {
        if (ws !== this.#ws) return;
        this.#helloId = this.#allocId();
        const hello = encodeHello(this.#helloId, PROTOCOL_VERSION, this.#o.pageSize, this.#o.token, this.#o.namespace);
        ws.send(hello);
        this.stats.bytesOut += hello.length;
      },
      nextRead: () => (ws === this.#ws ? this.#nextRead() : 0),
      direct: (n) => {
        if (ws !== this.#ws) return;
        this.#direct = null;
        this.stats.bytesIn += n;
        this.stats.bytesDirect += n;
        this.#sinkIn(this.#sink!, n);
      },
      data: (buf) => {
        if (ws !== this.#ws) return;
        this.#direct = null;
        this.stats.bytesIn += buf.length;
        try {
          if (ws.stream) {
            this.#reader.pushStream(buf, this.#onFrame, this.#streamSink);
          } else {
            this.#reader.push(buf, this.#onFrame);
            if (this.#reader.buffered !== 0) throw new FrameError(Status.MALFORMED_FRAME, 'server message ended inside a frame');
          }
        } catch (err) {
          this.#fail(err as Error);
        }
      },
      invalid: (why) => {
        if (ws === this.#ws) this.#fail(new FrameError(Status.MALFORMED_FRAME, why));
      },
      error: (err) => {
        if (ws === this.#ws) this.#lastError = err;
      },
      closed: (why) => {
        if (ws !== this.#ws) return;
        this.#ws = null;
        if (!this.#lastError || this.#state === 'ready') this.#lastError = new Error(why);
        this.#lost();
      },
    });
    this.#ws = ws;
  }

  /** The socket closed: fail for good, or go down and reconnect. */
  #lost(): void {
    const st = this.#state;
    if (st === 'closed' || st === 'failed' || st === 'lost') return;
    if (st === 'connecting' && this.#opened) {
      // The first connection never completed HELLO: report it to open() and stop.
      this.#setState('failed');
      const err = this.#lastError instanceof FarmemError
        ? this.#lastError
        : new StoreError('FM_ERR_SERVER_UNREACHABLE', `cannot connect to memory server ${this.url}: ${this.#lastError?.message ?? 'closed'}`, { cause: this.#lastError });
      this.#lastError = err;
      this.#stopTimers();
      this.#rejectAll(err);
      this.#opened.reject(err);
      this.#opened = null;
      return;
    }
    // Requests in flight go back to the front of the queue, in the order they were sent.
    this.#outCount = 0;
    this.#outBytes = 0;
    if (this.#inFlight.size > 0) {
      this.#queue = [...this.#inFlight.values(), ...this.#queue];
      this.#inFlight.clear();
    }
    this.#setState('down');
    if (this.#downSince === 0) this.#downSince = Date.now();
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      if (this.#state !== 'down') return;
      if (Date.now() - this.#downSince >= this.#o.timeoutMs) {
        // Gone for a whole request deadline: stop trying, so later requests fail at once.
        this.#fail(new StoreError('FM_ERR_SERVER_UNREACHABLE',
          `memory server ${this.url} unreachable for ${this.#o.timeoutMs} ms: ${this.#lastError?.message ?? 'connection lost'} (is it running? the pages stored there have no other copy)`,
          { cause: this.#lastError }));
        return;
      }
      this.stats.reconnects++;
      this.#connect();
    }, this.#backoffMs);
    this.#reconnectTimer.unref();
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.maxBackoffMs);
  }

  #helloOk(h: HelloOk): void {
    if (h.pageSize !== this.#o.pageSize || h.version !== PROTOCOL_VERSION) {
      this.#fail(new FrameError(Status.MALFORMED_FRAME, `HELLO_OK for page size ${h.pageSize}, version ${h.version}`));
      return;
    }
    if (this.#instance !== '' && h.instance !== this.#instance) {
      // Same address, new process: the pages this client stored there are gone.
      this.#setState('lost');
      this.#lastError = new DataLostError(`memory server ${this.url} restarted and lost the pages stored on it`);
      this.#rejectAll(this.#lastError);
      void this.#ws?.close(1000, 'server lost our pages');
      return;
    }
    this.#instance = h.instance;
    this.maxFrameBytes = h.maxFrameBytes;
    this.maxPagesPerRequest = h.maxPagesPerRequest;
    this.#ctx = { pageSize: this.#o.pageSize, maxFrameBytes: h.maxFrameBytes, maxPagesPerRequest: h.maxPagesPerRequest };
    this.#backoffMs = this.#o.minBackoffMs;
    this.#downSince = 0;
    this.#lastError = null;
    this.#setState('ready');
    if (this.#opened) {
      this.#opened.resolve();
      this.#opened = null;
    }
    this.#pump();
  }

  /** A connection-level failure (ERROR without a request, broken frame): fail every request, stop. */
  #fail(err: Error): void {
    if (this.#state === 'closed' || this.#state === 'failed') return;
    this.#setState('failed');
    this.#lastError = err;
    this.#stopTimers();
    this.#rejectAll(err);
    if (this.#opened) {
      this.#opened.reject(err);
      this.#opened = null;
    }
    void this.#ws?.close(1002, 'protocol error');
  }

  /* ── requests ───────────────────────────────────────────────────────────────────────────── */


  /**
   * The sink of a stream (tcp, ws; `FrameReader.pushStream`): an incomplete READ_OK of a page read
   * in flight at the end of a chunk becomes the sink, its data copied into the pages as it arrives
   * (a run's reply, or a 64 KiB page, spans socket reads), with no frame gathered and copied again.
   */
  readonly #streamSink: FrameSink = ((link: ServerLink): FrameSink => ({
    get sinkLeft(): number {
      return link.#sink !== null ? link.#sinkLeft : 0;
    },
    sinkIn(bytes: Uint8Array): void {
      const p = link.#sink!;
      // A read that timed out meanwhile keeps its bytes out of a page that may be reused.
      if (link.#inFlight.get(p.id) === p) link.#place(p, bytes, link.#sinkAt);
      link.#sinkIn(p, bytes.length);
    },
    openSink: (buf, at) => (link.#startSink(buf, at) ? READ_OK_DATA : -1),
  }))(this);

  /** `n` more data bytes of the sink `p` are in place; once all are, it has landed. */
  #sinkIn(p: Pending, n: number): void {
    this.#sinkAt += n;
    this.#sinkLeft -= n;
    if (this.#sinkLeft === 0) {
      this.#sink = null;
      if (this.#inFlight.get(p.id) === p) this.#landed(p);
    }
  }

  /**
   * Where the socket's next read should land (`LinkEvents.nextRead`). With pages of DIRECT_MIN_PAGE
   * or more: while a page read's data is arriving (the sink), straight into its page — the rest of
   * that page — so the kernel copies it into the frame and nothing copies it again; between frames,
   * only a READ_OK header's bytes, so a page reply's first read does not pull the page into the
   * socket's buffer (a burst of small replies then takes a read per header's worth: few at these
   * page sizes, where write-backs are acknowledged once per WRITE). Inside a frame the reader
   * gathers (not a page read's), anything into the buffer. A read that lands in a page is `#direct` until it did:
   * giving that read up first drops the connection (`#abandonDirect`).
   */
  #nextRead(): Uint8Array | number {
    this.#direct = null;
    const ps = this.#o.pageSize;
    if (ps < DIRECT_MIN_PAGE) return 0;
    const p = this.#sink;
    if (p !== null) {
      if (this.#inFlight.get(p.id) !== p) return 0;
      this.#direct = p;
      const at = this.#sinkAt;
      if (p.dests === null) return p.dest!.subarray(p.destAt + at, p.destAt + at + this.#sinkLeft);
      const page = (at / ps) | 0;
      const within = at - page * ps;
      return p.dests[page]!.subarray(within, within + Math.min(ps - within, this.#sinkLeft));
    }
    // Between frames, the next may be a page's READ_OK even with nothing in flight: this read's
    // buffer is chosen now, and a fault's readPage may come before its bytes do. A head cut by the
    // last read: just the rest of it (FrameReader.pushStream then offers it to the sink).
    const held = this.#reader.buffered;
    if (held < SINK_HEAD) return SINK_HEAD - held;
    return 0;
  }

  /**
   * The socket's next read is bound for the pages of a read about to be given up (deadline, close):
   * drop the connection now, so the read cannot land in memory its caller may reuse.
   */
  #abandonDirect(p: Pending | null): void {
    if (this.#direct === null || (p !== null && p !== this.#direct)) return;
    this.#direct = null;
    this.#ws?.abort();
  }

  /** Whether the incomplete frame at `buf[at]` is the READ_OK of a page read; if so it becomes the sink. */
  #startSink(buf: Uint8Array, at: number): boolean {
    if (buf.length - at < READ_OK_DATA) return false;
    const p = this.#inFlight.get(peekIdAt(buf, at));
    if (p === undefined || p.done === null) return false;
    const length = readOkHeaderAt(buf, at, this.#ctx, p.dests?.length ?? 1);
    if (length < 0) return false;
    this.#sink = p;
    this.#sinkLeft = length - READ_OK_DATA;
    this.#sinkAt = 0;
    return true;
  }

  /** Copies `data`, the bytes of page read `p`'s reply data from byte `offset` on, into its pages. */
  #place(p: Pending, data: Uint8Array, offset: number): void {
    const dests = p.dests;
    if (dests === null) {
      copyBytes(p.dest!, p.destAt + offset, data);
      return;
    }
    const ps = this.#o.pageSize;
    for (let i = 0; i < data.length;) {
      const at = offset + i;
      const page = (at / ps) | 0;
      const within = at - page * ps;
      const take = Math.min(ps - within, data.length - i);
      copyBytes(dests[page]!, within, take === data.length ? data : data.subarray(i, i + take));
      i += take;
    }
  }

  /** A page read's data is in place: complete it and recycle its record. */
  #landed(p: Pending): void {
    this.#inFlight.delete(p.id);
    const done = p.done!;
    p.dest = null;
    p.done = null;
    if (p.dests === null) this.#spare.push(p); // a one-page record; a run's frame fits its own count
    done(null);
    if (this.#queue.length > 0) this.#pump();
  }

  #frame(frame: Uint8Array): void {
    if (frame.length >= HEADER_BYTES) {
      // The fault path: the READ_OK of a page read goes from the message into its pages.
      const p = this.#inFlight.get(peekId(frame));
      if (p !== undefined && p.done !== null) {
        const at = readOkDataAt(frame, this.#ctx, p.dests?.length ?? 1);
        if (at >= 0) {
          this.#place(p, frame.subarray(at), 0);
          this.#landed(p);
          return;
        }
      }
    }
    // On a stream (tcp, ws) the frame may be a view of the socket's read buffer, which the next
    // read reuses: a READ_OK given to a caller (`call`) keeps its pages, so it gets bytes of its
    // own (`new Uint8Array` copies; Buffer#slice would be a view).
    const kept = this.#ws?.stream && peekOp(frame) === Op.READ_OK;
    const m = decode(kept ? new Uint8Array(frame) : frame, this.#ctx);
    if (m.op === Op.HELLO_OK && m.id === this.#helloId) {
      this.#helloOk(m);
      return;
    }
    if (m.op === Op.DRAINING) {
      // The server is being drained: no new slabs here; the store moves what it holds elsewhere.
      this.#draining = true;
      this.stats.draining = true;
      this.#o.onState?.(this);
      return;
    }
    if (m.op === Op.ERROR && (m.id === 0 || m.id === this.#helloId)) {
      // About the connection (HELLO refused, frame unreadable): the server closes next.
      this.#fail(errorFromStatus(m.status, m.message, this.url));
      return;
    }
    const p = this.#inFlight.get(m.id);
    if (!p) return; // its deadline passed and it was already rejected
    this.#inFlight.delete(m.id);
    if (m.op === Op.ERROR) p.fail(errorFromStatus(m.status, m.message, this.url));
    else if (m.op === Op.HELLO_OK || m.op < 0x80) p.fail(new FrameError(Status.MALFORMED_FRAME, `server sent op ${m.op} as a reply`, m.id));
    else if (p.done !== null) {
      // A well-formed reply, but not a READ_OK of the pages asked for.
      const count = m.op === Op.READ_OK ? m.count : 'none';
      const asked = p.dests?.length ?? 1;
      p.fail(new StoreError('FM_ERR_PROTOCOL_MALFORMED_FRAME', `${this.url} answered a READ of ${asked} page${asked === 1 ? '' : 's'} with ${count}`));
    } else p.resolve!(m as Reply);
    if (this.#queue.length > 0) this.#pump();
  }

  /**
   * Sends a request. Small frames issued in the same tick leave as one ws message, flushed in a
   * microtask (no added delay); large ones are sent at once, after any gathered ones (order kept).
   */
  #send(p: Pending): void {
    this.#inFlight.set(p.id, p);
    this.stats.bytesOut += p.length;
    const f = p.frame;
    if (p.length > COALESCE_MAX_FRAME) {
      this.#flushOut();
      this.#ws!.send(f, p.data);
      return;
    }
    if (this.#outBytes + f.length > Math.min(COALESCE_MAX_MESSAGE, this.maxFrameBytes)) this.#flushOut();
    this.#out[this.#outCount++] = f;
    this.#outBytes += f.length;
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      void SETTLED.then(this.#flushFn);
    }
  }

  #flushOut(): void {
    const n = this.#outCount;
    if (n === 0) return;
    const ws = this.#ws;
    const out = this.#out;
    if (ws && ws.open) {
      if (n === 1) ws.send(out[0]!);
      else {
        const msg = Buffer.allocUnsafe(this.#outBytes);
        for (let i = 0, at = 0; i < n; at += out[i]!.length, i++) msg.set(out[i]!, at);
        ws.send(msg);
      }
    }
    // Otherwise the connection is gone; these requests are in #inFlight and get resent or failed.
    this.#outCount = 0;
    this.#outBytes = 0;
  }

  #pump(): void {
    if (this.#state !== 'ready') return;
    const q = this.#queue;
    let i = 0;
    while (i < q.length && this.#inFlight.size < this.#o.maxInFlight) this.#send(q[i++]!);
    if (i > 0) this.#queue = q.slice(i);
  }

  #allocId(): number {
    let id = this.#nextId;
    while (id === 0 || this.#inFlight.has(id)) id = (id + 1) >>> 0;
    this.#nextId = (id + 1) >>> 0;
    return id;
  }

  /* ── deadlines ──────────────────────────────────────────────────────────────────────────── */

  #startSweeper(): void {
    // One timer per link instead of one per request; a request fails at most one tick late.
    const tick = Math.max(5, Math.min(250, Math.floor(this.#o.timeoutMs / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), tick);
    this.#sweeper.unref();
  }

  #sweep(): void {
    const now = Date.now();
    for (const p of this.#inFlight.values()) {
      if (p.deadline > now) break; // sent in order with equal timeouts: later ones expire later
      this.#abandonDirect(p);
      this.#inFlight.delete(p.id);
      this.stats.timeouts++;
      p.fail(this.#timeoutError());
    }
    if (this.#queue.length > 0 && this.#queue[0]!.deadline <= now) {
      const keep: Pending[] = [];
      for (const p of this.#queue) {
        if (p.deadline > now) keep.push(p);
        else {
          this.stats.timeouts++;
          p.fail(this.#timeoutError());
        }
      }
      this.#queue = keep;
    }
    if (this.#state === 'ready' && this.#queue.length > 0) this.#pump();
  }

  #timeoutError(): StoreError {
    if (this.#state === 'ready') {
      return new StoreError('FM_ERR_TIMEOUT', `no reply from memory server ${this.url} within ${this.#o.timeoutMs} ms (server overloaded or stuck?)`);
    }
    return new StoreError('FM_ERR_SERVER_UNREACHABLE',
      `memory server ${this.url} unreachable for ${this.#o.timeoutMs} ms: ${this.#lastError?.message ?? 'connecting'} (is it running? the pages stored there have no other copy)`,
      { cause: this.#lastError });
  }

  #unusableError(): Error {
    if (this.#state === 'closed') return new StoreError('FM_ERR_STORE_CLOSED', `${this.url}: the store is closed`);
    if (this.#lastError instanceof FarmemError) return this.#lastError;
    return new StoreError('FM_ERR_SERVER_UNREACHABLE', `memory server ${this.url} failed: ${this.#lastError?.message ?? this.#state}`, { cause: this.#lastError });
  }

  #rejectAll(err: Error): void {
    this.#abandonDirect(null);
    const all = [...this.#inFlight.values(), ...this.#queue];
    this.#inFlight.clear();
    this.#queue = [];
    for (const p of all) p.fail(err);
  }

  #stopTimers(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#sweeper = null;
    this.#reconnectTimer = null;
  }

  #setState(s: LinkState): void {
    const changed = this.#state !== s;
    this.#state = s;
    this.stats.state = s;
    if (changed) this.#o.onState?.(this);
  }

  /** Refreshes the in-flight/queued gauges in `stats`. */
  snapshot(): LinkStats {
    this.stats.inFlight = this.#inFlight.size;
    this.stats.queued = this.#queue.length;
    return { ...this.stats };
  }
}
