/**
 * @fileoverview Protocol fuzz against a live `farmem serve` process while a well-behaved client (a
 * `farmem run` child) runs a workload through it: more than 10,000 random and mutated frames over
 * hundreds of short connections (churn; some never say HELLO, some say it for namespaces that differ
 * from a victim's only by a BOM or a NUL), plus slow readers that ask for many MiB of replies and
 * never read them. Afterwards: the server is up and serves a fresh client, the workload's result is
 * identical, no hostile reply ever carried the bytes of another namespace, and the server's peak RSS
 * (VmHWM) stayed within its send budget plus a margin. Seeded, so a failure replays. Run over ws and
 * over the server's tcp:// port (same frames; on TCP a "message" is just a write to the stream).
 * Environment: FARMEM_SERVER_FUZZ_FRAMES (default 12,000), FARMEM_SERVER_FUZZ_SEED (default 0xfa57);
 * `node scripts/server-fuzz-soak.mjs` runs it for longer.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_LIMITS, encodeFree, encodeHello, encodeRead, encodeStats, encodeWrite, FrameReader, Op, PROTOCOL_VERSION } from '../host/protocol/index.js';
import { loadWorkload, workloadPath, type WorkloadExports } from '../host/workloads.js';
import { page, Raw } from './support/raw-client.js';
import { spawnFarmem, startServers, type Servers } from './support/servers.js';

const TOKEN = 'fuzz-token';
const ADMIN = 'fuzz-admin';
const SECRET_NS = 'secret';
/** 16 bytes no hostile frame contains: if a hostile reply ever holds them, a namespace leaked. */
const MARKER = Buffer.from('5ec7e75ec7e7c0de5ec7e75ec7e7c0de', 'hex');
const MiB = 1 << 20;
const FRAMES = Number(process.env.FARMEM_SERVER_FUZZ_FRAMES ?? 12_000);
const SEED = Number(process.env.FARMEM_SERVER_FUZZ_SEED ?? 0xfa57);

/** xorshift32: reproducible randomness from a seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function vmHwmBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function secretPage(i: number): Buffer {
  const b = Buffer.alloc(4096);
  for (let o = 0; o < b.length; o += 16) MARKER.copy(b, o);
  b.writeUInt32LE(i, 0);
  return b;
}

/** One hostile frame: random bytes, or a valid frame with bytes flipped, cut, extended or relabelled. */
function hostileFrame(rand: () => number, ns: string): Buffer {
  const pick = Math.floor(rand() * 8);
  const n = 1 + Math.floor(rand() * 8);
  const pages = Array.from({ length: n }, () => Math.floor(rand() * 64));
  let f: Buffer;
  switch (pick) {
    case 0: f = Buffer.from(Array.from({ length: Math.floor(rand() * 48) }, () => Math.floor(rand() * 256))); return f;
    case 1: f = Buffer.from(encodeHello(1, PROTOCOL_VERSION, 4096, rand() < 0.5 ? TOKEN : 'nope', ns)); break;
    case 2: f = Buffer.from(encodeRead(2 + Math.floor(rand() * 1000), pages)); break;
    case 3: f = Buffer.from(encodeWrite(3, pages, pages.map(() => page(0xee)), 4096)); break;
    case 4: f = Buffer.from(encodeFree(4, pages)); break;
    case 5: f = Buffer.from(encodeStats(5)); break;
    case 6: f = Buffer.from(encodeRead(6, pages)); f.writeUInt32LE(Math.floor(rand() * 0xffff_ffff), 12); return f; // huge count
    default: f = Buffer.from(encodeRead(7, pages)); f.writeUInt32LE(Math.floor(rand() * 0xffff_ffff), 0); return f; // bad length
  }
  if (rand() < 0.6) {
    const flips = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < flips; i++) f[Math.floor(rand() * f.length)] = Math.floor(rand() * 256);
  }
  if (rand() < 0.2) f = f.subarray(0, Math.floor(rand() * f.length));
  else if (rand() < 0.1) f = Buffer.concat([f, Buffer.alloc(1 + Math.floor(rand() * 8), 0xee)]);
  return f;
}

type Transport = 'ws' | 'tcp';

/** What the hostile clients do with a connection, over ws or plain TCP. */
interface Peer {
  send(bytes: Uint8Array): void;
  close(): void;
  terminate(): void;
  /** Stop reading replies (a slow reader). */
  pause(): void;
}

interface PeerEvents {
  open(): void;
  data(bytes: Buffer): void;
  closed(): void;
}

function openPeer(transport: Transport, url: string, on: PeerEvents): Peer {
  if (transport === 'ws') {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('error', () => {});
    ws.on('open', () => on.open());
    ws.on('message', (data) => on.data(data as Buffer));
    ws.on('close', () => on.closed());
    return { send: (b) => ws.send(b), close: () => ws.close(), terminate: () => ws.terminate(), pause: () => ws.pause() };
  }
  const { hostname, port } = new URL(url);
  const sock = net.connect({ host: hostname, port: Number(port), noDelay: true });
  sock.on('error', () => {});
  sock.on('connect', () => on.open());
  sock.on('data', (d: Buffer) => on.data(d));
  sock.on('close', () => on.closed());
  return { send: (b) => { sock.write(b); }, close: () => { sock.end(); }, terminate: () => { sock.destroy(); }, pause: () => { sock.pause(); } };
}

interface Hostile {
  frames: number;
  leaks: number;
  /** READ_OK replies: the leak check looked at real page data. */
  reads: number;
}

/**
 * One churned connection: maybe HELLO (a namespace near the secret one, or random), then a batch of
 * hostile frames in one or several messages; records whether any reply carries the marker.
 */
function hostileConnection(transport: Transport, url: string, rand: () => number, count: number, out: Hostile): Promise<void> {
  return new Promise((resolve) => {
    const names = ['\uFEFFsecret', 'secret\u0000', 'Secret', 'secret ', 'evil', `evil-${Math.floor(rand() * 5)}`];
    const ns = names[Math.floor(rand() * names.length)]!;
    const done = () => { clearTimeout(t); resolve(); };
    // On a stream a marker may straddle two reads: each read is checked with the previous one's tail.
    let tail = Buffer.alloc(0);
    const replies = new FrameReader(DEFAULT_LIMITS);
    const ws = openPeer(transport, url, {
      closed: done,
      data: (buf) => {
        if (Buffer.concat([tail, buf]).indexOf(MARKER) >= 0) out.leaks++;
        tail = buf.subarray(Math.max(0, buf.length - MARKER.length + 1));
        replies.push(buf, (f) => { if (f[4] === Op.READ_OK) out.reads++; });
      },
      open: () => {
      const frames: Buffer[] = [];
      if (rand() < 0.7) {
        frames.push(Buffer.from(encodeHello(1, PROTOCOL_VERSION, 4096, TOKEN, ns)));
        // A probe: well-formed READs of the secret's page numbers from a look-alike namespace.
        if (rand() < 0.4) for (let i = 0; i < 8; i++) frames.push(Buffer.from(encodeRead(100 + i, [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3])));
      }
      for (let i = 0; i < count; i++) frames.push(hostileFrame(rand, ns));
      out.frames += count;
      const split = rand() < 0.5;
      if (split) for (const f of frames) ws.send(f);
      else ws.send(Buffer.concat(frames));
      // Churn: close soon, or leave it to the server to close.
      setTimeout(() => ws.close(), Math.floor(rand() * 50));
      },
    });
    const t = setTimeout(() => { ws.terminate(); }, 5000);
  });
}

/** A slow reader: HELLO with 64 KiB pages, then one message asking for `mib` MiB of replies, never read. */
async function slowReader(transport: Transport, url: string, mib: number): Promise<Peer> {
  let opened!: () => void;
  const open = new Promise<void>((r) => { opened = r; });
  const ws = openPeer(transport, url, { open: () => opened(), data: () => {}, closed: () => {} });
  await open;
  ws.send(encodeHello(1, PROTOCOL_VERSION, 65536, TOKEN, 'slow'));
  ws.pause();
  const frames: Uint8Array[] = [];
  for (let i = 0; i < mib; i++) frames.push(encodeRead(10 + i, Array.from({ length: 16 }, (_, k) => k)));
  ws.send(Buffer.concat(frames));
  return ws;
}

let servers: Servers | null = null;
afterAll(async () => {
  await servers?.close();
});

describe.each(['ws', 'tcp'] as const)('protocol fuzz against a live server over %s', (transport) => {
  it('≥10,000 hostile frames, churn and slow readers: server up, client identical, no leak, RSS bounded', async () => {
    await servers?.close();
    servers = await startServers(1, { capacity: '256MiB', token: TOKEN, tcp: true, args: ['--admin-token', ADMIN] });
    const ws = servers.urls[0]!;
    const url = transport === 'ws' ? ws : servers.tcpUrls[0]!;
    const pid = servers.processes[0]!.pid!;
    const baseline = vmHwmBytes(pid);

    // The secret namespace: pages full of the marker.
    const owner = await Raw.connect(ws, SECRET_NS, TOKEN);
    const secret = Array.from({ length: 32 }, (_, i) => secretPage(i));
    await owner.call(encodeWrite(2, secret.map((_, i) => i), secret, 4096));

    // The well-behaved client: a workload through the same server, in its own process.
    const size = 4 << 20;
    const victim = spawnFarmem(['run', workloadPath('seqscan'), '--invoke', 'run', String(size), '1', '--local', '10%',
      '--store', url, '--token', TOKEN, '--stats', 'none', '--no-cache']);

    const slow = await Promise.all([0, 1, 2].map(() => slowReader(transport, url, 64))); // 3 × 64 MiB asked, never read
    const rand = rng(SEED);
    const out: Hostile = { frames: 0, leaks: 0, reads: 0 };
    while (out.frames < FRAMES) {
      await Promise.all(Array.from({ length: 16 }, () => hostileConnection(transport, url, rand, 20 + Math.floor(rand() * 40), out)));
    }
    // Connection churn without HELLO at all.
    await Promise.all(Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
      const p: Peer = openPeer(transport, url, { open: () => { p.terminate(); resolve(); }, data: () => {}, closed: () => resolve() });
    })));

    const code = await victim.exit(Math.max(120_000, FRAMES * 20));
    expect(code, victim.stderr()).toBe(0);
    const { instance } = await WebAssembly.instantiate(loadWorkload('seqscan'));
    expect(victim.stdout().trim()).toBe(String((instance.exports as unknown as WorkloadExports).run(size, 1)));

    expect(out.frames).toBeGreaterThanOrEqual(10_000);
    expect(out.reads).toBeGreaterThan(100);
    expect(out.leaks).toBe(0);
    expect(servers.processes[0]!.exitCode).toBeNull();
    // The secret pages are intact, and a fresh client is served.
    const back = await owner.call(encodeRead(3, secret.map((_, i) => i))) as { data: Uint8Array };
    expect(Buffer.from(back.data).equals(Buffer.concat(secret))).toBe(true);
    const fresh = await Raw.connect(ws, 'after-fuzz', TOKEN);
    expect((await fresh.call(encodeStats(2))).op).toBe(Op.STATS_OK);
    fresh.close();
    owner.close();
    // Peak RSS: the 256 MiB send budget, 64 MiB of pooled reply buffers and 128 MiB for input
    // messages, GC slack and the victim's pages (before the send budget, three slow readers alone
    // made the server allocate 192 MiB each and reach ~2 GiB). Measured here: ~100 MiB above baseline.
    const peak = vmHwmBytes(pid);
    console.log(`fuzz over ${transport}: ${out.frames} frames, ${out.reads} READ_OK replies, server peak RSS ${peak >> 20} MiB (baseline ${baseline >> 20} MiB)`);
    expect(peak - baseline, `peak ${peak >> 20} MiB, baseline ${baseline >> 20} MiB`).toBeLessThan(448 * MiB);
    for (const ws of slow) ws.terminate();
  });
});
