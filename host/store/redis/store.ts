/**
 * @fileoverview `RedisStore`: a `PageStore` on a Redis server or a Redis Cluster (client.ts).
 *
 * - Keys: page p of namespace NS is the binary string value of `{NS:c}:p`, c = p / chunkPages. The
 *   hash tag `{NS:c}` puts a chunk of neighbouring pages (64 KiB by default) in one cluster slot, so
 *   a batch of nearby pages is one MGET/MSET on one shard, and different runs spread differently.
 *   `redis-cli --scan --pattern '{NS:*'` lists a run's pages (with `keep`).
 * - Batching: one read/write call (what the I/O worker drained at once) becomes one MGET/MSET per
 *   run of same-chunk pages (GET/SET for a single page), all issued at once and pipelined.
 * - Never a silent zero page: the store remembers which pages it wrote (page-set.ts). A never-written
 *   page reads as zeros without a round trip; a written page whose key is gone (evicted, flushed,
 *   server restarted empty) fails with FM_ERR_REDIS_PAGE_LOST.
 * - Safety at connect: a cluster must serve all 16384 slots (CLUSTER INFO of every master), else
 *   FM_ERR_REDIS_CLUSTER_DOWN; every master's `maxmemory-policy` must not evict farmem's keys. `noeviction`
 *   and the `volatile-*` policies are accepted (the latter evict only keys with a TTL, and farmem
 *   sets none); `allkeys-*` is refused with FM_ERR_REDIS_EVICTION_POLICY and the command to fix it.
 * - Deadline: every call settles within `timeoutMs`, with a typed error (client.ts `redisError`) for
 *   OOM, auth, lost connection, a cluster slot without a master, or silence; a reply arriving after
 *   the deadline is dropped, never copied into the caller's buffers.
 * - Close deletes every key the run wrote (UNLINK per chunk), unless `keep` or the server was found
 *   unreachable.
 */
import { OptionError, RedisStoreError } from '../../errors.js';
import { checkPageSize } from '../../layout.js';
import { copyBytes } from '../../shared-copy.js';
import type { PageStore } from '../page-store.js';
import { connectRedis, isClusterDown, redisError, type RedisConnection } from './client.js';
import { PageSet } from './page-set.js';
import { parseRedisUrl, type RedisEndpoint } from './url.js';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`, `rediss://…`, or `redis+cluster://host:port,host:port,…`. */
  url: string;
  /** Page size in bytes, a power of two in [256, 65536]. */
  pageSize: number;
  /** Prefix of this run's keys: letters, digits, `.`, `_`, `-` (at most 64). */
  namespace: string;
  /** Deadline of every call (connecting included). Default 5000 ms. */
  timeoutMs?: number;
  /** Leave the run's pages in Redis at close (to inspect them). Default false. */
  keep?: boolean;
  /** Pages per hash-tag chunk (a power of two). Default: 64 KiB worth, between 1 and 256 pages. */
  chunkPages?: number;
}

const KNOWN = new Set(['url', 'pageSize', 'namespace', 'timeoutMs', 'keep', 'chunkPages']);
// Long enough to ride out a failover's first retries, short enough that a dead server is reported promptly.
const DEFAULT_TIMEOUT_MS = 5000;
const NAMESPACE = /^[A-Za-z0-9._-]{1,64}$/;
/** Errors after which the server, or a shard, is taken to be out of reach. */
const UNREACHABLE = new Set(['FM_ERR_REDIS_UNREACHABLE', 'FM_ERR_REDIS_CLUSTER_DOWN', 'FM_ERR_REDIS_TIMEOUT']);
/** Policies that may evict a key without a TTL, i.e. one of farmem's pages. */
const EVICTING = /^allkeys-/;

function validate(o: RedisStoreOptions): Required<RedisStoreOptions> {
  if (o === null || typeof o !== 'object') throw new OptionError('RedisStore options must be an object');
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) throw new OptionError(`Invalid option in RedisStore.connect() call: "${key}"`);
  if (typeof o.url !== 'string') throw new OptionError('"url" must be a redis:// or redis+cluster:// URL');
  checkPageSize(o.pageSize, '"pageSize"');
  if (typeof o.namespace !== 'string' || !NAMESPACE.test(o.namespace)) {
    throw new OptionError(`"namespace" must be 1 to 64 letters, digits, ".", "_" or "-", got ${JSON.stringify(o.namespace)}`);
  }
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 3_600_000) throw new OptionError(`"timeoutMs" must be an integer from 1 to 3600000, got ${timeoutMs}`);
  const keep = o.keep ?? false;
  if (typeof keep !== 'boolean') throw new OptionError('"keep" must be a boolean');
  const chunkPages = o.chunkPages ?? Math.max(1, Math.min(256, 65536 / o.pageSize));
  if (!Number.isSafeInteger(chunkPages) || chunkPages < 1 || chunkPages > 65536 || (chunkPages & (chunkPages - 1)) !== 0) {
    throw new OptionError(`"chunkPages" must be a power of two from 1 to 65536, got ${chunkPages}`);
  }
  return { url: o.url, pageSize: o.pageSize, namespace: o.namespace, timeoutMs, keep, chunkPages };
}

/** The `maxmemory_policy` line of an `INFO memory` reply. */
function policyOf(info: string): string | null {
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? null;
}

export class RedisStore implements PageStore {
  readonly name: string;
  readonly pageSize: number;
  readonly namespace: string;
  private readonly conn: RedisConnection;
  private readonly o: Required<RedisStoreOptions>;
  private readonly chunkShift: number;
  private readonly written = new PageSet();
  private closed = false;
  /** Set once a call failed because the server (or a shard) could not be reached: close then skips the delete. */
  private unreachable = false;

  private constructor(o: Required<RedisStoreOptions>, endpoint: RedisEndpoint, conn: RedisConnection) {
    this.o = o;
    this.name = endpoint.displayName;
    this.pageSize = o.pageSize;
    this.namespace = o.namespace;
    this.conn = conn;
    this.chunkShift = Math.log2(o.chunkPages);
  }

  /**
   * Connects and checks every master's eviction policy. Rejects with a `RedisStoreError`:
   * FM_ERR_REDIS_AUTH, FM_ERR_REDIS_UNREACHABLE, FM_ERR_REDIS_EVICTION_POLICY, FM_ERR_REDIS_CLUSTER_DOWN.
   */
  static async connect(options: RedisStoreOptions): Promise<RedisStore> {
    const o = validate(options);
    const endpoint = parseRedisUrl(o.url);
    const conn = await connectRedis(endpoint, o.timeoutMs);
    const store = new RedisStore(o, endpoint, conn);
    try {
      await store.checkServers();
    } catch (err) {
      await conn.close();
      throw err;
    }
    return store;
  }

  /** Pages written and not freed (their keys exist in Redis). */
  get storedPages(): number {
    return this.written.size;
  }

  /** The Redis key of a page. */
  key(page: number): string {
    return `{${this.namespace}:${page >>> this.chunkShift}}:${page}`;
  }

  async read(pages: ArrayLike<number>, into: readonly Uint8Array[]): Promise<void> {
    this.check(pages, into, 'read');
    if (pages.length === 1) return this.readOne(pages[0]!, into[0]!);
    const jobs: Promise<void>[] = [];
    let live = true; // cleared at the deadline: a late reply must not land in a reused frame
    const landed = (idx: number[], values: (Buffer | null)[]) => {
      if (!live) return;
      for (let k = 0; k < idx.length; k++) this.land(pages[idx[k]!]!, values[k] ?? null, into[idx[k]!]!);
    };
    this.forEachChunk(pages, (idx, keys) => {
      if (idx.length === 1) jobs.push(this.conn.get(keys[0]!).then((v) => landed(idx, [v])));
      else jobs.push(this.conn.mget(keys).then((vs) => landed(idx, vs)));
    }, (i) => into[i]!.fill(0)); // never written: demand-zero, no round trip
    if (jobs.length === 0) return;
    await this.deadline<unknown>(jobs.length === 1 ? jobs[0]! : Promise.all(jobs), 'read', () => { live = false; });
  }

  /** The demand fault's common case: one page, one GET, no grouping. */
  private async readOne(page: number, into: Uint8Array): Promise<void> {
    if (!this.written.has(page)) {
      into.fill(0);
      return;
    }
    // Copied only after the reply came within the deadline; a late one is dropped with its promise.
    this.land(page, await this.deadline(this.conn.get(this.key(page)), 'read', null), into);
  }

  async write(pages: ArrayLike<number>, data: readonly Uint8Array[]): Promise<void> {
    this.check(pages, data, 'write');
    // Marked before the command goes out: a later read of the page is ordered after this write on
    // the same connection (same key, same node), and must not take the no-round-trip zero path.
    for (let i = 0; i < pages.length; i++) this.written.add(pages[i]!);
    const jobs: Promise<unknown>[] = [];
    this.forEachChunk(pages, (idx, keys) => {
      if (idx.length === 1) {
        jobs.push(this.conn.set(keys[0]!, bytes(data[idx[0]!]!)));
        return;
      }
      const pairs: (string | Buffer)[] = new Array(idx.length * 2);
      for (let k = 0; k < idx.length; k++) {
        pairs[2 * k] = keys[k]!;
        pairs[2 * k + 1] = bytes(data[idx[k]!]!);
      }
      jobs.push(this.conn.mset(pairs));
    }, null);
    await this.deadline(jobs.length === 1 ? jobs[0]! : Promise.all(jobs), 'write', null);
  }

  async free(pages: ArrayLike<number>): Promise<void> {
    if (this.closed) throw this.closedError();
    const keep: number[] = [];
    for (let i = 0; i < pages.length; i++) if (this.written.has(pages[i]!)) keep.push(pages[i]!);
    for (const p of keep) this.written.delete(p);
    await this.unlinkPages(keep);
  }

  /**
   * Deletes the run's keys (unless `keep`) and closes the connection. After the server was found
   * unreachable the delete is not tried (the run's own error already says so, and it would only wait
   * out another deadline); any other failed delete is reported on stderr.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      if (!this.o.keep && this.written.size > 0 && !this.unreachable && this.conn.connected) {
        const pages: number[] = [];
        this.written.forEach((p) => pages.push(p));
        try {
          await this.unlinkPages(pages);
        } catch (err) {
          process.stderr.write(`farmem: could not delete ${pages.length} pages of namespace ${this.namespace} from ${this.name}: ${(err as Error).message}\n`);
        }
      }
    } finally {
      await this.conn.close();
    }
  }

  /* ── internals ──────────────────────────────────────────────────────────────────────────── */

  private async checkServers(): Promise<void> {
    for (const m of await this.deadline(this.conn.clusterInfo(), 'CLUSTER INFO', null)) {
      const state = /^cluster_state:(\w+)/m.exec(m.text)?.[1];
      const slots = /^cluster_slots_ok:(\d+)/m.exec(m.text)?.[1];
      if (state !== 'ok' || slots !== '16384') {
        throw new RedisStoreError('FM_ERR_REDIS_CLUSTER_DOWN',
          `Redis cluster ${this.name} does not serve every slot (${m.address} reports cluster_state:${state ?? '?'}, ${slots ?? '?'} of 16384 slots ok); a master is down with no replica to take over`);
      }
    }
    const masters = await this.deadline(this.conn.mastersInfo('memory'), 'INFO memory', null);
    for (const m of masters) {
      const policy = policyOf(m.text);
      if (policy === null) {
        throw new RedisStoreError('FM_ERR_REDIS_EVICTION_POLICY', `Redis at ${m.address} does not report its maxmemory-policy (INFO memory), so farmem cannot tell whether it may evict pages`);
      }
      if (EVICTING.test(policy)) {
        const [host, port] = [m.address.slice(0, m.address.lastIndexOf(':')), m.address.slice(m.address.lastIndexOf(':') + 1)];
        throw new RedisStoreError('FM_ERR_REDIS_EVICTION_POLICY',
          `Redis at ${m.address} has maxmemory-policy ${policy}, which may evict farmem's pages; fix: redis-cli -h ${host} -p ${port} CONFIG SET maxmemory-policy noeviction (and set it in redis.conf)`);
      }
    }
  }

  /** Copies one reply into its frame; a missing key of a written page is an error, never zeros. */
  private land(page: number, value: Buffer | null, into: Uint8Array): void {
    if (value === null) {
      throw new RedisStoreError('FM_ERR_REDIS_PAGE_LOST', `page ${page} (key ${this.key(page)}) is gone from Redis at ${this.name}: evicted, flushed or the server restarted empty`);
    }
    if (value.length !== this.pageSize) {
      throw new RedisStoreError('FM_ERR_REDIS', `key ${this.key(page)} at ${this.name} holds ${value.length} bytes, not a ${this.pageSize}-byte page: something else wrote into namespace ${this.namespace}`);
    }
    copyBytes(into, 0, value);
  }

  /**
   * Groups the written pages of a batch into runs of consecutive entries in the same chunk and calls
   * `each(indices, keys)` per run; calls `unwritten(i)` for pages never written (if given).
   */
  private forEachChunk(pages: ArrayLike<number>, each: (idx: number[], keys: string[]) => void, unwritten: ((i: number) => void) | null): void {
    let idx: number[] = [];
    let keys: string[] = [];
    let chunk = -1;
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i]!;
      if (unwritten && !this.written.has(p)) {
        unwritten(i);
        continue;
      }
      const c = p >>> this.chunkShift;
      if (c !== chunk && idx.length > 0) {
        each(idx, keys);
        idx = [];
        keys = [];
      }
      chunk = c;
      idx.push(i);
      keys.push(this.key(p));
    }
    if (idx.length > 0) each(idx, keys);
  }

  private async unlinkPages(pages: readonly number[]): Promise<void> {
    if (pages.length === 0) return;
    const jobs: Promise<number>[] = [];
    this.forEachChunk(pages, (_idx, keys) => { jobs.push(this.conn.unlink(keys)); }, null);
    await this.deadline(Promise.all(jobs), 'UNLINK', null);
  }

  /** Settles with `work`, or rejects with a typed error at the deadline (then calls `expire`). */
  private deadline<T>(work: Promise<T>, what: string, expire: (() => void) | null): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const fail = (err: RedisStoreError) => {
        expire?.();
        if (UNREACHABLE.has(err.code)) this.unreachable = true;
        reject(err);
      };
      const timer = setTimeout(() => fail(this.silence(what)), this.o.timeoutMs);
      work.then(
        (v) => { clearTimeout(timer); resolve(v); },
        (err: unknown) => { clearTimeout(timer); fail(redisError(err, this.name)); },
      );
    });
  }

  /** The error for a call that got no answer in time: unreachable if the connection is down. */
  private silence(what: string): RedisStoreError {
    const ms = this.o.timeoutMs;
    const last = this.conn.lastError;
    if (!this.conn.connected) {
      return new RedisStoreError('FM_ERR_REDIS_UNREACHABLE', `lost the connection to Redis at ${this.name}${last ? ` (${last.message})` : ''}; ${what} got no answer within ${ms} ms`, { cause: last ?? undefined });
    }
    if (last && isClusterDown(last.message)) return redisError(last, this.name);
    // A cluster client stays ready while one shard's connection is down: a node error during this
    // call means the shard holding its keys did not answer.
    if (this.conn.cluster && last && performance.now() - this.conn.lastErrorAt <= ms && redisError(last, this.name).code === 'FM_ERR_REDIS_UNREACHABLE') {
      return new RedisStoreError('FM_ERR_REDIS_CLUSTER_DOWN', `Redis cluster ${this.name}: a shard did not answer ${what} within ${ms} ms (${last.message}); its master is down with no replica to take over`, { cause: last });
    }
    return new RedisStoreError('FM_ERR_REDIS_TIMEOUT', `Redis at ${this.name} did not answer ${what} within ${ms} ms`);
  }

  private closedError(): RedisStoreError {
    return new RedisStoreError('FM_ERR_STORE_CLOSED', `Redis store ${this.name} is closed`);
  }

  private check(pages: ArrayLike<number>, bufs: readonly Uint8Array[], what: string): void {
    if (this.closed) throw this.closedError();
    if (pages.length !== bufs.length) throw new RedisStoreError('FM_ERR_BAD_ARGUMENT', `${what}: ${pages.length} pages but ${bufs.length} buffers`);
    for (let i = 0; i < bufs.length; i++) {
      if (bufs[i]!.length !== this.pageSize) {
        throw new RedisStoreError('FM_ERR_BAD_ARGUMENT', `${what}: buffer ${i} has ${bufs[i]!.length} bytes, expected the page size ${this.pageSize}`);
      }
    }
  }
}

/** A Buffer view of the caller's bytes (no copy; the caller keeps them until the call settles). */
function bytes(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.length);
}
