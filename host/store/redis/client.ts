/**
 * @fileoverview The only file that imports ioredis (v6; Node ≥ 20): opens a standalone or cluster
 * connection for the Redis page store, exposes the few commands it uses, and turns ioredis errors
 * into `RedisStoreError`s with a code.
 *
 * - Commands go out as they are issued and are pipelined on each connection (several in flight,
 *   replies matched in order). ioredis's auto-pipelining is off: deferring a lone GET to the next
 *   tick to coalesce it doubled its round trip here (≈13 → ≈30 µs for 4 KiB on loopback), and the
 *   store already batches a drain into one MGET/MSET per chunk of pages.
 * - While connecting, nothing is retried: a wrong password or a closed port fails at once with the
 *   server's own reason. Once ready, a dropped connection is retried with a short backoff and
 *   commands wait in ioredis's offline queue; the store's per-call deadline bounds that wait.
 * - Cluster: MOVED/ASK redirections and slot-map refreshes are ioredis's; reads go to masters only,
 *   so a read after a write never sees a stale replica.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisStoreError } from '../../errors.js';
import type { RedisEndpoint } from './url.js';

export interface MasterInfo {
  /** `host:port` of the master. */
  readonly address: string;
  /** Its `INFO <section>` text. */
  readonly text: string;
}

/** What the page store needs from a Redis connection. Keys of one multi-key call share a slot. */
export interface RedisConnection {
  readonly cluster: boolean;
  /** Ready to send (not reconnecting). */
  readonly connected: boolean;
  /** The last connection-level error ioredis reported, if any, and when (performance.now()). */
  readonly lastError: Error | null;
  readonly lastErrorAt: number;
  get(key: string): Promise<Buffer | null>;
  mget(keys: string[]): Promise<(Buffer | null)[]>;
  set(key: string, value: Buffer): Promise<unknown>;
  /** MSET key value key value … */
  mset(pairs: (string | Buffer)[]): Promise<unknown>;
  unlink(keys: string[]): Promise<number>;
  /** `INFO <section>` of every master. */
  mastersInfo(section: string): Promise<MasterInfo[]>;
  /** `CLUSTER INFO` of every master (empty for a standalone server). */
  clusterInfo(): Promise<MasterInfo[]>;
  close(): Promise<void>;
}

/** Backoff between reconnect attempts once connected: short, since the store's deadline is what bounds a call. */
const reconnectDelay = (times: number) => Math.min(25 * 2 ** Math.min(times, 5), 500);

/** Does this error text say a cluster slot has no usable master? */
export function isClusterDown(message: string): boolean {
  return /^(CLUSTERDOWN|MOVED|ASK|TRYAGAIN)\b|Too many Cluster redirections|refresh slots cache/.test(message);
}

/** Maps an error from ioredis (or a reply error) to a typed error naming the server. */
export function redisError(err: unknown, where: string): RedisStoreError {
  if (err instanceof RedisStoreError) return err;
  const e = err as { message?: string; code?: string; name?: string } | undefined;
  const message = e?.message ?? String(err);
  const code = e?.code ?? '';
  const say = (c: string, text: string) => new RedisStoreError(c, text, { cause: err });
  if (message.startsWith('NOAUTH')) {
    return say('FM_ERR_REDIS_AUTH', `Redis at ${where} needs a password (NOAUTH); put it in the --store URL: redis://[user]:PASSWORD@host:port`);
  }
  if (/^(WRONGPASS|NOPERM)\b/.test(message)) {
    return say('FM_ERR_REDIS_AUTH', `Redis at ${where} refused farmem: ${message}; check the user and password in the --store URL`
      + (message.startsWith('NOPERM') ? ' and that the ACL user may run GET, MGET, SET, MSET, UNLINK and INFO' : ''));
  }
  if (message.startsWith('OOM')) {
    return say('FM_ERR_REDIS_OOM', `Redis at ${where} is out of memory and refuses page writes (${message}); raise its maxmemory or give farmem more --local memory`);
  }
  if (isClusterDown(message) || e?.name === 'ClusterAllFailedError') {
    // ioredis follows MOVED to the slot's owner, fails to connect, asks again, and gives up with the last MOVED.
    const moved = /MOVED (\d+) (\S+)/.exec(message);
    return say('FM_ERR_REDIS_CLUSTER_DOWN', moved
      ? `Redis cluster ${where}: slot ${moved[1]} has no reachable master (${moved[2]} is down and no replica took over)`
      : `Redis cluster ${where} cannot serve a slot (${message}); a master is down with no replica to take over`);
  }
  if (/CERT|SELF_SIGNED|ERR_TLS|ERR_SSL/.test(code) || /self[- ]signed certificate|unable to verify|wrong version number/i.test(message)) {
    return say('FM_ERR_REDIS_TLS', `TLS with Redis at ${where} failed: ${message}; for a private CA start farmem with NODE_EXTRA_CA_CERTS=ca.pem (and use rediss:// only for a TLS port)`);
  }
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN)$/.test(code)
    || /Connection is closed|connect ETIMEDOUT|Stream isn't writeable|Reached the max retries/.test(message)) {
    return say('FM_ERR_REDIS_UNREACHABLE', `cannot reach Redis at ${where}: ${message}`);
  }
  return say('FM_ERR_REDIS', `Redis at ${where} failed: ${message}`);
}

class Connection implements RedisConnection {
  lastError: Error | null = null;
  lastErrorAt = 0;
  ready = false;

  constructor(private readonly client: Redis | Cluster, readonly cluster: boolean) {
    const record = (err: Error) => {
      this.lastError = err;
      this.lastErrorAt = performance.now();
    };
    client.on('error', record);
    client.on('node error', record); // a cluster node (shard) failing while the cluster client stays ready
  }

  get connected(): boolean {
    return this.client.status === 'ready';
  }

  get(key: string): Promise<Buffer | null> {
    return this.client.getBuffer(key);
  }

  mget(keys: string[]): Promise<(Buffer | null)[]> {
    return this.client.mgetBuffer(keys);
  }

  set(key: string, value: Buffer): Promise<unknown> {
    return this.client.set(key, value);
  }

  mset(pairs: (string | Buffer)[]): Promise<unknown> {
    return this.client.mset(pairs);
  }

  unlink(keys: string[]): Promise<number> {
    return this.client.unlink(keys);
  }

  async mastersInfo(section: string): Promise<MasterInfo[]> {
    const nodes = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    return Promise.all(nodes.map(async (node) => ({ address: `${node.options.host}:${node.options.port}`, text: await node.info(section) })));
  }

  async clusterInfo(): Promise<MasterInfo[]> {
    if (!(this.client instanceof Cluster)) return [];
    return Promise.all(this.client.nodes('master').map(async (node) => ({
      address: `${node.options.host}:${node.options.port}`,
      text: String(await node.cluster('INFO')),
    })));
  }

  async close(): Promise<void> {
    this.ready = false;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect(); // already closed or unreachable: just drop the sockets
    }
  }
}

/** Opens a connection; fails fast (no retries) with a typed error if the server refuses or is not there. */
export async function connectRedis(endpoint: RedisEndpoint, timeoutMs: number): Promise<RedisConnection> {
  let conn: Connection | null = null;
  const retry = (times: number) => (conn?.ready ? reconnectDelay(times) : null);
  const common: RedisOptions = {
    ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
    ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
    ...(endpoint.tls ? { tls: {} } : {}),
    connectTimeout: timeoutMs,
    // No per-request retry limit: the store's deadline bounds every call.
    maxRetriesPerRequest: null,
    lazyConnect: true,
  };
  const client = endpoint.cluster
    ? new Cluster(endpoint.nodes.map((n) => ({ host: n.host, port: n.port })), {
      lazyConnect: true,
      scaleReads: 'master',
      clusterRetryStrategy: retry,
      slotsRefreshTimeout: timeoutMs,
      retryDelayOnClusterDown: 100,
      retryDelayOnFailover: 100,
      retryDelayOnTryAgain: 100,
      redisOptions: common,
    })
    : new Redis({ ...common, host: endpoint.nodes[0]!.host, port: endpoint.nodes[0]!.port, db: endpoint.db, retryStrategy: retry });
  conn = new Connection(client, endpoint.cluster);
  // ioredis's connect() may never settle (a cluster whose state is not ok keeps its ready check
  // waiting), so the deadline rejects on its own and then drops the sockets.
  const TIMED_OUT = Symbol('timed out');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => { timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs); });
  try {
    const outcome = await Promise.race([client.connect(), deadline]);
    if (outcome === TIMED_OUT) {
      client.disconnect();
      const last = conn.lastError ? redisError(conn.lastError, endpoint.displayName) : null;
      if (last && (last.code === 'FM_ERR_REDIS_AUTH' || last.code === 'FM_ERR_REDIS_TLS' || !endpoint.cluster)) throw last;
      throw endpoint.cluster
        ? new RedisStoreError('FM_ERR_REDIS_CLUSTER_DOWN', `Redis cluster ${endpoint.displayName} did not become ready within ${timeoutMs} ms: `
          + `its cluster_state is not ok (a master down with no replica?) or no seed node answers${conn.lastError ? ` (last error: ${conn.lastError.message})` : ''}`)
        : new RedisStoreError('FM_ERR_REDIS_UNREACHABLE', `cannot reach Redis at ${endpoint.displayName}: no answer within ${timeoutMs} ms`);
    }
  } catch (err) {
    client.disconnect();
    if (err instanceof RedisStoreError) throw err;
    // ioredis's own rejection is often just "Connection is closed."; the server's reason came as an event.
    throw redisError(conn.lastError ?? err, endpoint.displayName);
  } finally {
    clearTimeout(timer);
  }
  conn.ready = true;
  return conn;
}
