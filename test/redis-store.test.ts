/**
 * The Redis page store on real `redis-server` processes (loopback, random ports, temp dirs): the
 * `--store` URL forms, the PageStore contract (round trip, demand-zero without a round trip, free,
 * keys deleted at close or kept), hash-tagged chunks on one cluster shard, and every failure as a
 * typed error within the deadline: wrong or missing password, an evicting policy, maxmemory reached,
 * a lost page, a server that is not there or is killed, a cluster master killed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServers } from '../bench/lib/redis-server.js';
import { OptionError, RedisStoreError } from '../host/errors.js';
import { RedisStore, type RedisStoreOptions } from '../host/store/redis/store.js';
import { isRedisUrl, parseRedisUrl } from '../host/store/redis/url.js';

const PAGE = 4096;
let ns = 0;
const options = (url: string, more: Partial<RedisStoreOptions> = {}): RedisStoreOptions => ({
  url, pageSize: PAGE, namespace: `t${process.pid}-${++ns}`, timeoutMs: 2000, ...more,
});
const page = (fill: number) => new Uint8Array(PAGE).fill(fill);

/** Expects `p` to reject with a RedisStoreError of `code` within `ms`. */
async function rejectsWith(p: Promise<unknown>, code: string, ms: number, message?: RegExp): Promise<RedisStoreError> {
  const t0 = performance.now();
  const err = await p.then(() => null, (e: unknown) => e);
  expect(performance.now() - t0).toBeLessThan(ms);
  expect(err).toBeInstanceOf(RedisStoreError);
  expect((err as RedisStoreError).code, (err as Error).message).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
  return err as RedisStoreError;
}

describe('Redis --store URLs', () => {
  it('parses the standalone, TLS and cluster forms', () => {
    expect(parseRedisUrl('redis://127.0.0.1:7000')).toMatchObject({ cluster: false, tls: false, nodes: [{ host: '127.0.0.1', port: 7000 }], db: 0 });
    expect(parseRedisUrl('redis://localhost')).toMatchObject({ nodes: [{ host: 'localhost', port: 6379 }] });
    expect(parseRedisUrl('rediss://u%40x:p%3Aw@h:1/3')).toMatchObject({ tls: true, username: 'u@x', password: 'p:w', db: 3, displayName: 'rediss://u%40x@h:1/3' });
    expect(parseRedisUrl('redis://:secret@[::1]:6380')).toMatchObject({ password: 'secret', nodes: [{ host: '::1', port: 6380 }], displayName: 'redis://[::1]:6380' });
    expect(parseRedisUrl('redis+cluster://a:1,b:2,c:3')).toMatchObject({ cluster: true, nodes: [{ host: 'a', port: 1 }, { host: 'b', port: 2 }, { host: 'c', port: 3 }] });
    expect(isRedisUrl('REDIS://h:1')).toBe(true);
    expect(isRedisUrl('ws://h:1')).toBe(false);
    expect(isRedisUrl('redis:x')).toBe(false);
  });

  it.each([
    ['redis://a:1,b:2', /several hosts; a cluster is redis\+cluster:/],
    ['redis+cluster://a:1/2', /cluster has no database number/],
    ['redis://h:0', /port must be 1 to 65535/],
    ['redis://h:1/x', /database must be a number/],
    ['redis://h:1?db=2', /no query parameters/],
    ['redis://', /names no host/],
    ['http://h:1', /not a Redis URL/],
  ])('refuses %s with a message naming the problem', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(OptionError);
    expect(() => parseRedisUrl(url)).toThrow(message);
  });

  it('validates store options strictly', async () => {
    await expect(RedisStore.connect({ ...options('redis://h:1'), namespace: 'a{b}' })).rejects.toThrow(/"namespace" must be/);
    await expect(RedisStore.connect({ ...options('redis://h:1'), chunkPages: 3 })).rejects.toThrow(/"chunkPages" must be a power of two/);
    await expect(RedisStore.connect({ ...options('redis://h:1'), pagesize: 1 } as unknown as RedisStoreOptions)).rejects.toThrow(/Invalid option .*"pagesize"/);
  });
});

describe('a standalone Redis', () => {
  let redis: RedisServers;
  beforeAll(async () => { redis = await startRedis({ password: 'store-pw' }); });
  afterAll(async () => { await redis?.close(); });

  it('round-trips pages across chunks, reads never-written pages as zeros, frees, and deletes its keys at close', async () => {
    const store = await RedisStore.connect(options(redis.url));
    expect(store.name).toBe(`redis://127.0.0.1:${redis.ports[0]}`); // no password in stats
    const pages = [3, 4, 5, 100, 17, 1 << 20];
    await store.write(pages, pages.map((p) => page(p & 255)));
    expect(Number(await redis.cli(0, 'DBSIZE'))).toBe(pages.length);
    expect(await redis.cli(0, 'EXISTS', store.key(100))).toBe('1');
    expect(store.key(100)).toBe(`{${store.namespace}:6}:100`); // 16 pages of 4 KiB per chunk
    const into = [...pages, 9].map(() => new Uint8Array(PAGE).fill(0xee));
    await store.read([...pages, 9], into);
    pages.forEach((p, i) => expect(into[i]).toEqual(page(p & 255)));
    expect(into[pages.length]).toEqual(page(0)); // never written: zeros
    await store.free([4, 9]);
    const again = [new Uint8Array(PAGE).fill(1)];
    await store.read([4], again);
    expect(again[0]).toEqual(page(0));
    expect(store.storedPages).toBe(pages.length - 1);
    await store.close();
    expect(await redis.cli(0, 'DBSIZE')).toBe('0');
    await expect(store.read([3], [page(0)])).rejects.toMatchObject({ code: 'FM_ERR_STORE_CLOSED' });
  });

  it('reads a never-written page with no round trip', async () => {
    const store = await RedisStore.connect(options(redis.url));
    const calls = async () => Number(/total_commands_processed:(\d+)/.exec(await redis.cli(0, 'INFO', 'stats'))![1]);
    const before = await calls();
    for (let i = 0; i < 50; i++) await store.read([i, i + 1000], [page(1), page(1)]);
    expect(await calls() - before).toBeLessThan(5); // just the INFO calls themselves
    await store.close();
  });

  it('keeps the keys with keep, under the namespace prefix', async () => {
    const store = await RedisStore.connect(options(redis.url, { keep: true, namespace: 'kept-run' }));
    await store.write([1, 2, 40], [page(1), page(2), page(40)]);
    await store.close();
    const keys = (await redis.cli(0, '--scan', '--pattern', '{kept-run:*')).split('\n').sort();
    expect(keys).toEqual(['{kept-run:0}:1', '{kept-run:0}:2', '{kept-run:2}:40']);
    expect(await redis.cli(0, 'STRLEN', '{kept-run:2}:40')).toBe(String(PAGE));
    await redis.cli(0, 'FLUSHALL');
  });

  it('fails a read of a written page whose key vanished (FM_ERR_REDIS_PAGE_LOST), never zeros', async () => {
    const store = await RedisStore.connect(options(redis.url));
    await store.write([7], [page(7)]);
    await redis.cli(0, 'FLUSHALL');
    await rejectsWith(store.read([7], [page(0)]), 'FM_ERR_REDIS_PAGE_LOST', 3000, /page 7 .* is gone/);
    await store.close();
  });

  it('refuses a wrong or missing password (FM_ERR_REDIS_AUTH)', async () => {
    await rejectsWith(RedisStore.connect(options(redis.url.replace('store-pw', 'wrong'))), 'FM_ERR_REDIS_AUTH', 3000, /WRONGPASS/);
    await rejectsWith(RedisStore.connect(options(redis.url.replace(':store-pw@', ''))), 'FM_ERR_REDIS_AUTH', 3000, /needs a password/);
  });

  it('refuses a server whose policy may evict, saying how to fix it; accepts noeviction and volatile-*', async () => {
    try {
      await redis.cli(0, 'CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
      await rejectsWith(RedisStore.connect(options(redis.url)), 'FM_ERR_REDIS_EVICTION_POLICY', 3000,
        /maxmemory-policy allkeys-lru, which may evict farmem's pages; fix: redis-cli -h 127\.0\.0\.1 -p \d+ CONFIG SET maxmemory-policy noeviction/);
      await redis.cli(0, 'CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
      await (await RedisStore.connect(options(redis.url))).close();
    } finally {
      await redis.cli(0, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('fails writes with FM_ERR_REDIS_OOM when maxmemory is reached', async () => {
    const store = await RedisStore.connect(options(redis.url));
    const used = Number(/used_memory:(\d+)/.exec(await redis.cli(0, 'INFO', 'memory'))![1]);
    try {
      await redis.cli(0, 'CONFIG', 'SET', 'maxmemory', String(used + (1 << 20)));
      const batch = Array.from({ length: 64 }, (_, i) => i);
      const write = async () => { for (let b = 0; b < 16; b++) await store.write(batch.map((p) => p + b * 64), batch.map(() => page(b))); };
      await rejectsWith(write(), 'FM_ERR_REDIS_OOM', 5000, /out of memory and refuses page writes/);
    } finally {
      await redis.cli(0, 'CONFIG', 'SET', 'maxmemory', '0');
      await store.close();
    }
  });

  it('reports a server that is not there (FM_ERR_REDIS_UNREACHABLE), fast', async () => {
    await rejectsWith(RedisStore.connect(options('redis://127.0.0.1:1')), 'FM_ERR_REDIS_UNREACHABLE', 3000, /ECONNREFUSED/);
  });

  it('fails calls within the deadline when the server is killed (FM_ERR_REDIS_UNREACHABLE)', async () => {
    const doomed = await startRedis();
    try {
      const store = await RedisStore.connect(options(doomed.url, { timeoutMs: 1500 }));
      await store.write([1], [page(1)]);
      await doomed.kill(0);
      await rejectsWith(store.read([1], [page(0)]), 'FM_ERR_REDIS_UNREACHABLE', 4000, /lost the connection/);
      await rejectsWith(store.write([2], [page(2)]), 'FM_ERR_REDIS_UNREACHABLE', 4000);
      await store.close(); // bounded too: the delete fails and is reported, the socket is dropped
    } finally {
      await doomed.close();
    }
  });
});

describe('a 3-shard Redis Cluster', () => {
  let cluster: RedisServers;
  beforeAll(async () => { cluster = await startRedis({ cluster: 3 }); });
  afterAll(async () => { await cluster?.close(); });

  const dbsizes = async () => Promise.all([0, 1, 2].map(async (i) => Number(await cluster.cli(i, 'DBSIZE'))));

  it('puts a chunk of nearby pages on one shard, spreads chunks over all shards, and round-trips them', async () => {
    const store = await RedisStore.connect(options(cluster.url));
    expect(store.name).toBe(cluster.url);
    const chunk = Array.from({ length: 16 }, (_, i) => 32 + i); // one 16-page chunk
    await store.write(chunk, chunk.map((p) => page(p)));
    expect((await dbsizes()).sort()).toEqual([0, 0, 16]);
    const many = Array.from({ length: 16 * 24 }, (_, i) => 1000 + i);
    await store.write(many, many.map((p) => page(p & 255)));
    expect((await dbsizes()).every((n) => n > 16)).toBe(true);
    const all = [...chunk, ...many];
    const into = all.map(() => new Uint8Array(PAGE));
    await store.read(all, into);
    all.forEach((p, i) => expect(into[i]![0]).toBe(p & 255));
    await store.close();
    expect(await dbsizes()).toEqual([0, 0, 0]);
  });

  it('fails within the deadline with a typed error when a master dies (its slots have no master)', async () => {
    const store = await RedisStore.connect(options(cluster.url, { timeoutMs: 1500 }));
    const pages = Array.from({ length: 16 * 12 }, (_, i) => i);
    await store.write(pages, pages.map(() => page(1)));
    await cluster.kill(1);
    const t0 = performance.now();
    const err = await store.read(pages, pages.map(() => new Uint8Array(PAGE))).then(() => null, (e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(err).toBeInstanceOf(RedisStoreError);
    expect((err as RedisStoreError).code, (err as Error).message).toMatch(/^FM_ERR_REDIS_(CLUSTER_DOWN|UNREACHABLE)$/);
    await store.close();
    // Once the survivors mark the cluster failed (node timeout 2 s), a new run is refused at connect.
    const deadline = Date.now() + 15_000;
    while (!/cluster_state:fail/.test(await cluster.cli(0, 'CLUSTER', 'INFO')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await rejectsWith(RedisStore.connect(options(cluster.url)), 'FM_ERR_REDIS_CLUSTER_DOWN', 5000, /cluster_state/);
  });
});
