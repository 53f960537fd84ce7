/**
 * @fileoverview A `ServerLink` over tcp:// and over ws:// (ws-stream.ts) receives replies cut at any
 * byte: the READ_OK of a page read (one page, `readPage`, or a run, `readPages`) is copied into its
 * pages piece by piece as it arrives, and every socket read lands in one reused buffer, so nothing a
 * caller keeps may point into it — or, for pages of 32 KiB and more, straight in the pages. A proxy
 * in front of a real in-process server re-cuts the reply stream into random pieces (over ws: the
 * upgrade response and the WebSocket frame headers too); fake servers answer a run with the wrong
 * page count, and stall in the middle of a 64 KiB page.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  decode, encodeHelloOk, encodeRead, encodeWrite, FrameReader, initReadOk, Op, PROTOCOL_VERSION, readOkBytes, type ReadOk,
} from '../host/protocol/index.js';
import { MemoryServer } from '../host/server/index.js';
import { ServerLink } from '../host/store/remote/link.js';

const TOKEN = 'link-stream-token';

function content(p: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let x = (p * 2654435761 + 7) >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x;
  }
  return b;
}

function link(port: number, pageSize: number, namespace: string, scheme: 'tcp' | 'ws' = 'tcp'): ServerLink {
  return new ServerLink({
    url: `${scheme}://127.0.0.1:${port}`, token: TOKEN, namespace, pageSize, timeoutMs: 10_000,
    maxInFlight: 256, maxQueued: 4096, minBackoffMs: 10, maxBackoffMs: 100,
  });
}

function readPages(l: ServerLink, pages: number[], dests: Uint8Array[]): Promise<void> {
  return new Promise((resolve, reject) => l.readPages(Uint32Array.from(pages), dests, (err) => (err ? reject(err) : resolve())));
}

function readPage(l: ServerLink, page: number, into: Uint8Array, at: number): Promise<void> {
  return new Promise((resolve, reject) => l.readPage(page, into, at, (err) => (err ? reject(err) : resolve())));
}

/** Forwards client→server bytes as they come and server→client bytes in random pieces of 1..max bytes, one per tick. */
class RecutProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  constructor(target: number, max: number, seed: number) {
    let s = seed >>> 0;
    const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
    this.#server = net.createServer((client) => {
      client.setNoDelay(true);
      const upstream = net.connect({ port: target, host: '127.0.0.1', noDelay: true });
      this.#sockets.add(client).add(upstream);
      client.pipe(upstream);
      const queue: Buffer[] = [];
      let pumping = false;
      const pump = () => {
        const head = queue[0];
        if (head === undefined || client.destroyed) {
          pumping = false;
          return;
        }
        const n = Math.min(head.length, 1 + Math.floor(rand() * max));
        client.write(head.subarray(0, n));
        if (n === head.length) queue.shift();
        else queue[0] = head.subarray(n);
        setImmediate(pump);
      };
      upstream.on('data', (d: Buffer) => {
        queue.push(d);
        if (!pumping) {
          pumping = true;
          setImmediate(pump);
        }
      });
      const drop = () => { client.destroy(); upstream.destroy(); };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    return (this.#server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

describe.each(['tcp', 'ws'] as const)('a %s:// link with replies cut anywhere', (scheme) => {
  let server: MemoryServer;

  beforeAll(async () => {
    server = new MemoryServer({ capacity: 64 << 20, token: TOKEN, tcpPort: 0 });
    await server.listen();
  });
  afterAll(async () => {
    await server.close();
  });

  for (const [pageSize, max] of [[4096, 3000], [4096, 1 << 20], [65536, 20_000], [32768, 5000], [4096, 7]] as const) {
    test(`${pageSize} B pages, pieces of 1..${max} bytes: runs, single pages and call(READ) replies all intact`, async () => {
      const proxy = new RecutProxy(scheme === 'tcp' ? server.tcpPort! : server.port, max, pageSize + max);
      const port = await proxy.listen();
      const l = link(port, pageSize, `cut-${scheme}-${pageSize}-${max}`, scheme);
      try {
        await l.open();
        const n = pageSize === 4096 ? 96 : 24;
        const pages = Array.from({ length: n }, (_, i) => i);
        await l.call((id) => encodeWrite(id, pages, pages.map((p) => content(p, pageSize)), pageSize));
        // Runs of 1..16 pages, single pages into offsets of one buffer, and replies kept by `call`,
        // all in flight at once, so replies follow each other inside the same socket reads.
        const runs: Array<{ pages: number[]; dests: Uint8Array[] }> = [];
        for (let p = 0; p < n;) {
          const len = Math.min(n - p, 1 + ((p * 7) % 16));
          runs.push({ pages: pages.slice(p, p + len), dests: pages.slice(p, p + len).map(() => new Uint8Array(pageSize)) });
          p += len;
        }
        const singles = new Uint8Array(n * pageSize);
        const kept = [3, 1, 4, 1, 5].map((p) => l.call((id) => encodeRead(id, Uint32Array.of(p))));
        await Promise.all([
          ...runs.map((r) => readPages(l, r.pages, r.dests)),
          ...pages.map((p) => readPage(l, p, singles, (n - 1 - p) * pageSize)),
        ]);
        for (const r of runs) r.pages.forEach((p, i) => expect(Buffer.compare(r.dests[i]!, content(p, pageSize))).toBe(0));
        for (const p of pages) expect(Buffer.compare(singles.subarray((n - 1 - p) * pageSize, (n - p) * pageSize), content(p, pageSize))).toBe(0);
        const replies = (await Promise.all(kept)) as ReadOk[];
        [3, 1, 4, 1, 5].forEach((p, i) => {
          expect(Buffer.compare(replies[i]!.data, content(p, pageSize))).toBe(0);
        });
        // Large pages are read straight into place, whatever the cuts; small ones never are.
        if (pageSize >= 32768) expect(l.snapshot().bytesDirect).toBeGreaterThan(0);
        else expect(l.snapshot().bytesDirect).toBe(0);
      } finally {
        await l.close();
        await proxy.close();
      }
    }, 60_000);
  }
});

describe.each(['tcp', 'ws'] as const)('64 KiB pages over %s:// straight from the socket', (scheme) => {
  test('page reads and runs land in their pages with no copy: the header is read alone, the page into place', async () => {
    const pageSize = 65536;
    const server = new MemoryServer({ capacity: 64 << 20, token: TOKEN, tcpPort: 0 });
    await server.listen();
    const l = link(scheme === 'tcp' ? server.tcpPort! : server.port, pageSize, `direct-${scheme}`, scheme);
    try {
      await l.open();
      const pages = Array.from({ length: 32 }, (_, i) => i);
      await l.call((id) => encodeWrite(id, pages, pages.map((p) => content(p, pageSize)), pageSize));
      const before = l.snapshot().bytesDirect;
      const singles = new Uint8Array(16 * pageSize);
      for (let p = 0; p < 16; p++) await readPage(l, p, singles, p * pageSize); // one at a time: the fault path
      const run = pages.slice(16).map(() => new Uint8Array(pageSize));
      await readPages(l, pages.slice(16), run);
      for (let p = 0; p < 16; p++) expect(Buffer.compare(singles.subarray(p * pageSize, (p + 1) * pageSize), content(p, pageSize))).toBe(0);
      run.forEach((d, i) => expect(Buffer.compare(d, content(16 + i, pageSize))).toBe(0));
      // Every page byte but the few a read may take past a header, when the header came in pieces.
      expect(l.snapshot().bytesDirect - before).toBeGreaterThan(0.95 * 32 * pageSize);
    } finally {
      await l.close();
      await server.close();
    }
  });
});

describe('a 64 KiB page read that times out with its read bound for the page', () => {
  test('drops the connection, so the rest of the reply never lands in the page; the link reconnects and serves', async () => {
    const pageSize = 65536;
    const limits = { pageSize, maxFrameBytes: 1 << 20, maxPagesPerRequest: 1024 };
    let reads = 0;
    const fake = net.createServer((sock) => {
      const reader = new FrameReader(limits);
      sock.on('error', () => {});
      sock.on('data', (d: Buffer) => reader.push(d, (frame) => {
        const m = decode(frame, limits);
        if (m.op === Op.HELLO) {
          sock.write(encodeHelloOk({ id: m.id, version: PROTOCOL_VERSION, pageSize, maxFrameBytes: 1 << 20, maxPagesPerRequest: 1024, instance: '0123456789abcdef' }));
        } else if (m.op === Op.READ) {
          const reply = Buffer.alloc(readOkBytes(1, pageSize));
          initReadOk(reply, m.id, 1).fill(0x5c);
          if (reads++ > 0) {
            sock.write(reply);
            return;
          }
          // The header and 1000 bytes now; the rest after the client gave up on the read.
          sock.write(reply.subarray(0, reply.length - pageSize + 1000));
          setTimeout(() => { if (!sock.destroyed) sock.write(reply.subarray(reply.length - pageSize + 1000)); }, 700);
        }
      }));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const l = new ServerLink({
      url: `tcp://127.0.0.1:${(fake.address() as net.AddressInfo).port}`, token: TOKEN, namespace: 'stall', pageSize, timeoutMs: 300,
      maxInFlight: 16, maxQueued: 64, minBackoffMs: 10, maxBackoffMs: 50,
    });
    try {
      await l.open();
      const page = new Uint8Array(pageSize).fill(0xaa);
      await expect(readPage(l, 1, page, 0)).rejects.toMatchObject({ code: 'FM_ERR_TIMEOUT' });
      await new Promise((r) => setTimeout(r, 900)); // past the moment the stalled server sends the rest
      expect(page.subarray(0, 1000).every((b) => b === 0x5c)).toBe(true); // what came before the deadline
      expect(page.subarray(1000).every((b) => b === 0xaa)).toBe(true); // nothing after it
      const again = new Uint8Array(pageSize);
      await readPage(l, 2, again, 0);
      expect(again.every((b) => b === 0x5c)).toBe(true);
      expect(l.snapshot().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await l.close();
      await new Promise((r) => fake.close(() => r(null)));
    }
  }, 20_000);
});

describe('a tcp:// server that answers a run with the wrong number of pages', () => {
  test('fails that read with a typed error naming both counts, and the link keeps serving', async () => {
    const pageSize = 4096;
    const fake = net.createServer((sock) => {
      const reader = new FrameReader({ maxFrameBytes: 1 << 20, maxPagesPerRequest: 1024 });
      sock.on('data', (d: Buffer) => reader.push(d, (frame) => {
        const m = decode(frame, { pageSize, maxFrameBytes: 1 << 20, maxPagesPerRequest: 1024 });
        if (m.op === Op.HELLO) {
          sock.write(encodeHelloOk({ id: m.id, version: PROTOCOL_VERSION, pageSize, maxFrameBytes: 1 << 20, maxPagesPerRequest: 1024, instance: '0123456789abcdef' }));
        } else if (m.op === Op.READ) {
          const count = m.pages.length === 4 ? 3 : m.pages.length; // one page short for runs of 4
          const reply = Buffer.alloc(readOkBytes(count, pageSize));
          initReadOk(reply, m.id, count).fill(m.pages[0]!);
          sock.write(reply);
        }
      }));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const l = link((fake.address() as net.AddressInfo).port, pageSize, 'short');
    try {
      await l.open();
      const dests = [0, 1, 2, 3].map(() => new Uint8Array(pageSize));
      await expect(readPages(l, [9, 10, 11, 12], dests)).rejects.toMatchObject({
        code: 'FM_ERR_PROTOCOL_MALFORMED_FRAME', message: expect.stringContaining('answered a READ of 4 pages with 3'),
      });
      const two = [0, 1].map(() => new Uint8Array(pageSize));
      await readPages(l, [7, 8], two);
      expect(two[0]!.every((b) => b === 7) && two[1]!.every((b) => b === 7)).toBe(true);
    } finally {
      await l.close();
      await new Promise((r) => fake.close(() => r(null)));
    }
  });
});
