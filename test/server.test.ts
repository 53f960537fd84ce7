/**
 * @fileoverview Memory server tests with raw protocol frames: handshake, page ops, STATS,
 * capacity (all-or-nothing writes), namespace isolation, and hostile input (garbage, truncated
 * frames, huge counts, ops before HELLO, wrong token, text messages) — each answered with the right
 * ERROR, with the server still serving other clients. Most run an in-process `MemoryServer`; the
 * capacity, auth and shutdown tests run a real spawned `farmem serve`.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { encodeFree, encodeHello, encodeRead, encodeStats, encodeWrite, Op, PROTOCOL_VERSION, Status, type StatsOk } from '../host/protocol/index.js';
import { expectRefused, page, PS, Raw, TEST_TOKEN } from './support/raw-client.js';
import { MemoryServer, type ServerErrorEvent } from '../host/server/index.js';
import { OptionError } from '../host/errors.js';
import { startServers, type Servers } from './support/servers.js';

const TOKEN = TEST_TOKEN;

describe('in-process MemoryServer', () => {
  let server: MemoryServer;
  let url: string;
  const events: ServerErrorEvent[] = [];
  const onError = (m: unknown) => events.push(m as ServerErrorEvent);

  beforeAll(async () => {
    diagnostics_channel.subscribe('farmem:server:error', onError);
    server = new MemoryServer({ capacity: 8 * 1024 * 1024, token: TOKEN, slabBytes: 1 << 20, helloTimeoutMs: 2000 });
    await server.listen();
    url = server.url;
  });
  afterAll(async () => {
    diagnostics_channel.unsubscribe('farmem:server:error', onError);
    await server.close();
  });

  /** After every hostile test: a fresh client still gets served. */
  async function stillServes(): Promise<void> {
    const c = await Raw.connect(url, 'probe');
    expect(await c.call(encodeRead(2, [1]))).toMatchObject({ op: Op.READ_OK, id: 2, count: 1 });
    c.close();
  }

  test('write, read back, free, stats', async () => {
    const c = await Raw.connect(url, 'basic');
    expect(await c.call(encodeWrite(2, [5, 9], [page(5), page(9)], PS))).toEqual({ op: Op.WRITE_OK, id: 2, count: 2 });
    const r = await c.call(encodeRead(3, [9, 5, 7]));
    expect(r).toMatchObject({ op: Op.READ_OK, id: 3, count: 3 });
    const data = (r as { data: Uint8Array }).data;
    expect(data.subarray(0, PS)).toEqual(page(9));
    expect(data.subarray(PS, 2 * PS)).toEqual(page(5));
    expect(data.subarray(2 * PS)).toEqual(page(0)); // never written: zeros
    const s = await c.call(encodeStats(4)) as StatsOk;
    expect(s.op).toBe(Op.STATS_OK);
    expect(s.namespaces).toContainEqual({ name: 'basic', pageSize: PS, pages: 2 });
    expect(s.writes).toBeGreaterThanOrEqual(1);
    expect(await c.call(encodeFree(5, [5, 123]))).toEqual({ op: Op.OK, id: 5 });
    const r2 = await c.call(encodeRead(6, [5, 9]));
    expect((r2 as { data: Uint8Array }).data.subarray(0, PS)).toEqual(page(0));
    expect((r2 as { data: Uint8Array }).data.subarray(PS)).toEqual(page(9));
    c.close();
  });

  test('pipelined: 10,000 frames in one ws message get 10,000 replies in order', async () => {
    const c = await Raw.connect(url, 'pipe', TOKEN, 256);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 10_000; i++) frames.push(i % 2 ? encodeRead(10 + i, [i]) : encodeWrite(10 + i, [i + 1], [page(i & 0xff, 256)], 256));
    c.send(Buffer.concat(frames));
    for (let i = 0; i < 10_000; i++) {
      const m = await c.next();
      expect(m.id).toBe(10 + i);
      if (i % 2) {
        // Reads page i, written by request i-1 as page (i-1)+1 with fill (i-1) & 0xff.
        expect((m as { data: Uint8Array }).data[0]).toBe((i - 1) & 0xff);
      }
    }
    // Small replies to one incoming message leave gathered in a few ws messages (≤ 256 KiB each).
    expect(c.messages).toBeLessThan(100);
    c.close();
  });

  test('a frame sent as several ws fragments is reassembled', async () => {
    const c = await Raw.connect(url, 'frag');
    const f = encodeWrite(2, [1], [page(7)], PS);
    await new Promise<void>((r) => c.ws.send(f.subarray(0, 10), { fin: false }, () => r()));
    await new Promise<void>((r) => c.ws.send(f.subarray(10, 1000), { fin: false }, () => r()));
    c.ws.send(f.subarray(1000), { fin: true });
    expect(await c.next()).toEqual({ op: Op.WRITE_OK, id: 2, count: 1 });
    const r = await c.call(encodeRead(3, [1]));
    expect((r as { data: Uint8Array }).data).toEqual(page(7));
    c.close();
  });

  test('namespaces are isolated', async () => {
    const a = await Raw.connect(url, 'tenant-a');
    const b = await Raw.connect(url, 'tenant-b');
    await a.call(encodeWrite(2, [42], [page(0xaa)], PS));
    const r = await b.call(encodeRead(2, [42]));
    expect((r as { data: Uint8Array }).data).toEqual(page(0));
    await b.call(encodeFree(3, [42]));
    const ra = await a.call(encodeRead(3, [42]));
    expect((ra as { data: Uint8Array }).data).toEqual(page(0xaa));
    a.close();
    b.close();
  });

  test('op before HELLO: NOT_HELLO and close 1008', async () => {
    const before = events.length;
    const c = new Raw(url);
    await c.opened;
    c.send(encodeRead(7, [1]));
    await expectRefused(c, Status.NOT_HELLO, /before HELLO/, 1008);
    expect(events.length).toBeGreaterThan(before);
    expect(events.at(-1)!.status).toBe(Status.NOT_HELLO);
    await stillServes();
  });

  test('wrong token: BAD_TOKEN and close 1008', async () => {
    const c = new Raw(url);
    await c.opened;
    c.send(encodeHello(1, PROTOCOL_VERSION, PS, 'wrong', 'ns'));
    await expectRefused(c, Status.BAD_TOKEN, /bad token/, 1008);
    await stillServes();
  });

  test('other protocol version: VERSION_MISMATCH', async () => {
    const c = new Raw(url);
    await c.opened;
    c.send(encodeHello(1, 99, PS, TOKEN, 'ns'));
    await expectRefused(c, Status.VERSION_MISMATCH, /version 99 is not supported/, 1008);
  });

  test('a namespace keeps its page size: PAGE_SIZE_MISMATCH', async () => {
    const a = await Raw.connect(url, 'sized', TOKEN, 4096);
    await a.call(encodeWrite(2, [1], [page(1)], 4096));
    const c = new Raw(url);
    await c.opened;
    c.send(encodeHello(1, PROTOCOL_VERSION, 1024, TOKEN, 'sized'));
    await expectRefused(c, Status.PAGE_SIZE_MISMATCH, /holds pages of 4096 bytes, not 1024/, 1008);
    a.close();
  });

  test('garbage bytes: MALFORMED_FRAME and close 1002', async () => {
    const c = await Raw.connect(url);
    // A plausible length, then junk: 13 bytes, op 0x99, non-zero reserved bytes.
    c.send(Buffer.from('0d0000009912345678abcdef01', 'hex'));
    await expectRefused(c, Status.MALFORMED_FRAME, /malformed frame: reserved header bytes must be 0/, 1002);
    await stillServes();
  });

  test('an HTTP request line as a frame: TOO_LARGE (its length field is huge) and close', async () => {
    const c = await Raw.connect(url);
    c.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await expectRefused(c, Status.TOO_LARGE, /exceeds the limit/, 1002);
    await stillServes();
  });

  test('a frame split across ws messages is answered: ws carries a byte stream of frames, as tcp does', async () => {
    const c = await Raw.connect(url);
    const f = encodeRead(2, [1, 2, 3]);
    c.send(f.subarray(0, 3)); // not even the length field whole
    c.send(f.subarray(3, 20));
    c.send(Buffer.concat([f.subarray(20), encodeRead(3, [4])]));
    expect(await c.next()).toMatchObject({ op: Op.READ_OK, id: 2 });
    expect(await c.next()).toMatchObject({ op: Op.READ_OK, id: 3 });
    c.close();
  });

  test('a text message: MALFORMED_FRAME', async () => {
    const c = await Raw.connect(url);
    c.send('hello');
    await expectRefused(c, Status.MALFORMED_FRAME, /text message/, 1002);
  });

  test('an unknown op: UNKNOWN_OP', async () => {
    const c = await Raw.connect(url);
    const f = Buffer.from(encodeStats(3));
    f[4] = 0x33;
    c.send(f);
    await expectRefused(c, Status.UNKNOWN_OP, /unknown op 0x33/, 1002);
  });

  test('a huge page count: TOO_LARGE, and the connection stays usable', async () => {
    const c = await Raw.connect(url);
    const f = Buffer.from(encodeRead(3, [1]));
    f.writeUInt32LE(0x7fff_ffff, 12);
    expect(await c.call(f)).toMatchObject({ op: Op.ERROR, id: 3, status: Status.TOO_LARGE });
    // A READ whose reply (5000 × 4 KiB ≈ 20 MiB) would exceed the 16 MiB frame limit.
    expect(await c.call(encodeRead(4, new Uint32Array(5000)))).toMatchObject({ op: Op.ERROR, id: 4, status: Status.TOO_LARGE });
    expect(await c.call(encodeRead(5, [1]))).toMatchObject({ op: Op.READ_OK, id: 5 });
    c.close();
  });

  test('a length field above the frame limit: TOO_LARGE and close', async () => {
    const c = await Raw.connect(url);
    const f = Buffer.from(encodeRead(3, [1]));
    f.writeUInt32LE(0xffff_0000, 0);
    c.send(f);
    await expectRefused(c, Status.TOO_LARGE, /exceeds the limit/, 1002);
  });

  test('a second HELLO: NOT_HELLO', async () => {
    const c = await Raw.connect(url);
    c.send(encodeHello(9, PROTOCOL_VERSION, PS, TOKEN, 'other'));
    await expectRefused(c, Status.NOT_HELLO, /second HELLO/, 1008);
  });

  test('a client that never says HELLO is closed after helloTimeoutMs', async () => {
    const c = new Raw(url);
    await c.opened;
    await expectRefused(c, Status.NOT_HELLO, /no HELLO within 2000 ms/, 1008);
  });

  test('options are validated and name the culprit', () => {
    expect(() => new MemoryServer({ capacity: 1 << 20, token: '' })).toThrow(OptionError);
    expect(() => new MemoryServer({ capacity: 1 << 20, token: 't', slabBytes: 3 << 20 })).toThrow(/"slabBytes" must be a power of two/);
    expect(() => new MemoryServer({ capacity: 1 << 20, token: 't', maxpayload: 1 } as never)).toThrow(/Invalid option in MemoryServer options: "maxpayload"/);
  });
});

describe('spawned farmem serve', () => {
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers(1, { capacity: '64KiB', token: TOKEN, entry: 'cli' });
  });
  afterAll(async () => {
    await servers?.close();
  });

  test('full server: OUT_OF_CAPACITY, nothing of the write stored, connection stays open', async () => {
    const c = await Raw.connect(servers.urls[0]!, 'cap');
    const pages = Array.from({ length: 12 }, (_, i) => i);
    expect(await c.call(encodeWrite(2, pages, pages.map((i) => page(i + 1)), PS))).toEqual({ op: Op.WRITE_OK, id: 2, count: 12 });
    // 64 KiB = 16 pages; 12 held, a write of 5 new pages (plus 1 overwrite) does not fit.
    const more = [11, 12, 13, 14, 15, 16];
    const r = await c.call(encodeWrite(3, more, more.map(() => page(0xee)), PS));
    expect(r).toMatchObject({ op: Op.ERROR, id: 3, status: Status.OUT_OF_CAPACITY });
    expect((r as { message: string }).message).toMatch(/nothing of this WRITE was stored/);
    const back = await c.call(encodeRead(4, [11, 12])) as { data: Uint8Array };
    expect(back.data.subarray(0, PS)).toEqual(page(12)); // the overwrite did not happen either
    expect(back.data.subarray(PS)).toEqual(page(0));
    const s = await c.call(encodeStats(5)) as StatsOk;
    expect(s.usedBytes).toBe(12 * PS);
    expect(s.capacityBytes).toBe(64 * 1024);
    // Still fits exactly: 4 more pages.
    expect(await c.call(encodeWrite(6, [12, 13, 14, 15], [page(1), page(2), page(3), page(4)], PS))).toMatchObject({ op: Op.WRITE_OK });
    await c.call(encodeFree(7, [...pages, 12, 13, 14, 15]));
    c.close();
  });

  test('wrong token is refused by a real server', async () => {
    const c = new Raw(servers.urls[0]!);
    await c.opened;
    c.send(encodeHello(1, PROTOCOL_VERSION, PS, 'not-the-token', 'ns'));
    await expectRefused(c, Status.BAD_TOKEN, /bad token/, 1008);
  });

  test('SIGTERM shuts down gracefully (exit code 0, clients see close 1001)', async () => {
    const own = await startServers(1, { capacity: '1MiB', token: TOKEN, entry: 'cli' });
    const c = await Raw.connect(own.urls[0]!);
    const proc = own.processes[0]!;
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect((await c.closed).code).toBe(1001);
    expect(await exit).toBe(0);
    await own.close();
  });

  test('the CLI rejects a missing token with a clear message', async () => {
    const { spawnSync } = await import('node:child_process');
    const env = { ...process.env };
    delete env.FARMEM_TOKEN;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      const { Command } = await import('commander');
      const { registerServe } = await import(${JSON.stringify(new URL('../dist/host/cli/cmd/serve.js', import.meta.url).pathname)});
      const program = new Command('farmem'); registerServe(program);
      await program.parseAsync(['serve', '--port', '0'], { from: 'user' });`], { env, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^\(farmem serve\) --token \(or \$FARMEM_TOKEN\) is required/);
  });
});
