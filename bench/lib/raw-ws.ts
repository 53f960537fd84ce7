/**
 * @fileoverview The raw transport baselines benchmarks compare farmem against, measured in the same
 * run, one implementation for every suite (faultpath, remote, the server throughput bench):
 * - a trivial ws echo server (child process, on farmem's own server end: RAW_WS_PRELUDE) answering
 *   every request with a preallocated payload of the requested size, and `RawClient`, a pipelined client on farmem's own ws:// transport (zero
 *   mask, no compression, payload streamed from one reused read buffer); `WsPackageClient`, the
 *   same over the `ws` package's client, for reference;
 * - a raw page server (`PAGE_SERVER`): replies are views of a region as large as a farmem server's
 *   pages, cycled, and the client may copy each page into a caller's buffer (`RawClient` `into`);
 * - a plain TCP echo pair (`net`, NODELAY; the client is `RawClient` on a tcp:// URL, reading into
 *   one reused buffer as farmem's tcp:// does) with the same request/reply sizes: the floor under
 *   any WebSocket framing;
 * - round-trip sampling (one request at a time) and pipelined bandwidth (`window` in flight).
 * With `hot: true` a client keeps its event loop awake while a reply is due (host/runtime/hot-wait.ts),
 * as farmem's I/O worker does for a demand read: the faultpath suite's round-trip baselines use it,
 * so they stay the fastest clients of their kind. Pipelined baselines (server throughput, stream
 * bandwidth) leave it off, as farmem's batched reads do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { HotWait, REPLY_HOT_WAIT_MS } from '../../host/runtime/hot-wait.js';
import { dial, type LinkSocket } from '../../host/store/remote/transport.js';

/**
 * What the raw ws servers share: an HTTP server whose upgrades get farmem's own server end
 * (host/server/ws-peer.ts: the leanest ws server we have, leaner than the `ws` package's, which
 * gathers every message and writes header and payload as two buffers), and a loop that cuts the
 * stream of client payload into the clients' fixed 20-byte requests and calls `answer(peer, request)`.
 * Replies are sent with free bytes for the header at their start, so each leaves in one write, as
 * the farmem server's pages do.
 */
const RAW_WS_PRELUDE = `
import { createServer } from 'node:http';
import { upgradeToWs } from './dist/host/server/ws-peer.js';
function serveRaw(answer) {
  const http = createServer((_req, res) => res.end());
  http.on('upgrade', (req, sock, head) => {
    const peer = upgradeToWs(req, sock, head, 64 << 20, () => null);
    if (peer === null) return;
    let pending = Buffer.alloc(0);
    peer.on('message', (d) => {
      pending = pending.length ? Buffer.concat([pending, d]) : Buffer.from(d);
      let n = 0;
      for (; pending.length - n >= 20; n += 20) answer(peer, pending.subarray(n, n + 20));
      pending = pending.subarray(n);
    });
    peer.on('error', () => {});
  });
  http.listen(0, '127.0.0.1', () => console.log('raw listening on ws://127.0.0.1:' + http.address().port));
  process.on('SIGTERM', () => process.exit(0));
}
`;

/** The raw baseline: answers every request with `size` bytes (its first 4 bytes), one cached buffer. */
export const ECHO_SERVER = RAW_WS_PRELUDE + `
let reply = null;
serveRaw((peer, req) => {
  const size = req.readUInt32LE(0);
  if (!reply || reply.length !== 10 + size) reply = Buffer.alloc(10 + size, 7);
  peer.send(reply, undefined, 10); // its first 10 bytes are the header's room
});
`;

/**
 * The raw baseline for a page server (the server throughput bench): like ECHO_SERVER, but each
 * reply is the next slot of a region as large as the pages the farmem server holds (request bytes
 * 4..8 give the slot count), cycled in order, sent as a view (no user-space copy: the kernel reads
 * the page straight from memory that is as far out of cache as farmem's arena). The best a ws
 * server holding pages in memory can do; ECHO_SERVER's one cached buffer is a lower bound no
 * server that reads its pages from memory reaches. Slots are 16 bytes apart: the header room.
 */
export const PAGE_SERVER = RAW_WS_PRELUDE + `
let region = null, size = 0, slots = 0, next = 0;
serveRaw((peer, req) => {
  const s = req.readUInt32LE(0), n = req.readUInt32LE(4);
  if (s !== size || n !== slots) { size = s; slots = n; region = Buffer.alloc((16 + s) * n, 7); next = 0; }
  const at = next * (16 + size) + 16;
  peer.send(region.subarray(at - 16, at + size), undefined, 16);
  if (++next === slots) next = 0;
});
`;

/**
 * The plain TCP baseline: a request is 20 bytes whose first 4 give the reply size; the server
 * answers each with that many bytes. Requests are fixed-size, so the stream needs no framing.
 */
export const TCP_ECHO_SERVER = `
import net from 'node:net';
const srv = net.createServer({ noDelay: true }, (sock) => {
  sock.setNoDelay(true);
  let pending = Buffer.alloc(0);
  let reply = null;
  sock.on('data', (d) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    let n = 0;
    while (pending.length - n >= 20) {
      const size = pending.readUInt32LE(n);
      if (!reply || reply.length !== size) reply = Buffer.alloc(size, 7);
      sock.write(reply);
      n += 20;
    }
    pending = pending.subarray(n);
  });
});
srv.listen(0, '127.0.0.1', () => console.log('tcp listening on tcp://127.0.0.1:' + srv.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

export function spawnServer(cwd: string, args: string[], pattern: RegExp): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${args.join(' ')}`)));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
  });
}

/** Round-trip samples in µs, one request at a time. */
export async function roundTrips(n: number, one: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one();
    out.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return out;
}

/**
 * A pipelined raw client: `request()` resolves with the next reply (replies come in order). It
 * rides on farmem's own transports (host/store/remote/transport.ts): over ws:// the payload streams
 * from the socket's read buffer, no message gathered first (zero mask, no compression); over tcp://
 * (TCP_ECHO_SERVER) the replies are counted off the stream as each read brings them. The fastest
 * clients we have, so a baseline is never a slower client than the one it is compared with.
 * Options for PAGE_SERVER: `slots`, the size of its page region; `into`, a buffer each reply's last
 * `into.length` bytes (the page) are copied to, as a page store must deliver a page to its caller.
 */
export class RawClient {
  readonly #sock: LinkSocket;
  readonly #waiting: Array<() => void> = [];
  readonly #req: Buffer;
  readonly #hot: HotWait | null;
  readonly #opened: Promise<void>;
  /** Bytes of the current reply seen so far. */
  #got = 0;

  constructor(url: string, replySize: number, opts: { slots?: number; into?: Uint8Array; hot?: boolean } = {}) {
    this.#hot = opts.hot ? new HotWait(REPLY_HOT_WAIT_MS, () => this.#waiting.length > 0) : null;
    // Same size as a one-page READ frame (20 bytes); the first 4 bytes tell the server the reply size.
    this.#req = Buffer.alloc(20);
    this.#req.writeUInt32LE(replySize, 0);
    this.#req.writeUInt32LE(opts.slots ?? 1, 4);
    const into = opts.into;
    const pageAt = replySize - (into?.length ?? 0);
    let opened!: () => void;
    let failed!: (err: Error) => void;
    this.#opened = new Promise((resolve, reject) => { opened = resolve; failed = reject; });
    this.#sock = dial(url, { maxPayload: 64 << 20, connectTimeoutMs: 10_000 }, {
      open: () => opened(),
      data: (bytes) => {
        for (let pos = 0; pos < bytes.length;) {
          const take = Math.min(replySize - this.#got, bytes.length - pos);
          if (into !== undefined && this.#got + take > pageAt) {
            const from = Math.max(this.#got, pageAt);
            into.set(bytes.subarray(pos + from - this.#got, pos + take), from - pageAt);
          }
          this.#got += take;
          pos += take;
          if (this.#got === replySize) {
            this.#got = 0;
            this.#waiting.shift()!();
          }
        }
      },
      invalid: (why) => failed(new Error(why)),
      error: (err) => failed(err),
      closed: (why) => failed(new Error(why)),
    });
  }

  /** Resolves once connected. */
  open(): Promise<void> {
    return this.#opened;
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#waiting.length;
  }

  request(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#sock.send(this.#req);
      this.#hot?.start();
    });
  }

  close(): Promise<void> {
    return this.#sock.close(1000, 'done');
  }
}

/**
 * The same request loop over the `ws` package's client, which delivers a message only once it has
 * gathered all of it, into a buffer of its own: the faultpath suite reports its round trip beside
 * the raw ws one, so what a message-at-a-time client costs is in every run (it was the raw ws
 * baseline until `RawClient` moved onto farmem's streaming ws:// transport, 2026-12-01).
 */
export class WsPackageClient {
  readonly ws: WebSocket;
  readonly #waiting: Array<() => void> = [];
  readonly #req: Buffer;
  readonly #hot: HotWait | null;

  constructor(url: string, replySize: number, opts: { hot?: boolean } = {}) {
    this.#hot = opts.hot ? new HotWait(REPLY_HOT_WAIT_MS, () => this.#waiting.length > 0) : null;
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20, generateMask: (m) => { m.fill(0); } });
    this.#req = Buffer.alloc(20);
    this.#req.writeUInt32LE(replySize, 0);
    this.ws.on('message', () => this.#waiting.shift()!());
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject); });
  }

  request(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.ws.send(this.#req);
      this.#hot?.start();
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** `total` requests with `window` in flight; returns seconds. */
export async function pipelined(total: number, window: number, one: () => Promise<unknown>): Promise<number> {
  let issued = 0;
  const t0 = process.hrtime.bigint();
  const lane = async () => {
    while (issued < total) {
      issued++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/** Pipelined raw ws bandwidth to an ECHO_SERVER, bytes/s of replies: `bytes` per reply, `window` in flight. */
export async function rawWsBandwidth(url: string, bytes: number, window: number, total: number): Promise<number> {
  const c = new RawClient(url, bytes);
  await c.open();
  try {
    await pipelined(Math.max(window, total >>> 4), window, () => c.request()); // warm up
    return (total * bytes) / await pipelined(total, window, () => c.request());
  } finally {
    await c.close();
  }
}
