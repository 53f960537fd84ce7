/**
 * Local memory means what it says, on every store: `local: { fraction: 1 }` never evicts and never
 * writes back (also through a memory server or Redis, where a reclaimer keeps a reserve of free frames on
 * top of the requested pool), `{ fraction: 0.25 }` keeps 25% of the guest's pages resident, and a
 * page never written to the store is zero-filled on the guest thread (no bytes cross the wire).
 * Counters only, never times.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { loadWorkload, type WorkloadExports } from '../host/workloads.js';
import { startServers, type Servers } from './support/servers.js';
import { startRedis, type RedisServers } from '../bench/lib/redis-server.js';

const TOKEN = 'local-memory-token';
const PAGE = 4096;
const SIZE = 4 << 20;
/** hashtable at 25% faults on nearly every probe: keep its run short. */
const sizeOf = (name: string) => (name === 'hashtable' ? 256 << 10 : SIZE);

let servers: Servers;
let redis: RedisServers;
beforeAll(async () => {
  [servers, redis] = await Promise.all([startServers(1, { capacity: '128MiB', token: TOKEN }), startRedis()]);
});
afterAll(async () => {
  await Promise.all([servers?.close(), redis?.close()]);
});

const STORES = ['embedded', 'server', 'redis'] as const;
/** Stores whose pages live in another process, behind the I/O worker and its reclaimer. */
const remote = (store: (typeof STORES)[number]) => store !== 'embedded';

async function run(name: string, store: (typeof STORES)[number], fraction: number) {
  const fm = await instantiate(loadWorkload(name), {}, {
    pageSize: PAGE,
    local: { fraction },
    ...(store === 'server' ? { remote: { urls: servers.urls, token: TOKEN } } : {}),
    ...(store === 'redis' ? { redis: { url: redis.url, namespace: `local-${name}-${fraction}` } } : {}),
  });
  try {
    const exports = fm.exports as unknown as WorkloadExports;
    const first = exports.run(sizeOf(name), 3);
    const second = exports.run(sizeOf(name), 3);
    expect(second).toBe(first);
    return fm.stats();
  } finally {
    await fm.close();
  }
}

describe.each(STORES)('local memory on the %s store', (store) => {
  it('at 100% nothing is evicted or written back, and never-written pages move no bytes', async () => {
    const s = await run('seqscan', store, 1);
    expect(s.majorFaults).toBeGreaterThan(sizeOf('seqscan') / PAGE / 2);
    expect(s.evictions).toBe(0);
    expect(s.writeBacks).toBe(0);
    expect(s.directReclaims).toBe(0);
    expect(s.localBytes).toBeGreaterThanOrEqual(s.virtualBytes);
    if (remote(store)) {
      // Every page started as zeros and never left: served on the guest thread, no I/O.
      expect(s.zeroFills).toBe(s.majorFaults);
      expect(s.bytesIn).toBe(0);
      expect(s.reserveBytes).toBeGreaterThan(0);
    }
  });

  for (const name of ['seqscan', 'hashtable']) {
    it(`${name} at 25% keeps 25% of the guest's pages resident`, async () => {
      const s = await run(name, store, 0.25);
      const pages = s.virtualBytes / PAGE;
      const local = s.localBytes / PAGE;
      expect(local).toBe(Math.ceil(pages / 4));
      expect(s.evictions).toBeGreaterThan(0);
      if (store === 'embedded') {
        expect(s.reserveBytes).toBe(0);
        expect(s.residentPages).toBe(local);
        expect(s.residentPeak).toBe(local);
      } else {
        // The reclaimer evicts back down to the requested pool each round, and wakes when more than
        // half its reserve is in use: never fewer pages resident than asked for, at most that slack more.
        const reserve = s.reserveBytes / PAGE;
        expect(reserve).toBeGreaterThan(0);
        expect(s.residentPages).toBeGreaterThanOrEqual(local);
        expect(s.residentPeak).toBeLessThanOrEqual(local + reserve);
        // The pages written to the store come back from it: real reads crossed the wire.
        expect(s.bytesIn).toBeGreaterThan(0);
        expect(s.zeroFills).toBeLessThan(s.majorFaults);
      }
    });
  }
});
