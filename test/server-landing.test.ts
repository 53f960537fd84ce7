/**
 * @fileoverview WRITEs that land in their slots (host/server/connection.ts): a WRITE whose head has
 * arrived but not all of its data has its pages copied into slots of its own as the data comes, and
 * stored when its turn comes. Over a real server's tcp:// port, with the client's byte stream cut
 * into random pieces: the pages are intact, a READ sent before a WRITE of the same page still sees
 * the old bytes, a WRITE that does not fit is refused whole, and a connection dropped in the middle
 * of a WRITE gives its slots back.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { encodeFree, encodeRead, encodeWrite, Op, type Message } from '../host/protocol/index.js';
import { MemoryServer } from '../host/server/index.js';
import { RawTcp } from './support/raw-tcp.js';
import { TEST_TOKEN } from './support/raw-client.js';

let server: MemoryServer;
let url: string;

beforeAll(async () => {
  server = new MemoryServer({ capacity: 16 << 20, token: TEST_TOKEN, tcpPort: 0, slabBytes: 1 << 20 });
  await server.listen();
  url = `tcp://127.0.0.1:${server.tcpPort}`;
});
afterAll(async () => {
  await server.close();
});

function content(page: number, salt: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE(((page * 2654435761) ^ (salt * 40503) ^ i) >>> 0, i);
  return b;
}

/** Sends `bytes` in pieces of 1..max bytes, one per turn of the event loop, so the server reads them apart. */
async function sendCut(c: RawTcp, bytes: Buffer, max: number, seed: number): Promise<void> {
  let s = seed >>> 0;
  for (let at = 0; at < bytes.length;) {
    s = (s * 1664525 + 1013904223) >>> 0;
    const n = Math.min(bytes.length - at, 1 + (s % max));
    c.send(bytes.subarray(at, at + n));
    at += n;
    await new Promise((r) => setImmediate(r));
  }
}

function dataOf(m: Message): Buffer {
  expect(m.op).toBe(Op.READ_OK);
  return Buffer.from((m as { data: Uint8Array }).data);
}

for (const [pageSize, perWrite, max] of [[65536, 1, 20_000], [65536, 4, 70_000], [4096, 16, 3000]] as const) {
  test(`${pageSize} B pages, ${perWrite} per WRITE, pieces of 1..${max} bytes: stored intact, READs before a WRITE see the old bytes`, async () => {
    const c = await RawTcp.connect(url, `land-${pageSize}-${perWrite}`, TEST_TOKEN, pageSize);
    const pages = Array.from({ length: 8 * perWrite }, (_, i) => i);
    const landed0 = server.arena.landedPages;
    const writes = (salt: number, id: number) => Buffer.concat(Array.from({ length: pages.length / perWrite }, (_, w) => {
      const batch = pages.slice(w * perWrite, (w + 1) * perWrite);
      return encodeWrite(id + w, batch, batch.map((p) => content(p, salt, pageSize)), pageSize);
    }));
    await sendCut(c, writes(1, 100), max, pageSize + perWrite);
    for (let w = 0; w < pages.length / perWrite; w++) expect(await c.next()).toMatchObject({ op: Op.WRITE_OK, id: 100 + w });
    // In one stream: READ every page, overwrite every page, READ every page again.
    const reads = (id: number) => Buffer.concat(pages.map((p) => encodeRead(id + p, [p])));
    await sendCut(c, Buffer.concat([reads(1000), writes(2, 200), reads(2000)]), max, 7);
    for (const p of pages) expect(dataOf(await c.next()).equals(content(p, 1, pageSize))).toBe(true);
    for (let w = 0; w < pages.length / perWrite; w++) expect(await c.next()).toMatchObject({ op: Op.WRITE_OK, id: 200 + w });
    for (const p of pages) expect(dataOf(await c.next()).equals(content(p, 2, pageSize))).toBe(true);
    expect(server.arena.landedPages - landed0).toBeGreaterThan(0); // the landing path ran
    expect(server.arena.landingBytes).toBe(0);
    expect(await c.call(encodeFree(9000, pages))).toMatchObject({ op: Op.OK });
    c.destroy();
  });
}

test('a WRITE arriving in pieces that does not fit is refused whole; the server keeps serving', async () => {
  const P = 65536;
  const c = await RawTcp.connect(url, 'land-full', TEST_TOKEN, P);
  const held = Array.from({ length: 200 }, (_, i) => 1000 + i); // 12.5 of the 16 MiB
  expect(await c.call(encodeWrite(9, held, held.map((p) => content(p, 3, P)), P))).toMatchObject({ op: Op.WRITE_OK });
  const used0 = server.arena.usedBytes;
  const pages = Array.from({ length: 100 }, (_, i) => i); // 6.25 MiB more
  await sendCut(c, encodeWrite(1, pages, pages.map((p) => content(p, 3, P)), P), 60_000, 3);
  expect(await c.next()).toMatchObject({ op: Op.ERROR, id: 1, message: expect.stringContaining('does not fit') });
  expect(server.arena.usedBytes).toBe(used0);
  expect(await c.call(encodeFree(8, held))).toMatchObject({ op: Op.OK });
  expect(server.arena.landingBytes).toBe(0);
  await sendCut(c, encodeWrite(2, [5], [content(5, 4, P)], P), 20_000, 4);
  expect(await c.next()).toMatchObject({ op: Op.WRITE_OK, id: 2 });
  expect(dataOf(await c.call(encodeRead(3, [5]))).equals(content(5, 4, P))).toBe(true);
  c.destroy();
});

test('a connection dropped in the middle of a WRITE gives the slots it was landing in back', async () => {
  const P = 65536;
  const c = await RawTcp.connect(url, 'land-drop', TEST_TOKEN, P);
  const used0 = server.arena.usedBytes;
  const pages = [0, 1, 2, 3];
  const frame = encodeWrite(1, pages, pages.map((p) => content(p, 5, P)), P);
  await sendCut(c, frame.subarray(0, frame.length >> 1), 30_000, 5);
  const deadline = Date.now() + 5000;
  while (server.arena.landingBytes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(server.arena.landingBytes).toBe(4 * P);
  const free0 = server.arena.pool(P).available;
  c.destroy();
  while (server.arena.landingBytes !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(server.arena.landingBytes).toBe(0);
  expect(server.arena.pool(P).available).toBe(free0 + 4);
  expect(server.arena.usedBytes).toBe(used0); // none of the WRITE was stored
});
