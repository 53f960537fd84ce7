/**
 * @fileoverview Re-replication, end to end: every workload kind runs at the same time through three
 * real `farmem serve` processes with replication 2 and 10% local memory; one server is killed with
 * SIGKILL while all of them fault. Every run must complete with the original's result, and — read
 * back through the survivors' STATS with the admin token — every run's namespace must hold its pages
 * on BOTH survivors again: each slab had two copies, the killed server held one of them for some
 * slabs, and re-replication copied those onto the remaining server while the guests kept running.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeStats, type StatsOk } from '../host/protocol/index.js';
import { loadWorkload, workloadPath, WORKLOADS, type WorkloadExports } from '../host/workloads.js';
import { Raw } from './support/raw-client.js';
import { spawnFarmem, startServers, type Servers } from './support/servers.js';

const TOKEN = 'rerepl-token';
const ADMIN = 'rerepl-admin';
const tmp = mkdtempSync(join(tmpdir(), 'farmem-rerepl-'));

/** Sizes that keep each run a few seconds at 10% local on 2 busy cores (all eight run at once). */
const SIZES: Record<string, number> = {
  seqscan: 4 << 20, stride: 256 << 10, hashtable: 128 << 10, sort: 4 << 20,
  matmul: 256 << 10, graph: 256 << 10, pointerchase: 128 << 10, grow: 4 << 20,
};

async function reference(name: string, size: number): Promise<bigint> {
  const { instance } = await WebAssembly.instantiate(loadWorkload(name));
  return (instance.exports as unknown as WorkloadExports).run(size, 1);
}

/** Pages namespace `ns` holds on the server at `url`, by the admin's STATS. */
async function pagesOn(url: string, ns: string): Promise<number> {
  const c = await Raw.connect(url, 'rerepl-probe', ADMIN);
  try {
    const s = await c.call(encodeStats(2)) as StatsOk;
    return s.namespaces.find((n) => n.name === ns)?.pages ?? 0;
  } finally {
    c.close();
  }
}

let servers: Servers | null = null;
afterAll(async () => {
  await servers?.close();
});

describe('one of three servers killed with replication 2', () => {
  it('every workload kind completes identical and gets two copies of every slab back (STATS)', async () => {
    servers = await startServers(3, { capacity: '256MiB', token: TOKEN, args: ['--admin-token', ADMIN] });
    const names = WORKLOADS.map((w) => w.name);
    const runs = names.map((name) => spawnFarmem(['run', workloadPath(name), '--invoke', 'run', String(SIZES[name]), '1',
      '--local', '10%', '--store', servers!.urls.join(','), '--token', TOKEN, '--replication', '2', '--timeout', '3000',
      '--namespace', `rerepl-${name}`, '--keep', '--cache-dir', join(tmp, 'cache'), '--stats', 'json']));
    // Mid-run: every run has written pages to the servers (seen by the admin's STATS).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const held = await Promise.all(names.map(async (n) => (await Promise.all(servers!.urls.map((u) => pagesOn(u, `rerepl-${n}`)))).reduce((x, y) => x + y)));
      if (held.every((p) => p > 0)) break;
      if (Date.now() > deadline) throw new Error(`not every run started writing pages: ${held.join(', ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const r of runs) expect(r.child.exitCode, r.stderr()).toBeNull(); // all mid-run when the server dies
    await servers.kill(1);
    const codes = await Promise.all(runs.map((r) => r.exit(180_000)));
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const r = runs[i]!;
      expect(codes[i], `${name}: ${r.stderr()}`).toBe(0);
      expect(r.stdout().trim(), name).toBe(String(await reference(name, SIZES[name]!)));
      const stats = JSON.parse(r.stderr()) as { replication: { reReplicated: number; underReplicated: number } };
      expect(stats.replication, name).toBeDefined();
      const a = await pagesOn(servers.urls[0]!, `rerepl-${name}`);
      const b = await pagesOn(servers.urls[2]!, `rerepl-${name}`);
      // Both survivors hold every slab, so the same pages: two copies of everything again.
      expect(a, name).toBeGreaterThan(0);
      expect(b, name).toBe(a);
    }
  });
});
