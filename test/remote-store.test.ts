/**
 * @fileoverview RemoteStore against real spawned `farmem serve` processes (1 and 3 servers): data
 * round trips with batching and pipelining, placement across servers, wrong token, namespace
 * isolation, a full server, a server killed mid-run (clear StoreError, no hang), replication 2
 * surviving a killed server. A TCP proxy in front of an in-process MemoryServer cuts connections to
 * test reconnect-and-resend and a restarted (emptied) server.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuthError, ProtocolError, ServerOutOfMemoryError, StoreError, OptionError } from '../host/errors.js';
import { Status } from '../host/protocol/index.js';
import { MemoryServer } from '../host/server/index.js';
import { RemoteStore } from '../host/store/remote.js';
import { startServers, type Servers } from './support/servers.js';

const TOKEN = 'remote-test-token';
const PS = 4096;

/** Deterministic page content: page p, generation g. */
function content(p: number, g = 0, size = PS): Uint8Array {
  const b = new Uint8Array(size);
  let x = (p * 2654435761 + g * 40503 + 1) >>> 0;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x; b[i + 1] = x >>> 8; b[i + 2] = x >>> 16; b[i + 3] = x >>> 24;
  }
  return b;
}

/** Byte equality without vitest's per-element deep compare (slow on thousands of 4 KiB pages). */
function same(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Asserts `got[i]` equals `want(i)` for every i in `idx`, reporting the first few mismatches. */
function expectPages(got: readonly Uint8Array[], idx: readonly number[], want: (i: number) => Uint8Array): void {
  const bad = idx.filter((i) => !same(got[i], want(i)));
  expect(bad.slice(0, 10)).toEqual([]);
}

function bufs(n: number, size = PS): Uint8Array[] {
  return Array.from({ length: n }, () => new Uint8Array(size));
}

/** A seeded random source so placement is reproducible. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** `store.readPage` (the I/O worker's callback form) as a promise. */
function readPage(store: RemoteStore, page: number, into: Uint8Array, at: number): Promise<void> {
  return new Promise((resolve, reject) => store.readPage(page, into, at, (err) => (err ? reject(err) : resolve())));
}

const NEVER = Symbol('hang');
/** Resolves to NEVER if `p` has not settled after `ms`: a hang guard, not a timing assertion. */
function guard<T>(p: Promise<T>, ms: number): Promise<T | typeof NEVER> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<typeof NEVER>((r) => { t = setTimeout(() => r(NEVER), ms); })]).finally(() => clearTimeout(t));
}

async function rejection(p: Promise<unknown>, ms: number): Promise<unknown> {
  const r = await guard(p.then(() => 'resolved', (e: unknown) => e), ms);
  expect(r).not.toBe(NEVER);
  expect(r).not.toBe('resolved');
  return r;
}

describe('through spawned servers', () => {
  let three: Servers;
  beforeAll(async () => {
    // 1 MiB frames force big reads and writes to be cut into several frames.
    three = await startServers(3, { capacity: '64MiB', token: TOKEN, args: ['--max-payload', '1MiB'] });
  });
  afterAll(async () => {
    await three?.close();
  });

  test('1 server: many pages written and read back, batched and pipelined', async () => {
    const store = await RemoteStore.connect({ urls: [three.urls[0]!], token: TOKEN, namespace: 'one', pageSize: PS, timeoutMs: 5000 });
    const N = 1500; // 6 MiB: several 1 MiB frames per call
    const pages = Array.from({ length: N }, (_, i) => i * 3);
    await store.write(pages, pages.map((p) => content(p)));
    const into = bufs(N);
    await store.read(pages, into);
    expectPages(into, pages.map((_, i) => i), (i) => content(pages[i]!));
    // Pipelined single-page calls, all in flight at once.
    const singles = bufs(200);
    await Promise.all(singles.map((b, i) => store.read([pages[i * 7]!], [b])));
    expectPages(singles, singles.map((_, i) => i), (i) => content(pages[i * 7]!));
    // The same through readPage, into one buffer at page offsets, twice (the second round reuses
    // the first round's request records); a never-written page is zero-filled in place.
    const phys = new Uint8Array(201 * PS).fill(0xff);
    for (let round = 0; round < 2; round++) {
      await Promise.all(singles.map((_, i) => readPage(store, pages[(i * 7 + round) % N]!, phys, i * PS)));
      expectPages(singles.map((_, i) => phys.subarray(i * PS, (i + 1) * PS)), singles.map((_, i) => i), (i) => content(pages[(i * 7 + round) % N]!));
    }
    await readPage(store, 10_000_001, phys, 200 * PS);
    expect(phys.subarray(200 * PS)).toEqual(new Uint8Array(PS));
    // Never-written pages (placed slab or not) read as zeros; freed pages too.
    const z = bufs(2);
    await store.read([1, 10_000_000], z);
    expect(z[0]).toEqual(new Uint8Array(PS));
    expect(z[1]).toEqual(new Uint8Array(PS));
    await store.free([0, 3]);
    const after = bufs(3);
    await store.read([0, 3, 6], after);
    expect(after[0]).toEqual(new Uint8Array(PS));
    expect(after[2]).toEqual(content(6));
    expect(store.stats.servers[0]!.requests).toBeGreaterThan(200);
    await store.close();
  });

  test('3 servers: slabs spread by power of two choices, data intact', async () => {
    const store = await RemoteStore.connect({
      urls: three.urls, token: TOKEN, namespace: 'three', pageSize: PS, timeoutMs: 5000, slabPages: 16, random: seeded(7),
    });
    const N = 2000;
    const pages = Array.from({ length: N }, (_, i) => i);
    // Written in 8 concurrent calls, then overwritten in part (generation 1).
    const parts = 8;
    await Promise.all(Array.from({ length: parts }, (_, k) => {
      const ps = pages.filter((p) => p % parts === k);
      return store.write(ps, ps.map((p) => content(p)));
    }));
    const over = pages.filter((p) => p % 5 === 0);
    await store.write(over, over.map((p) => content(p, 1)));
    const into = bufs(N);
    await store.read(pages, into);
    expectPages(into, pages, (p) => content(p, p % 5 === 0 ? 1 : 0));
    const st = store.stats;
    expect(st.slabs).toBe(Math.ceil(N / 16));
    // Every server holds some slabs.
    for (const s of st.servers) expect(s.bytesOut).toBeGreaterThan(N * PS / 10);
    await store.close();
  });

  test('wrong token: AuthError at connect', async () => {
    const err = await RemoteStore.connect({ urls: [three.urls[1]!], token: 'wrong', namespace: 'x', pageSize: PS, timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect(err).toBeInstanceOf(ProtocolError);
    const e = err as AuthError;
    expect(e.code).toBe('FM_ERR_AUTH');
    expect(e[ProtocolError.wireStatus]).toBe(Status.BAD_TOKEN);
    expect(e.message).toMatch(new RegExp(`${three.urls[1]} refused the token: bad token`));
  });

  test('namespaces are isolated', async () => {
    const a = await RemoteStore.connect({ urls: [three.urls[2]!], token: TOKEN, namespace: 'iso-a', pageSize: PS, timeoutMs: 5000 });
    const b = await RemoteStore.connect({ urls: [three.urls[2]!], token: TOKEN, namespace: 'iso-b', pageSize: PS, timeoutMs: 5000 });
    await a.write([1, 2], [content(1), content(2)]);
    await b.write([1], [content(99)]); // places the same slab for b, so b really asks the server
    const got = bufs(2);
    await b.read([1, 2], got);
    expect(got[0]).toEqual(content(99));
    expect(got[1]).toEqual(new Uint8Array(PS));
    const ga = bufs(1);
    await a.read([1], ga);
    expect(ga[0]).toEqual(content(1));
    await a.close();
    await b.close();
  });

  test('options are validated', async () => {
    await expect(RemoteStore.connect({ urls: [], token: TOKEN, namespace: 'x', pageSize: PS })).rejects.toThrow(OptionError);
    await expect(RemoteStore.connect({ urls: three.urls, token: TOKEN, namespace: 'x', pageSize: 3000 }))
      .rejects.toThrow(/"pageSize" must be a power of two between 256 and 65536, got 3000/);
    await expect(RemoteStore.connect({ urls: three.urls, token: TOKEN, namespace: 'x', pageSize: PS, replication: 4 }))
      .rejects.toThrow(/"replication" must be an integer between 1 and 3, got 4/);
    await expect(RemoteStore.connect({ urls: three.urls, token: TOKEN, namespace: 'x', pageSize: PS, timeout: 1 } as never))
      .rejects.toThrow(/Invalid option in RemoteStore.connect\(\) call: "timeout"/);
  });
});

describe('failures of real servers', () => {
  test('full server: ServerOutOfMemoryError, and the data already stored is intact', async () => {
    const one = await startServers(1, { capacity: '256KiB', token: TOKEN });
    try {
      const store = await RemoteStore.connect({ urls: one.urls, token: TOKEN, namespace: 'full', pageSize: PS, timeoutMs: 5000 });
      const first = Array.from({ length: 60 }, (_, i) => i);
      await store.write(first, first.map((p) => content(p)));
      const more = Array.from({ length: 10 }, (_, i) => 100 + i);
      const err = await store.write(more, more.map((p) => content(p))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerOutOfMemoryError);
      expect((err as ServerOutOfMemoryError).code).toBe('FM_ERR_SERVER_OUT_OF_MEMORY');
      expect((err as ServerOutOfMemoryError)[ProtocolError.wireStatus]).toBe(Status.OUT_OF_CAPACITY);
      expect((err as Error).message).toMatch(/out of capacity: .*nothing of this WRITE was stored/);
      const back = bufs(60);
      await store.read(first, back);
      expectPages(back, first, (p) => content(p));
      await store.close();
    } finally {
      await one.close();
    }
  });

  test('server killed mid-run: pending and later requests fail with StoreError, no hang', async () => {
    const one = await startServers(1, { capacity: '64MiB', token: TOKEN });
    const timeoutMs = 2500;
    try {
      const store = await RemoteStore.connect({ urls: one.urls, token: TOKEN, namespace: 'kill', pageSize: PS, timeoutMs, maxInFlight: 4 });
      const pages = Array.from({ length: 64 }, (_, i) => i);
      await store.write(pages, pages.map((p) => content(p)));
      // Many single-page reads in flight or queued when the server dies.
      const pending = pages.map((p) => (p % 2 ? readPage(store, p, new Uint8Array(PS), 0) : store.read([p], bufs(1))).then(() => 'ok', (e: unknown) => e));
      await one.kill(0);
      const outcomes = await guard(Promise.all(pending), timeoutMs * 4);
      expect(outcomes).not.toBe(NEVER);
      const failed = (outcomes as unknown[]).filter((o) => o !== 'ok');
      expect(failed.length).toBeGreaterThan(0);
      for (const f of failed) {
        expect(f).toBeInstanceOf(StoreError);
        expect((f as StoreError).code).toMatch(/^FM_ERR_(SERVER_UNREACHABLE|TIMEOUT)$/);
        expect((f as StoreError).message).toMatch(/unreachable|no reply/);
      }
      // Later requests fail too, within the timeout.
      const later = await rejection(store.read([5], bufs(1)), timeoutMs * 4);
      expect(later).toBeInstanceOf(StoreError);
      expect((later as StoreError).message).toMatch(new RegExp(`memory server ${one.urls[0]} unreachable`));
      const laterPage = await rejection(readPage(store, 5, new Uint8Array(PS), 0), timeoutMs * 4);
      expect(laterPage).toBeInstanceOf(StoreError);
      expect((laterPage as StoreError).message).toBe((later as StoreError).message);
      const laterWrite = await rejection(store.write([7], [content(7)]), timeoutMs * 4);
      expect(laterWrite).toBeInstanceOf(StoreError);
      await guard(store.close(), 5000);
    } finally {
      await one.close();
    }
  });

  test('replication 2 across 3 servers: one killed, every page still reads back', async () => {
    const s = await startServers(3, { capacity: '64MiB', token: TOKEN });
    try {
      const store = await RemoteStore.connect({
        urls: s.urls, token: TOKEN, namespace: 'rep', pageSize: PS, timeoutMs: 5000, replication: 2, slabPages: 8, random: seeded(3),
      });
      const pages = Array.from({ length: 400 }, (_, i) => i);
      await store.write(pages, pages.map((p) => content(p)));
      await s.kill(1);
      const into = bufs(pages.length);
      const r = await guard(store.read(pages, into), 15_000);
      expect(r).not.toBe(NEVER);
      expectPages(into, pages, (p) => content(p));
      // Writes keep working (on the surviving copies), and read back.
      await store.write(pages.slice(0, 50), pages.slice(0, 50).map((p) => content(p, 2)));
      const again = bufs(50);
      await store.read(pages.slice(0, 50), again);
      expectPages(again, pages.slice(0, 50), (p) => content(p, 2));
      await store.close();
    } finally {
      await s.close();
    }
  });
});

/** A TCP proxy whose connections can be cut, and whose target can change. */
class CutProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  target: number;

  constructor(target: number) {
    this.target = target;
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      this.#sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = () => { client.destroy(); upstream.destroy(); this.#sockets.delete(client); this.#sockets.delete(upstream); };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    return (this.#server.address() as net.AddressInfo).port;
  }

  cut(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

describe('reconnect (in-process server behind a proxy)', () => {
  test('a dropped connection is re-established and in-flight requests are resent', async () => {
    const server = new MemoryServer({ capacity: 16 << 20, token: TOKEN });
    await server.listen();
    const proxy = new CutProxy(server.port);
    const port = await proxy.listen();
    try {
      const store = await RemoteStore.connect({ urls: [`ws://127.0.0.1:${port}`], token: TOKEN, namespace: 'rc', pageSize: PS, timeoutMs: 5000, minBackoffMs: 10 });
      const pages = Array.from({ length: 100 }, (_, i) => i);
      await store.write(pages, pages.map((p) => content(p)));
      const reads = pages.map((p) => {
        const b = bufs(1);
        return (p % 2 ? readPage(store, p, b[0]!, 0) : store.read([p], b)).then(() => b[0]!);
      });
      proxy.cut();
      const got = await guard(Promise.all(reads), 10_000);
      expect(got).not.toBe(NEVER);
      expectPages(got as Uint8Array[], pages, (p) => content(p));
      expect(store.stats.servers[0]!.reconnects).toBeGreaterThanOrEqual(1);
      expect(store.stats.servers[0]!.state).toBe('ready');
      await store.close();
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  test('a restarted server (new instance) is reported as data loss, not zeros', async () => {
    const first = new MemoryServer({ capacity: 16 << 20, token: TOKEN });
    await first.listen();
    const second = new MemoryServer({ capacity: 16 << 20, token: TOKEN });
    await second.listen();
    const proxy = new CutProxy(first.port);
    const port = await proxy.listen();
    try {
      const store = await RemoteStore.connect({ urls: [`ws://127.0.0.1:${port}`], token: TOKEN, namespace: 'rs', pageSize: PS, timeoutMs: 3000, minBackoffMs: 10 });
      await store.write([1], [content(1)]);
      proxy.target = second.port;
      proxy.cut();
      const err = await rejection(store.read([1], bufs(1)), 12_000);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('FM_ERR_SERVER_DATA_LOST');
      expect((err as Error).message).toMatch(/restarted and lost the pages stored on it/);
      await store.close();
    } finally {
      await proxy.close();
      await first.close();
      await second.close();
    }
  });
});
