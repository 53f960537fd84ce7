/**
 * @fileoverview Network faults between a client and a memory server, for real: the server runs in
 * one network namespace and `farmem run` in another, joined by a veth pair with addresses from a
 * private /30 assigned inside those namespaces only (no traffic leaves them), and `tc netem` adds
 * delay and loss or cuts the link (a partition) and restores it. The client must complete with the
 * right result under delay + loss and across a partition that heals within its deadline, and fail
 * clearly (one line, FM_ERR_TIMEOUT or FM_ERR_SERVER_UNREACHABLE, exit 1) when it does not heal.
 * Needs root (CI runs as root); skipped with a message where namespaces cannot be created. The
 * namespaces are deleted after the tests, also when one fails.
 *
 * Faults: with the kernel's netem qdisc, delay + loss and a partition as 100% loss. Kernels without
 * sch_netem (this machine's container) still get a slow link from `tbf` (a 4 Mbit/s bottleneck with
 * a deep queue: tens of ms of queueing delay per fault) and a partition by taking the veth down and
 * up (packets dropped, routes gone, so the client reconnects and resends); the loss test then skips.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkload, workloadPath, type WorkloadExports } from '../host/workloads.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = `${ROOT}dist/host/cli/main.js`;
const TAG = `fm${process.pid % 100000}`;
const NS_SERVER = `${TAG}s`;
const NS_CLIENT = `${TAG}c`;
const DEV_SERVER = `${TAG}vs`;
const DEV_CLIENT = `${TAG}vc`;
// A /30 from the 10/8 private range, assigned only inside the two namespaces.
const IP_SERVER = '10.213.7.2';
const IP_CLIENT = '10.213.7.1';
const TOKEN = 'netfault-token';

function sh(args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, err: `${r.stderr ?? ''}${r.error?.message ?? ''}` };
}

function cleanup(): void {
  sh(['ip', 'netns', 'del', NS_SERVER]);
  sh(['ip', 'netns', 'del', NS_CLIENT]);
}

/** Creates the namespaces and the link; returns why not, or null when ready. */
function setUp(): string | null {
  cleanup();
  const steps = [
    ['ip', 'netns', 'add', NS_SERVER],
    ['ip', 'netns', 'add', NS_CLIENT],
    ['ip', 'link', 'add', DEV_SERVER, 'type', 'veth', 'peer', 'name', DEV_CLIENT],
    ['ip', 'link', 'set', DEV_SERVER, 'netns', NS_SERVER],
    ['ip', 'link', 'set', DEV_CLIENT, 'netns', NS_CLIENT],
    ['ip', '-n', NS_SERVER, 'addr', 'add', `${IP_SERVER}/30`, 'dev', DEV_SERVER],
    ['ip', '-n', NS_CLIENT, 'addr', 'add', `${IP_CLIENT}/30`, 'dev', DEV_CLIENT],
    ['ip', '-n', NS_SERVER, 'link', 'set', DEV_SERVER, 'up'],
    ['ip', '-n', NS_CLIENT, 'link', 'set', DEV_CLIENT, 'up'],
    ['ip', '-n', NS_SERVER, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', NS_CLIENT, 'link', 'set', 'lo', 'up'],
  ];
  for (const s of steps) {
    const r = sh(s);
    if (!r.ok) {
      cleanup();
      return `${s.join(' ')}: ${r.err.trim()}`;
    }
  }
  return null;
}

/** Sets the netem discipline on both ends (both directions), or removes it with null. */
function netem(params: string[] | null): void {
  for (const [ns, dev] of [[NS_SERVER, DEV_SERVER], [NS_CLIENT, DEV_CLIENT]] as const) {
    sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
    if (params) {
      const r = sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', ...params]);
      if (!r.ok) throw new Error(`tc netem ${params.join(' ')}: ${r.err}`);
    }
  }
}

const why = setUp();
/** Whether this kernel has sch_netem (tried once on the client's loopback). */
const hasNetem = why === null && sh(['ip', 'netns', 'exec', NS_CLIENT, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).ok;

/** Cuts the link (netem 100% loss, or both veth ends down) or restores it. */
function partition(on: boolean): void {
  if (hasNetem) {
    netem(on ? ['loss', '100%'] : null);
    return;
  }
  sh(['ip', '-n', NS_SERVER, 'link', 'set', DEV_SERVER, on ? 'down' : 'up']);
  sh(['ip', '-n', NS_CLIENT, 'link', 'set', DEV_CLIENT, on ? 'down' : 'up']);
}

/** A slow link without loss: netem delay, or a tbf bottleneck where netem is missing. */
function slowLink(on: boolean): void {
  if (hasNetem) {
    netem(on ? ['delay', '5ms'] : null);
    return;
  }
  for (const [ns, dev] of [[NS_SERVER, DEV_SERVER], [NS_CLIENT, DEV_CLIENT]] as const) {
    sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'del', 'dev', dev, 'root']);
    if (on) {
      const r = sh(['ip', 'netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', '4mbit', 'burst', '16kb', 'latency', '200ms']);
      if (!r.ok) throw new Error(`tc tbf: ${r.err}`);
    }
  }
}
let server: ChildProcess | null = null;
let url = '';

beforeAll(async () => {
  if (why) return;
  server = spawn('ip', ['netns', 'exec', NS_SERVER, process.execPath, CLI, 'serve', '--host', IP_SERVER, '--port', '0',
    '--capacity', '256MiB', '--token', TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('the server in the namespace did not start')), 60_000);
    server!.stdout!.on('data', (d) => {
      out += String(d);
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(t); resolve(m[1]!); }
    });
  });
}, 90_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGKILL');
    await new Promise((r) => server!.once('exit', r));
  }
  cleanup();
});

/** `farmem run seqscan` from the client namespace; resolves with its exit code and output. */
function run(size: number, timeoutMs: number, during?: (child: ChildProcess) => Promise<void>) {
  const child = spawn('ip', ['netns', 'exec', NS_CLIENT, process.execPath, CLI, 'run', workloadPath('seqscan'), '--invoke', 'run',
    String(size), '1', '--local', '25%', '--store', url, '--token', TOKEN, '--timeout', String(timeoutMs), '--stats', 'none', '--no-cache'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => { stdout += String(d); });
  child.stderr!.on('data', (d) => { stderr += String(d); });
  const exit = new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('close', (c) => { clearTimeout(t); resolve(c); });
  });
  return (async () => {
    if (during) await during(child);
    return { code: await exit, stdout: () => stdout, stderr: () => stderr };
  })();
}

async function reference(size: number): Promise<string> {
  const { instance } = await WebAssembly.instantiate(loadWorkload('seqscan'));
  return String((instance.exports as unknown as WorkloadExports).run(size, 1));
}

/** Waits until the run has started faulting over the link (bytes went through the veth). */
async function trafficStarted(child: ChildProcess): Promise<void> {
  const read = () => Number(spawnSync('ip', ['netns', 'exec', NS_SERVER, 'cat', `/sys/class/net/${DEV_SERVER}/statistics/rx_bytes`], { encoding: 'utf8' }).stdout);
  const start = read();
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    if (read() - start > 200_000) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(why !== null)(`network faults (network namespaces${why ? `: skipped, ${why}` : ''})`, () => {
  /** A run of `size` bytes completes with the right result while `fault(true)` holds. */
  async function completesUnder(fault: (on: boolean) => void, size: number): Promise<void> {
    fault(true);
    try {
      const r = await run(size, 10_000);
      expect(r.code, r.stderr()).toBe(0);
      expect(r.stdout().trim()).toBe(await reference(size));
    } finally {
      fault(false);
    }
  }

  it.skipIf(!hasNetem)(`completes identical under 5 ms delay and 2% loss each way${hasNetem ? '' : ' (skipped: no sch_netem in this kernel)'}`, async () => {
    await completesUnder((on) => netem(on ? ['delay', '5ms', 'loss', '2%'] : null), 1 << 20);
  });

  it('completes identical over a slow link (delay)', async () => {
    await completesUnder(slowLink, 512 << 10);
  });

  it('survives a 3 s partition that heals within its deadline', async () => {
    const r = await run(2 << 20, 20_000, async (child) => {
      await trafficStarted(child);
      partition(true);
      await new Promise((res) => setTimeout(res, 3000));
      partition(false);
    });
    expect(r.code, r.stderr()).toBe(0);
    expect(r.stdout().trim()).toBe(await reference(2 << 20));
  });

  it('fails clearly, in bounded time, when the partition does not heal', async () => {
    const started = Date.now();
    const r = await run(2 << 20, 3000, async (child) => {
      await trafficStarted(child);
      partition(true);
    });
    partition(false);
    expect(r.code).toBe(1);
    expect(r.stderr().trim()).toMatch(/^\(farmem run\) .*\[FM_ERR_(TIMEOUT|SERVER_UNREACHABLE)\]$/);
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});

if (why) {
  describe('network faults', () => {
    it.skip(`skipped: network namespaces are not available here (${why})`, () => {});
  });
}
