/**
 * The `tcp://` transport: the memory server's TCP listener (same protocol, same Connection as ws)
 * against bare and hostile TCP clients (frames split anywhere, many in one write, broken length
 * fields, oversized frames, no HELLO, wrong token, too many connections, random bytes), in-process
 * with small limits; then the runtime through real `farmem serve` processes over tcp:// — every
 * workload at tiny pools, three servers with replication 2, ws and tcp mixed, malformed frames on a
 * real server's tcp port, a wrong token, and a server killed mid-run (the replicated run completes identical; a lone server's run fails clearly).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { encodeHello, encodeRead, encodeWrite, Op, PROTOCOL_VERSION, Status, type Message } from '../host/protocol/index.js';
import { MemoryServer, type MemoryServerOptions } from '../host/server/index.js';
import { RemoteStore } from '../host/store/remote.js';
import { loadWorkload, workloadPath, WORKLOADS, type WorkloadExports } from '../host/workloads.js';
import { page, PS, Raw, TEST_TOKEN } from './support/raw-client.js';
import { RawTcp } from './support/raw-tcp.js';
import { faulting, startServers, type Servers } from './support/servers.js';

const CLI = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));
const traceDir = mkdtempSync(join(tmpdir(), 'farmem-tcp-'));

describe('the server\'s tcp:// listener', () => {
  const started: MemoryServer[] = [];
  const clients: Array<RawTcp | Raw> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) (c instanceof RawTcp ? c.destroy() : c.ws.terminate());
    await Promise.all(started.splice(0).map((s) => s.close()));
  });
  async function serve(options: Partial<MemoryServerOptions> = {}): Promise<MemoryServer> {
    const s = new MemoryServer({ capacity: 64 << 20, token: TEST_TOKEN, tcpPort: 0, ...options });
    await s.listen();
    started.push(s);
    return s;
  }
  function raw(url: string): RawTcp {
    const c = new RawTcp(url);
    clients.push(c);
    return c;
  }
  /** The next reply is ERROR `status` (matching `message`), then the server closes the socket. */
  async function refused(c: RawTcp, status: Status, message: RegExp): Promise<void> {
    const m = await c.next();
    expect(m).toMatchObject({ op: Op.ERROR, status });
    expect((m as { message: string }).message).toMatch(message);
    await c.closed;
  }

  it('speaks the same protocol as ws: frames split byte by byte, 1000 frames in one write, pages shared with ws clients', async () => {
    const s = await serve();
    expect(s.tcpUrl).toBe(`tcp://127.0.0.1:${s.tcpPort}`);
    const c = raw(s.tcpUrl!);
    await c.opened;
    const hello = encodeHello(1, PROTOCOL_VERSION, PS, TEST_TOKEN, 'shared');
    for (const b of hello) c.send(Uint8Array.of(b)); // one byte per write: the reader keeps every partial frame
    expect(await c.next()).toMatchObject({ op: Op.HELLO_OK, id: 1, pageSize: PS });
    const write = encodeWrite(2, [0, 1, 2], [page(1), page(2), page(3)], PS);
    c.send(write.subarray(0, 7));
    c.send(write.subarray(7));
    expect(await c.next()).toMatchObject({ op: Op.WRITE_OK, id: 2, count: 3 });
    const reads = Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeRead(10 + i, [i % 3])));
    c.send(reads);
    for (let i = 0; i < 1000; i++) {
      const m = await c.next() as Extract<Message, { op: Op.READ_OK }>;
      expect(m.op).toBe(Op.READ_OK);
      expect(m.id).toBe(10 + i);
      expect(m.data[0]).toBe(1 + (i % 3));
    }
    const ws = await Raw.connect(s.url, 'shared');
    clients.push(ws);
    const m = await ws.call(encodeRead(5, [2])) as Extract<Message, { op: Op.READ_OK }>;
    expect(Buffer.from(m.data)).toEqual(page(3));
    expect(c.error).toBeNull();
  });

  it('answers MALFORMED_FRAME to a length field shorter than a header, and keeps serving others', async () => {
    const s = await serve();
    const c = raw(s.tcpUrl!);
    await c.opened;
    c.send(Uint8Array.of(3, 0, 0, 0, 1, 2, 3, 4));
    await refused(c, Status.MALFORMED_FRAME, /length field says 3 bytes/);
    const ok = await RawTcp.connect(s.tcpUrl!);
    clients.push(ok);
    expect(await ok.call(encodeRead(2, [0]))).toMatchObject({ op: Op.READ_OK, id: 2 });
  });

  it('refuses a frame over maxPayload as soon as its length field arrives', async () => {
    const s = await serve({ maxPayload: 64 * 1024 });
    const c = raw(s.tcpUrl!);
    await c.opened;
    c.send(Uint8Array.of(0, 0, 0x10, 0)); // 1 MiB announced, nothing of it sent
    await refused(c, Status.TOO_LARGE, /exceeds the limit of 65536/);
  });

  it('refuses a page op before HELLO, a wrong token, and closes a socket that never says HELLO', async () => {
    const s = await serve({ helloTimeoutMs: 200 });
    const early = raw(s.tcpUrl!);
    await early.opened;
    early.send(encodeRead(7, [0]));
    await refused(early, Status.NOT_HELLO, /before HELLO/);
    const wrong = raw(s.tcpUrl!);
    await wrong.opened;
    wrong.send(encodeHello(1, PROTOCOL_VERSION, PS, 'not-the-token', 'ns'));
    await refused(wrong, Status.BAD_TOKEN, /bad token/);
    const idle = raw(s.tcpUrl!);
    await idle.opened;
    await refused(idle, Status.NOT_HELLO, /no HELLO within 200 ms/);
    for (let i = 0; i < 500 && s.connectionCount.open > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(s.connectionCount.open).toBe(0); // every refused socket is gone on the server's side too
  });

  it('refuses connections past maxConnections with TOO_MANY_CONNECTIONS; a RemoteStore gets the typed error', async () => {
    const s = await serve({ maxConnections: 1 });
    clients.push(await RawTcp.connect(s.tcpUrl!));
    const second = raw(s.tcpUrl!);
    await refused(second, Status.TOO_MANY_CONNECTIONS, /too many connections/);
    await expect(RemoteStore.connect({ urls: [s.tcpUrl!], token: TEST_TOKEN, namespace: 'x', pageSize: PS, timeoutMs: 2000 }))
      .rejects.toMatchObject({ code: 'FM_ERR_PROTOCOL_TOO_MANY_CONNECTIONS' });
  });

  it('stays up through connections of random bytes and still serves a fresh client', async () => {
    const s = await serve();
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 100; i++) {
      const c = raw(s.tcpUrl!);
      await c.opened;
      // Half start like a HELLO (a plausible length), half are noise from the first byte.
      const junk = Uint8Array.from({ length: 16 + (i % 64) }, rnd);
      if (i % 2 === 0) junk.set([junk.length, 0, 0, 0, Op.HELLO]);
      c.send(junk);
      if (i % 3 === 0) c.destroy();
    }
    const ok = await RawTcp.connect(s.tcpUrl!, 'after');
    clients.push(ok);
    expect(await ok.call(encodeRead(2, [0]))).toMatchObject({ op: Op.READ_OK });
  });
});

describe('the runtime through farmem serve over tcp://', () => {
  const TOKEN = 'tcp-test-token';
  const SIZE = 128 * 1024;
  const SEED = 11;
  let servers: Servers;
  beforeAll(async () => {
    servers = await startServers(3, { capacity: '256MiB', token: TOKEN, tcp: true });
  });
  afterAll(async () => {
    await servers?.close();
  });

  async function reference(name: string, size = SIZE, seed = SEED): Promise<bigint> {
    const { instance } = await WebAssembly.instantiate(loadWorkload(name));
    return (instance.exports as unknown as WorkloadExports).run(size, seed);
  }

  async function run(name: string, urls: string[], local: { bytes: number } | { fraction: number }, replication = 1) {
    const fm = await instantiate(loadWorkload(name), {}, { pageSize: 4096, local, remote: { urls, token: TOKEN, replication } });
    try {
      const result = (fm.exports as unknown as WorkloadExports).run(SIZE, SEED);
      return { result, stats: fm.stats() };
    } finally {
      await fm.close();
    }
  }

  it.each(WORKLOADS.map((w) => w.name))('%s matches the original through one tcp:// server with 8 frames', async (name) => {
    const { result, stats } = await run(name, servers.tcpUrls.slice(0, 1), { bytes: 8 * 4096 });
    expect(result).toBe(await reference(name));
    expect(stats.majorFaults).toBeGreaterThan(0);
    expect(stats.writeBacks).toBeGreaterThan(0);
    expect(stats.store).toBe(servers.tcpUrls[0]);
  });

  it('64 KiB pages (every reply spans socket reads and is copied into its page piece by piece) match the original', async () => {
    for (const name of ['seqscan', 'stride']) {
      const fm = await instantiate(loadWorkload(name), {}, { pageSize: 65536, local: { fraction: 0.25 }, remote: { urls: servers.tcpUrls.slice(0, 1), token: TOKEN } });
      try {
        expect((fm.exports as unknown as WorkloadExports).run(1 << 20, SEED)).toBe(await reference(name, 1 << 20));
        expect(fm.stats().majorFaults - fm.stats().zeroFills).toBeGreaterThan(20);
      } finally {
        await fm.close();
      }
    }
  });

  it('places and replicates across three tcp:// servers (and across ws and tcp mixed) exactly as over ws', async () => {
    for (const name of ['hashtable', 'pointerchase', 'seqscan']) {
      const want = await reference(name);
      expect((await run(name, servers.tcpUrls, { fraction: 0.05 }, 2)).result).toBe(want);
      const mixed = [servers.tcpUrls[0]!, servers.urls[1]!, servers.tcpUrls[2]!];
      const { result, stats } = await run(name, mixed, { fraction: 0.05 }, 2);
      expect(result).toBe(want);
      expect(stats.evictions).toBeGreaterThan(0);
    }
  });

  it('splits a major fault\'s wait into the I/O worker\'s hand-offs, one record per demand read waited on', async () => {
    const fm = await instantiate(loadWorkload('hashtable'), {}, { pageSize: 4096, local: { bytes: 8 * 4096 }, latency: true, remote: { urls: servers.tcpUrls.slice(0, 1), token: TOKEN } });
    try {
      expect((fm.exports as unknown as WorkloadExports).run(SIZE, SEED)).toBe(await reference('hashtable'));
      const s = fm.stats();
      const handoffs = s.latency!.handoffs!;
      // Never-written pages are zero-filled without a read; the other major faults wait on one
      // (no prefetcher: nothing else is waited on).
      const n = handoffs['worker wake'].count;
      expect(n).toBeGreaterThan(0.9 * (s.majorFaults - s.zeroFills));
      expect(n).toBeLessThanOrEqual(s.majorFaults - s.zeroFills);
      expect(handoffs.store.count).toBe(n);
      expect(handoffs['guest wake'].count).toBe(n);
      // Whichever way the guest waited (wait-chooser.ts), it says so: a fraction of those waits.
      expect(s.latency!.spunWaits).toBeGreaterThanOrEqual(0);
      expect(s.latency!.spunWaits).toBeLessThanOrEqual(1);
    } finally {
      await fm.close();
    }
  });

  it('a real farmem serve answers malformed frames on its tcp port and keeps serving', async () => {
    const bad = new RawTcp(servers.tcpUrls[0]!);
    await bad.opened;
    bad.send(Uint8Array.of(0xff, 0xff, 0xff, 0xff)); // a 4 GiB frame announced
    expect(await bad.next()).toMatchObject({ op: Op.ERROR, status: Status.TOO_LARGE });
    await bad.closed;
    const hello = new RawTcp(servers.tcpUrls[0]!);
    await hello.opened;
    const frame = encodeHello(1, PROTOCOL_VERSION, PS, TOKEN, 'ns');
    frame[frame.length - 1] = 0xff; // the namespace's last byte is no longer UTF-8
    hello.send(frame);
    expect(await hello.next()).toMatchObject({ op: Op.ERROR, status: Status.MALFORMED_FRAME });
    await hello.closed;
    const ok = await RawTcp.connect(servers.tcpUrls[0]!, 'after-malformed', TOKEN);
    expect(await ok.call(encodeRead(2, [0]))).toMatchObject({ op: Op.READ_OK, id: 2 });
    ok.destroy();
  });

  it('refuses a wrong token with AuthError', async () => {
    await expect(instantiate(loadWorkload('seqscan'), {}, { remote: { urls: servers.tcpUrls.slice(0, 1), token: 'wrong' } }))
      .rejects.toMatchObject({ name: 'AuthError', code: 'FM_ERR_AUTH' });
  });

  /** `farmem run seqscan` (or `workload`) through `store` with a trace, the server(s) killed once it faults. */
  async function killedMidRun(store: string, extra: string[], kill: () => Promise<void>, workload = 'seqscan', size = 32 << 20) {
    const trace = join(traceDir, `${workload}-${extra.length}.fmt`);
    const child = spawn(process.execPath, [CLI, 'run', workloadPath(workload), '--invoke', 'run', String(size), '1',
      '--store', store, '--token', TOKEN, '--no-cache', '--trace', trace, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.on('data', (d) => { stderr += String(d); });
    await faulting(trace);
    expect(child.exitCode).toBeNull(); // still running when the server dies
    await kill();
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(-999); }, 120_000);
      child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    return { code, stdout, stderr };
  }

  it('with replication 2, a run over tcp:// survives one of three servers killed mid-run, output identical', async () => {
    const trio = await startServers(3, { capacity: '256MiB', token: TOKEN, tcp: true });
    try {
      const r = await killedMidRun(trio.tcpUrls.join(','), ['--local', '5%', '--replication', '2'], () => trio.kill(1));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(String(await reference('seqscan', 32 << 20, 1)));
    } finally {
      await trio.close();
    }
  });

  it('ends with a typed error, not a hang, when its only tcp:// server is killed mid-run', async () => {
    const lone = await startServers(1, { capacity: '256MiB', token: TOKEN, tcp: true });
    try {
      const r = await killedMidRun(lone.tcpUrls[0]!, ['--local', '2%'], () => lone.kill(0), 'pointerchase', 64 << 20);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^\(farmem run\) .*tcp:\/\/127\.0\.0\.1:\d+.*\[FM_ERR_(SERVER_UNREACHABLE|TIMEOUT)\]/im);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await lone.close();
    }
  });
});
