/**
 * @fileoverview The memory server against hostile clients, one defect per test: namespaces and
 * tokens that differ only in bytes a lenient decoder would normalise away, close reasons longer than
 * WebSocket allows, batches of READs from clients that never read their replies (the send budget),
 * slow readers, idle upgrades that never say HELLO, and STATS of other namespaces. In-process
 * `MemoryServer`s with small limits, so each bound is hit quickly.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { get } from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { encodeHello, encodeRead, encodeStats, encodeWrite, Op, PROTOCOL_VERSION, Status, type StatsOk } from '../host/protocol/index.js';
import { MemoryServer, type MemoryServerOptions, type ServerErrorEvent } from '../host/server/index.js';
import { expectRefused, page, PS, Raw, TEST_TOKEN } from './support/raw-client.js';

const ADMIN = 'admin-secret';
const started: MemoryServer[] = [];
const clients: Raw[] = [];

async function serve(options: Partial<MemoryServerOptions> = {}): Promise<MemoryServer> {
  const s = new MemoryServer({ capacity: 64 << 20, token: TEST_TOKEN, adminToken: ADMIN, ...options });
  await s.listen();
  started.push(s);
  return s;
}

async function connect(url: string, namespace: string, token = TEST_TOKEN, pageSize = PS): Promise<Raw> {
  const c = await Raw.connect(url, namespace, token, pageSize);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(started.splice(0).map((s) => s.close()));
});

/** Polls `cond` every 10 ms for up to 10 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

function errors(): { events: ServerErrorEvent[]; stop: () => void } {
  const events: ServerErrorEvent[] = [];
  const on = (m: unknown) => events.push(m as ServerErrorEvent);
  diagnostics_channel.subscribe('farmem:server:error', on);
  return { events, stop: () => diagnostics_channel.unsubscribe('farmem:server:error', on) };
}

describe('identities are exact bytes', () => {
  test('namespaces that differ only by a leading BOM, or in normalisation, never alias', async () => {
    const s = await serve();
    const names = ['tenant', '\uFEFFtenant', 'tenant\uFEFF', 'caf\u00e9', 'cafe\u0301'];
    const conns = await Promise.all(names.map((n) => connect(s.url, n)));
    // Every client writes page 7 with its own fill byte; every client reads back only its own.
    for (let i = 0; i < conns.length; i++) await conns[i]!.call(encodeWrite(2, [7], [page(0x10 + i)], PS));
    for (let i = 0; i < conns.length; i++) {
      const r = await conns[i]!.call(encodeRead(3, [7])) as { data: Uint8Array };
      expect(r.data).toEqual(page(0x10 + i));
    }
    const all = s.stats.namespaces.map((n) => n.name).sort();
    expect(all).toEqual([...names].sort());
  });

  test('a token with a BOM, or one byte off, is refused', async () => {
    const s = await serve();
    for (const token of [`\uFEFF${TEST_TOKEN}`, `${TEST_TOKEN}\uFEFF`, TEST_TOKEN.toUpperCase()]) {
      const c = new Raw(s.url);
      clients.push(c);
      await c.opened;
      c.send(encodeHello(1, PROTOCOL_VERSION, PS, token, 'ns'));
      await expectRefused(c, Status.BAD_TOKEN, /bad token/, 1008);
    }
  });
});

describe('close reasons always fit', () => {
  test('a refusal whose message holds a long non-ASCII namespace still closes, promptly', async () => {
    const s = await serve({ helloTimeoutMs: 60_000 });
    const name = 'é'.repeat(128); // 256 UTF-8 bytes: the message is far above 123 bytes
    const a = await connect(s.url, name, TEST_TOKEN, 4096);
    await a.call(encodeWrite(2, [1], [page(1)], 4096));
    const c = new Raw(s.url);
    clients.push(c);
    await c.opened;
    c.send(encodeHello(1, PROTOCOL_VERSION, 1024, TEST_TOKEN, name));
    const m = await c.next();
    expect(m).toMatchObject({ op: Op.ERROR, status: Status.PAGE_SIZE_MISMATCH });
    const closed = await c.closed; // before: close() threw, no timer was set and this never resolved
    expect(closed.code).toBe(1008);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    expect(closed.reason).toMatch(/^PAGE_SIZE_MISMATCH: namespace "é+$/);
    await until(() => s.connectionCount.open === 1);
  });
});

describe('the send budget', () => {
  const MiB = 1 << 20;
  const P64 = 65536;

  /** One ws message of `n` READs of 16 pages of 64 KiB: n MiB of replies. */
  function readBatch(n: number, firstId: number): Buffer {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) frames.push(encodeRead(firstId + i, Array.from({ length: 16 }, (_, k) => k)));
    return Buffer.concat(frames);
  }

  test('readers that stop reading hold at most their budget; other clients are served meanwhile', async () => {
    // slowReaderMs is long: on a busy machine the hogs may sit for seconds before the resume below.
    const s = await serve({ maxBufferedBytes: 2 * MiB, maxTotalBufferedBytes: 8 * MiB, maxPayload: 2 * MiB, slowReaderMs: 600_000 });
    const writer = await connect(s.url, 'big', TEST_TOKEN, P64);
    const data = Array.from({ length: 16 }, (_, k) => page(k + 1, P64));
    await writer.call(encodeWrite(2, data.map((_, k) => k), data, P64));
    // Three clients each ask for 60 MiB of replies in one 6 KB message, and stop reading.
    const hogs = await Promise.all([0, 1, 2].map(() => connect(s.url, 'big', TEST_TOKEN, P64)));
    for (const h of hogs) {
      h.ws.pause();
      h.send(readBatch(60, 10));
    }
    await until(() => s.budget.used >= 3 * MiB); // every hog holds some
    // Held by the server: within its budget (before: every reply was built, 180 MiB).
    expect(s.budget.used).toBeLessThanOrEqual(8 * MiB);
    // A well-behaved client in another namespace is served while the hogs are stuck.
    const good = await connect(s.url, 'good', TEST_TOKEN, P64);
    for (let i = 0; i < 20; i++) {
      await good.call(encodeWrite(100 + i, [i], [page(i, P64)], P64));
      expect((await good.call(encodeRead(200 + i, [i])) as { data: Uint8Array }).data).toEqual(page(i, P64));
    }
    // A hog that reads again gets every reply, in order, with the right bytes.
    const h = hogs[0]!;
    h.ws.resume();
    for (let i = 0; i < 60; i++) {
      const r = await h.next() as { id: number; data: Uint8Array };
      expect(r.id).toBe(10 + i);
      for (let k = 0; k < 16; k++) expect(r.data[k * P64 + 5]).toBe(k + 1);
    }
    expect(s.budget.peak).toBeLessThanOrEqual(8 * MiB);
  });

  test('a reader that never drains is cut off after slowReaderMs (SLOW_READER)', async () => {
    const errs = errors();
    try {
      const s = await serve({ maxBufferedBytes: 2 * MiB, maxTotalBufferedBytes: 16 * MiB, maxPayload: 4 * MiB, slowReaderMs: 300 });
      const w = await connect(s.url, 'slow', TEST_TOKEN, P64);
      await w.call(encodeWrite(2, [0], [page(9, P64)], P64));
      const hog = await connect(s.url, 'slow', TEST_TOKEN, P64);
      hog.ws.pause();
      hog.send(readBatch(200, 10));
      await until(() => errs.events.some((e) => e.status === Status.SLOW_READER));
      await until(() => s.connectionCount.open === 1);
      expect(s.budget.used).toBe(0); // its replies were released with it
      hog.ws.resume(); // a paused socket does not notice the reset
      // Terminated: a close frame would have waited behind the unread replies.
      expect((await hog.closed).code).toBe(1006);
      expect((await w.call(encodeRead(3, [0])) as { data: Uint8Array }).data).toEqual(page(9, P64));
    } finally {
      errs.stop();
    }
  });

  test('one small READ per message from a reader that stops reading: the gathered reply buffers it pins are charged', async () => {
    // Each message gets a gathered reply buffer sized for its replies (not a 256 KiB one), and that
    // whole buffer is what the budget counts: 20,000 messages pin at most the 4 MiB budget in user
    // space. Were the buffers 256 KiB and only their replies charged, ~1,000 of them would pin 250 MiB.
    const s = await serve({ maxBufferedBytes: 4 * MiB, maxTotalBufferedBytes: 16 * MiB, maxPayload: 4 * MiB, slowReaderMs: 600_000 });
    const w = await connect(s.url, 'drip');
    await w.call(encodeWrite(2, [3], [page(7)], PS));
    const hog = await connect(s.url, 'drip');
    hog.ws.pause();
    const before = process.memoryUsage().arrayBuffers;
    const N = 20_000;
    for (let i = 0; i < N; i++) hog.send(encodeRead(10 + i, [3]));
    await until(() => s.budget.used >= 3 * MiB); // the kernel's socket buffers are full, the budget nearly
    await new Promise((r) => setTimeout(r, 200)); // and it stays bounded: the rest of the messages wait
    expect(s.budget.used).toBeLessThanOrEqual(4 * MiB);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
    hog.ws.resume();
    for (let i = 0; i < N; i++) {
      const r = await hog.next() as { id: number; data: Uint8Array };
      expect(r.id).toBe(10 + i);
      if (i % 997 === 0) expect(r.data).toEqual(page(7));
    }
    expect(s.budget.peak).toBeLessThanOrEqual(16 * MiB);
  });

  test('a message of 100,000 small requests is answered in bounded turns, interleaved with other clients', async () => {
    const s = await serve({ maxBufferedBytes: 1 * MiB, maxTotalBufferedBytes: 16 * MiB, maxPayload: 4 * MiB });
    const flood = await connect(s.url, 'flood');
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 100_000; i++) frames.push(encodeStats(10 + i));
    flood.send(Buffer.concat(frames)); // 1.2 MB in; ~370 bytes of reply each: 37 MB out if built at once
    const other = await connect(s.url, 'other');
    expect(await other.call(encodeRead(2, [1]))).toMatchObject({ op: Op.READ_OK });
    let n = 0;
    for (; n < 100_000; n++) expect((await flood.next()).id).toBe(10 + n);
    expect(s.budget.peak).toBeLessThanOrEqual(16 * MiB);
  });
});

describe('connections without HELLO', () => {
  test('idle upgrades cannot lock out a legitimate client', async () => {
    const s = await serve({ maxUnauthenticatedPerAddress: 8, maxUnauthenticated: 32, maxConnections: 16 });
    const idle: WebSocket[] = [];
    const closes: Promise<{ code: number; reason: string }>[] = [];
    for (let i = 0; i < 120; i++) {
      const ws = new WebSocket(s.url, { perMessageDeflate: false });
      ws.on('error', () => {});
      idle.push(ws);
      closes.push(new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() }))));
    }
    await Promise.all(idle.map((ws) => new Promise((r) => { ws.once('open', r); ws.once('close', r); })));
    await new Promise((r) => setTimeout(r, 100));
    expect(s.connectionCount.unauthenticated).toBeLessThanOrEqual(8);
    // The legitimate client connects at once and is served (before: HTTP 503 for 10 s).
    const c = await connect(s.url, 'legit');
    expect(await c.call(encodeRead(2, [1]))).toMatchObject({ op: Op.READ_OK });
    const first = await closes[0]!;
    expect(first.code).toBe(1008);
    expect(first.reason).toMatch(/^TOO_MANY_UNAUTHENTICATED: more than 8 connections without HELLO from /);
    for (const ws of idle) ws.terminate();
  });

  test('a plain HTTP request is answered 426 and closed', async () => {
    const s = await serve();
    const status = await new Promise<number>((resolve, reject) => {
      get(`http://127.0.0.1:${s.port}/`, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    });
    expect(status).toBe(426);
  });
});

describe('STATS is scoped to the caller', () => {
  test('a client sees its own namespace and counters; the admin token sees all', async () => {
    const s = await serve();
    const a = await connect(s.url, 'alpha');
    const b = await connect(s.url, 'beta');
    await a.call(encodeWrite(2, [1, 2, 3], [page(1), page(2), page(3)], PS));
    await b.call(encodeWrite(2, [1], [page(1)], PS));
    await b.call(encodeRead(3, [1]));
    const sa = await a.call(encodeStats(9)) as StatsOk;
    expect(sa.namespaceCount).toBe(1);
    expect(sa.namespaces).toEqual([{ name: 'alpha', pageSize: PS, pages: 3 }]);
    expect(sa).toMatchObject({ writes: 1, pagesWritten: 3, reads: 0, connections: 1 });
    expect(sa.usedBytes).toBe(4 * PS); // server-wide: clients place slabs by free capacity
    const sb = await b.call(encodeStats(9)) as StatsOk;
    expect(sb.namespaces.map((n) => n.name)).toEqual(['beta']);
    expect(sb).toMatchObject({ writes: 1, reads: 1, pagesRead: 1 });
    const admin = await connect(s.url, 'ops', ADMIN);
    const all = await admin.call(encodeStats(9)) as StatsOk;
    expect(all.namespaces.map((n) => n.name).sort()).toEqual(['alpha', 'beta', 'ops']);
    expect(all).toMatchObject({ writes: 2, reads: 1, connections: 3 });
  });
});
