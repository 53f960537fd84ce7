/**
 * @fileoverview The memory server's replies sent straight from arena slots (pages over 16 KiB): while a
 * READ_OK still shows a slot (its client is not reading, so the reply sits unsent in user space),
 * a WRITE of that page must not change the bytes the reply delivers, a FREE must not let the slot
 * go to another page (of this or another namespace), and once the replies are written every slot
 * is unpinned and freed slots are back in the pool (no leak). Real server, real ws clients; the
 * client stops reading (`ws.pause()`) until the kernel's socket buffers are full, so replies stay
 * pinned, and each test checks that the pinned path really ran (copy-on-write or pinned counts).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { encodeFree, encodeRead, encodeWrite, Op, type Message } from '../host/protocol/index.js';
import { MemoryServer } from '../host/server/index.js';
import { Raw, TEST_TOKEN } from './support/raw-client.js';

const P = 65536;
/** 320 pages: 20 MiB of replies, well past what loopback socket buffers hold (≤ 4 MiB send + 6 MiB receive here). */
const N = 320;

let server: MemoryServer;

beforeAll(async () => {
  // The send budget admits every reply of a test at once, so the server answers all of them (and
  // handles the WRITE or FREE queued after them) while the client reads nothing.
  server = new MemoryServer({ capacity: 64 << 20, token: TEST_TOKEN, slabBytes: 1 << 20, maxBufferedBytes: 48 << 20, maxTotalBufferedBytes: 96 << 20 });
  await server.listen();
});
afterAll(async () => {
  await server.close();
});

function content(page: number, salt: number): Buffer {
  const b = Buffer.alloc(P, (page + salt) & 0xff);
  b.writeUInt32LE(page, 0);
  b.writeUInt32LE(salt, P - 4);
  return b;
}

async function writeAll(c: Raw, pages: number[], salt: number, id: number): Promise<void> {
  for (let i = 0; i < pages.length; i += 32) {
    const batch = pages.slice(i, i + 32);
    expect(await c.call(encodeWrite(id + i, batch, batch.map((p) => content(p, salt)), P))).toMatchObject({ op: Op.WRITE_OK });
  }
}

/** Resolves once the server has handled `n` more requests of kind `what` than at `from`. */
async function handled(what: 'reads' | 'writes' | 'frees', from: number, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (server.counters[what] < from + n) {
    if (Date.now() > deadline) throw new Error(`server handled ${server.counters[what] - from} of ${n} ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function dataOf(m: Message): Uint8Array {
  expect(m.op).toBe(Op.READ_OK);
  return (m as { data: Uint8Array }).data;
}

const pool = () => server.arena.pool(P);
/** Every slot of the pool is free: nothing pinned, nothing leaked. */
const allSlotsFree = () => pool().available * (P + pool().headroom) === pool().slabBytes;

test('a WRITE while READ replies of the page are unsent goes to a new slot: the replies keep the bytes the READ saw', async () => {
  const c = await Raw.connect(server.url, 'zc-write', TEST_TOKEN, P);
  const pages = Array.from({ length: N }, (_, i) => i);
  await writeAll(c, pages, 1, 100);
  const used = server.arena.usedBytes;
  const cow0 = pool().copiesOnWrite;

  c.ws.pause();
  const reads0 = server.counters.reads;
  const writes0 = server.counters.writes;
  // READ every page, then overwrite every page, then READ every page again: one connection, in
  // order (messages stay under the server's maxPayload).
  c.send(Buffer.concat(pages.map((p) => encodeRead(1000 + p, [p]))));
  for (let i = 0; i < N; i += 32) c.send(encodeWrite(5000 + i, pages.slice(i, i + 32), pages.slice(i, i + 32).map((p) => content(p, 2)), P));
  c.send(Buffer.concat(pages.map((p) => encodeRead(2000 + p, [p]))));
  await handled('writes', writes0, N / 32);
  await handled('reads', reads0, 2 * N);
  // Replies the kernel had no room for are still pinned; the WRITE moved those pages.
  expect(pool().pinned).toBeGreaterThan(0);
  const moved = pool().copiesOnWrite - cow0;
  expect(moved).toBeGreaterThan(0);

  c.ws.resume();
  for (const p of pages) {
    const m = await c.next();
    expect(m.id).toBe(1000 + p);
    expect(Buffer.from(dataOf(m)).equals(content(p, 1))).toBe(true);
  }
  for (let i = 0; i < N; i += 32) expect(await c.next()).toMatchObject({ op: Op.WRITE_OK, id: 5000 + i });
  for (const p of pages) {
    const m = await c.next();
    expect(m.id).toBe(2000 + p);
    expect(Buffer.from(dataOf(m)).equals(content(p, 2))).toBe(true);
  }
  // Every reply was written: nothing pinned, the moved pages' old slots are free again, and the
  // namespace still holds exactly its pages (copy-on-write is not counted as stored data).
  expect(pool().pinned).toBe(0);
  expect(server.arena.usedBytes).toBe(used);
  expect(await c.call(encodeFree(9000, pages))).toMatchObject({ op: Op.OK });
  expect(server.arena.usedBytes).toBe(used - N * P);
  expect(allSlotsFree()).toBe(true);
  c.close();
});

test('a FREE while READ replies are unsent keeps the slots from other pages and namespaces until the replies are written', async () => {
  const a = await Raw.connect(server.url, 'zc-free-a', TEST_TOKEN, P);
  const b = await Raw.connect(server.url, 'zc-free-b', TEST_TOKEN, P);
  const pages = Array.from({ length: N }, (_, i) => i);
  await writeAll(a, pages, 7, 100);

  a.ws.pause();
  const reads0 = server.counters.reads;
  const frees0 = server.counters.frees;
  a.send(Buffer.concat([...pages.map((p) => encodeRead(1000 + p, [p])), encodeFree(3000, pages)]));
  await handled('frees', frees0, 1);
  await handled('reads', reads0, N);
  const pinned = pool().pinned;
  expect(pinned).toBeGreaterThan(0);
  // Another tenant writes as many pages as were freed: none of them may land in a slot a reply still shows.
  await writeAll(b, pages, 0x55, 100);
  // And the freeing tenant writes its pages again: new slots as well.
  const again = pages.slice(0, 16);
  a.send(encodeWrite(4000, again, again.map((p) => content(p, 9)), P));

  a.ws.resume();
  for (const p of pages) {
    const m = await a.next();
    expect(m.id).toBe(1000 + p);
    expect(Buffer.from(dataOf(m)).equals(content(p, 7))).toBe(true);
  }
  expect(await a.next()).toMatchObject({ op: Op.OK, id: 3000 });
  expect(await a.next()).toMatchObject({ op: Op.WRITE_OK, id: 4000 });
  expect(pool().pinned).toBe(0);
  for (const p of [0, 17, N - 1]) expect(Buffer.from(dataOf(await b.call(encodeRead(7000 + p, [p])))).equals(content(p, 0x55))).toBe(true);
  expect(await b.call(encodeFree(9000, pages))).toMatchObject({ op: Op.OK });
  expect(await a.call(encodeFree(9001, again))).toMatchObject({ op: Op.OK });
  expect(server.arena.usedBytes).toBe(0);
  expect(allSlotsFree()).toBe(true);
  a.close();
  b.close();
});

test('a connection dropped with replies unsent unpins their slots', async () => {
  const c = await Raw.connect(server.url, 'zc-drop', TEST_TOKEN, P);
  const pages = Array.from({ length: N }, (_, i) => i);
  await writeAll(c, pages, 3, 100);
  c.ws.pause();
  const reads0 = server.counters.reads;
  c.send(Buffer.concat(pages.map((p) => encodeRead(1000 + p, [p]))));
  await handled('reads', reads0, N);
  expect(pool().pinned).toBeGreaterThan(0);
  c.ws.terminate();
  const deadline = Date.now() + 10_000;
  while (pool().pinned > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(pool().pinned).toBe(0);
  // The pages are still stored (they outlive the connection); freeing them returns every slot.
  const d = await Raw.connect(server.url, 'zc-drop', TEST_TOKEN, P);
  expect(Buffer.from(dataOf(await d.call(encodeRead(5, [5])))).equals(content(5, 3))).toBe(true);
  expect(await d.call(encodeFree(6, pages))).toMatchObject({ op: Op.OK });
  expect(allSlotsFree()).toBe(true);
  d.close();
});

test('only page sizes whose replies are sent alone (over 16 KiB) get header room; a 32 KiB reply leaves from its slot too', async () => {
  const small = await Raw.connect(server.url, 'zc-16k', TEST_TOKEN, 16384);
  const mid = await Raw.connect(server.url, 'zc-32k', TEST_TOKEN, 32768);
  expect(await small.call(encodeWrite(2, [1], [Buffer.alloc(16384, 5)], 16384))).toMatchObject({ op: Op.WRITE_OK });
  expect(await mid.call(encodeWrite(2, [1], [Buffer.alloc(32768, 6)], 32768))).toMatchObject({ op: Op.WRITE_OK });
  expect(server.arena.pool(16384).headroom).toBe(0);
  expect(server.arena.pool(32768).headroom).toBe(64);
  // A pinned 32 KiB reply: the client stops reading, reads the page many times over (the first
  // READ pins the slot, the ones after it while pinned are copied) and overwrites it meanwhile.
  mid.ws.pause();
  const reads0 = server.counters.reads;
  const writes0 = server.counters.writes;
  const n = 640; // 20 MiB of replies
  mid.send(Buffer.concat(Array.from({ length: n }, (_, i) => encodeRead(100 + i, [1]))));
  mid.send(encodeWrite(5000, [1], [Buffer.alloc(32768, 7)], 32768));
  await handled('reads', reads0, n);
  await handled('writes', writes0, 1);
  expect(server.arena.pool(32768).pinned).toBeGreaterThan(0);
  mid.ws.resume();
  for (let i = 0; i < n; i++) {
    const m = await mid.next();
    expect(m.id).toBe(100 + i);
    expect(Buffer.from(dataOf(m)).equals(Buffer.alloc(32768, 6))).toBe(true);
  }
  expect(await mid.next()).toMatchObject({ op: Op.WRITE_OK, id: 5000 });
  expect(Buffer.from(dataOf(await mid.call(encodeRead(6000, [1])))).equals(Buffer.alloc(32768, 7))).toBe(true);
  expect(server.arena.pool(32768).pinned).toBe(0);
  expect(await mid.call(encodeFree(6001, [1]))).toMatchObject({ op: Op.OK });
  expect(await small.call(encodeFree(3, [1]))).toMatchObject({ op: Op.OK });
  small.close();
  mid.close();
});
