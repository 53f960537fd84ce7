/**
 * farmem paging to real Redis (loopback `redis-server` processes on random ports, temp dirs, killed
 * at the end): the workload suite and the C fixtures through a standalone server and through a
 * 3-shard cluster at a few frames and at 5% local; `farmem run --store redis://` for a WASI program
 * and for `--invoke`, with the store in the stats and the keys gone afterwards; and the failures a
 * user meets — wrong password, an evicting policy, maxmemory reached mid-run, Redis killed mid-run —
 * each one line with its code, exit code 1, in bounded time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServers } from '../bench/lib/redis-server.js';
import { workloadPath, WORKLOADS } from '../host/workloads.js';
import { buildCFixtures, runWithFarmemWasi } from './support/c-fixtures.js';
import { runWorkloadFar, wat, workloadReference } from './support/differential.js';
import { instantiate } from '../host/index.js';
import { describeCasesOnFarMemory } from './support/far-cases.js';
import { NODE24 } from './support/node24.js';
import { faulting, spawnFarmem } from './support/servers.js';

/** Small working sets: at 5% local every few accesses are a round trip to Redis (64 KiB is matmul's minimum). */
const SIZE = 64 * 1024;
const SEED = 11;

let standalone: RedisServers;
let cluster: RedisServers;
let bins: Record<string, string>;
let tmp: string;
beforeAll(async () => {
  [standalone, cluster, bins] = await Promise.all([startRedis({ password: 'runtime-pw' }), startRedis({ cluster: 3 }), buildCFixtures()]);
  tmp = mkdtempSync(join(tmpdir(), 'farmem-redis-'));
});
afterAll(async () => {
  await Promise.all([standalone?.close(), cluster?.close()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const STORES: [string, () => RedisServers][] = [['a standalone Redis', () => standalone], ['a 3-shard Redis Cluster', () => cluster]];

for (const [where, redis] of STORES) {
  describe.each(WORKLOADS.map((w) => w.name))(`workload %s through ${where}`, (name) => {
    for (const [local, label] of [[{ bytes: 8 * 4096 }, '8 frames'], [{ fraction: 0.05 }, '5% local']] as const) {
      it(`matches the original at ${label}`, async () => {
        const { result, stats } = await runWorkloadFar(name, SIZE, SEED, { pageSize: 4096, local, redis: { url: redis().url } });
        expect(result).toBe(await workloadReference(name, SIZE, SEED));
        expect(stats.majorFaults).toBeGreaterThan(0);
        expect(stats.writeBacks).toBeGreaterThan(0);
        expect(stats.store).toMatch(/^redis(\+cluster)?:\/\/127\.0\.0\.1:\d+/);
      });
    }
  });
  describeCasesOnFarMemory(where, () => ({ redis: { url: redis().url } }), 'tiny', () => ({ bins, tmp }));
}

describe('farmem run --store redis://', () => {
  it('runs --invoke and a WASI program, shows the store in the stats, and leaves no keys behind', async () => {
    const inv = spawnFarmem(['run', workloadPath('seqscan'), '--invoke', 'run', String(SIZE), String(SEED), '--local', '10%',
      '--store', standalone.url, '--no-cache', '--stats', 'json']);
    expect(await inv.exit(60_000), inv.stderr()).toBe(0);
    expect(inv.stdout().trim()).toBe(String(await workloadReference('seqscan', SIZE, SEED)));
    const stats = JSON.parse(inv.stderr());
    expect(stats.store).toBe(`redis://127.0.0.1:${standalone.ports[0]}`); // the password stays out of the stats
    expect(stats.writeBacks).toBeGreaterThan(0);

    const wasi = spawnFarmem(['run', bins['churn']!, '--local', '5%', '--store', cluster.url, '--no-cache', '--stats', 'text', '--', '1500', '7']);
    expect(await wasi.exit(60_000), wasi.stderr()).toBe(0);
    expect(wasi.stdout()).toBe(runWithFarmemWasi(bins['churn']!, { args: ['churn', '1500', '7'] }).stdout.toString());
    expect(wasi.stderr()).toMatch(new RegExp(`store ${cluster.url.replace(/[+.]/g, '\\$&')}`));
    expect(await standalone.cli(0, 'DBSIZE')).toBe('0');
    expect((await Promise.all([0, 1, 2].map((i) => cluster.cli(i, 'DBSIZE')))).every((n) => n === '0')).toBe(true);
  });

  it.skipIf(!NODE24)('runs on Node 24 too (ioredis under the newer runtime)', async () => {
    const r = spawnFarmem(['run', workloadPath('hashtable'), '--invoke', 'run', String(SIZE), String(SEED), '--local', '5%',
      '--store', cluster.url, '--no-cache', '--stats', 'json'], NODE24!);
    expect(await r.exit(60_000), r.stderr()).toBe(0);
    expect(r.stdout().trim()).toBe(String(await workloadReference('hashtable', SIZE, SEED)));
    expect(JSON.parse(r.stderr()).majorFaults).toBeGreaterThan(0);
  });

  it('rediss:// (TLS) works with the CA trusted, and fails with FM_ERR_REDIS_TLS when it is not', async () => {
    const secure = await startRedis({ tls: true });
    try {
      const args = ['run', workloadPath('seqscan'), '--invoke', 'run', String(SIZE), '1', '--local', '10%', '--store', secure.url, '--no-cache', '--stats', 'json'];
      const trusted = spawnFarmem(args, process.execPath, { ...process.env, NODE_EXTRA_CA_CERTS: secure.caFile! });
      expect(await trusted.exit(60_000), trusted.stderr()).toBe(0);
      expect(trusted.stdout().trim()).toBe(String(await workloadReference('seqscan', SIZE, 1)));
      expect(JSON.parse(trusted.stderr()).store).toBe(secure.url);
      const untrusted = spawnFarmem(args);
      expect(await untrusted.exit(30_000)).toBe(1);
      expect(untrusted.stderr()).toMatch(/^\(farmem run\) TLS with Redis at rediss:\/\/127\.0\.0\.1:\d+ failed: .*NODE_EXTRA_CA_CERTS.* \[FM_ERR_REDIS_TLS\]\n$/);
    } finally {
      await secure.close();
    }
  });

  it('keep: a page still resident and dirty at close is in Redis too', async () => {
    // 'KEEP' stored at virtual address 0 with every page local: no eviction ever writes it back.
    const bytes = wat(`(module (memory 1) (func (export "mark") (i32.store (i32.const 0) (i32.const 0x5045454b))))`);
    const fm = await instantiate(bytes, {}, { local: { fraction: 1 }, redis: { url: standalone.url, namespace: 'kept-dirty', keep: true } });
    (fm.exports as { mark(): void }).mark();
    expect(fm.stats().evictions).toBe(0);
    await fm.close();
    const keys = (await standalone.cli(0, '--scan', '--pattern', '{kept-dirty:*')).split('\n').filter(Boolean);
    expect(keys).toHaveLength(1);
    expect(await standalone.cli(0, 'GETRANGE', keys[0]!, '0', '3')).toMatch(/^KEEP\s*$/);
    await standalone.cli(0, 'FLUSHALL');
  });

  it('--keep leaves the pages under --namespace', async () => {
    const r = spawnFarmem(['run', workloadPath('seqscan'), '--invoke', 'run', String(SIZE), '1', '--local', '10%',
      '--store', standalone.url, '--namespace', 'inspect-me', '--keep', '--no-cache', '--stats', 'none']);
    expect(await r.exit(60_000), r.stderr()).toBe(0);
    const keys = (await standalone.cli(0, '--scan', '--pattern', '{inspect-me:*')).split('\n').filter(Boolean);
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => /^\{inspect-me:\d+\}:\d+$/.test(k))).toBe(true);
    await standalone.cli(0, 'FLUSHALL');
  });
});

describe('failures through the CLI: one line with the code, exit 1, bounded time', () => {
  const args = (url: string, size = 1 << 20, extra: string[] = []) =>
    ['run', workloadPath('seqscan'), '--invoke', 'run', String(size), '1', '--local', '5%', '--store', url, '--no-cache', ...extra];
  const expectFailure = async (r: ReturnType<typeof spawnFarmem>, timeoutMs: number, code: string, message: RegExp) => {
    const t0 = Date.now();
    expect(await r.exit(timeoutMs)).toBe(1);
    expect(Date.now() - t0).toBeLessThan(timeoutMs);
    const lines = r.stderr().trim().split('\n');
    expect(lines, r.stderr()).toHaveLength(1);
    expect(lines[0]).toMatch(/^\(farmem run\) /);
    expect(lines[0]).toMatch(message);
    expect(lines[0]!.endsWith(` [${code}]`), lines[0]).toBe(true);
  };

  it('a wrong password', async () => {
    await expectFailure(spawnFarmem(args(standalone.url.replace('runtime-pw', 'nope'))), 30_000, 'FM_ERR_REDIS_AUTH', /WRONGPASS/);
  });

  it('a maxmemory-policy that may evict', async () => {
    const evicting = await startRedis({ policy: 'allkeys-lru' });
    try {
      await expectFailure(spawnFarmem(args(evicting.url)), 30_000, 'FM_ERR_REDIS_EVICTION_POLICY', /maxmemory-policy allkeys-lru, .*CONFIG SET maxmemory-policy noeviction/);
    } finally {
      await evicting.close();
    }
  });

  it('maxmemory reached mid-run', async () => {
    const small = await startRedis({ maxmemory: '3mb' });
    try {
      await expectFailure(spawnFarmem(args(small.url, 16 << 20)), 60_000, 'FM_ERR_REDIS_OOM', /out of memory/);
    } finally {
      await small.close();
    }
  });

  it('Redis killed mid-run', async () => {
    const doomed = await startRedis();
    const trace = join(tmp, 'killed.fmt');
    try {
      const r = spawnFarmem(args(doomed.url, 64 << 20, ['--trace', trace, '--timeout', '1500']));
      await faulting(trace);
      expect(r.child.exitCode).toBeNull(); // still running when Redis dies
      await doomed.kill(0);
      await expectFailure(r, 30_000, 'FM_ERR_REDIS_UNREACHABLE', /Redis/);
    } finally {
      await doomed.close();
    }
  });
});
