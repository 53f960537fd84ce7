/**
 * @fileoverview `RemoteStore`: a `PageStore` over one or more farmem memory servers. Over 400 lines
 * because placement, batching, replicated reads and writes and re-replication all act on the same
 * slabs and links; the parts that stand alone are in `remote/`.
 *
 * - Placement: pages are grouped in slabs of `slabPages`; a slab's first write places it on
 *   `replication` servers by power-of-two-choices on free capacity (`remote/placement.ts`).
 * - Batching: one read/write/free call becomes one frame per server involved (more only when a
 *   frame would exceed the server's `maxFrameBytes`/`maxPagesPerRequest`).
 * - Pipelining: calls do not wait for each other; each server link keeps up to `maxInFlight`
 *   requests outstanding, matched by request id (`remote/link.ts`).
 * - Failure: every request has a deadline (`timeoutMs`); a dropped connection is re-established
 *   with backoff and in-flight requests resent; a server that stays away fails the requests that
 *   need it with a `StoreError` (FM_ERR_SERVER_UNREACHABLE) by their deadline — never a hang. A read
 *   tries another replica first when `replication` > 1. ERROR replies surface as `AuthError`,
 *   `ServerOutOfMemoryError` or `ProtocolError`.
 * - Ordering: all copies of a page go to the same servers over one ordered connection each, so a
 *   read issued after a write resolved sees that write (the `PageStore` contract).
 *
 * Replication r writes every page to r servers and reads from the first live one. When a server
 * fails or restarts empty (or misses a write), its copies are forgotten and `remote/repair.ts` copies
 * the affected slabs from a surviving copy onto other live servers in the background, until every
 * slab has r copies again (`stats.repair`).
 */
import { OptionError, ProtocolError, StoreError } from '../errors.js';
import { checkPageSize } from '../layout.js';
import { isServerUrl } from './remote/url.js';
import {
  encodeFree, encodeStats, encodeWrite, encodeWriteHead, listBytes, readOkBytes, MAX_NAMESPACE_BYTES, Op,
  type StatsOk,
} from '../protocol/index.js';
import type { PageStore } from './page-store.js';
import { ServerLink, type LinkStats, type PageReadDone } from './remote/link.js';
import { Placement } from './remote/placement.js';
import { Repairer, type RepairStats } from './remote/repair.js';

export interface RemoteStoreOptions {
  /** Memory servers, e.g. `['ws://127.0.0.1:7070']` or `['tcp://127.0.0.1:7071']` (`farmem serve --tcp-port`); schemes may be mixed. */
  urls: readonly string[];
  /** The servers' shared secret (`farmem serve --token`). */
  token: string;
  /** Namespace for this client's pages; clients in different namespaces never see each other's pages. */
  namespace: string;
  /** Page size in bytes, a power of two in [256, 65536]. */
  pageSize: number;
  /** Deadline of every request, reconnects included. */
  timeoutMs?: number;
  /** Copies of every page, on distinct servers (≤ urls.length). */
  replication?: number;
  /** Pages per slab, the unit of placement (a power of two). */
  slabPages?: number;
  /** Requests outstanding per server before further ones queue. */
  maxInFlight?: number;
  /** Requests queued per server before calls fail with FM_ERR_STORE_BUSY. */
  maxQueued?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Free every page this client placed when it closes (the namespace is then empty again). */
  freeOnClose?: boolean;
  /** @internal Random source for placement; tests inject a seeded one. */
  random?: () => number;
}

const DEFAULTS = {
  // Long enough to ride out a GC pause or a reconnect, short enough that a dead server is reported promptly.
  timeoutMs: 5000,
  replication: 1,
  // 256 pages (1 MiB of 4 KiB pages): Infiniswap's slab granularity; placement state stays small.
  slabPages: 256,
  // Enough to keep a loopback link busy (bandwidth × RTT ≈ 1 GB/s × 50 µs ≈ 12 × 4 KiB) with margin.
  maxInFlight: 256,
  maxQueued: 16384,
  minBackoffMs: 50,
  maxBackoffMs: 2000,
  freeOnClose: true,
};

const KNOWN = new Set(['urls', 'token', 'namespace', 'pageSize', 'random', ...Object.keys(DEFAULTS)]);

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new OptionError(`"${name}" must be an integer between ${min} and ${max}, got ${String(v)}`);
  }
  return v;
}

function pow2(name: string, v: number, min: number, max: number): number {
  int(name, v, min, max);
  if ((v & (v - 1)) !== 0) throw new OptionError(`"${name}" must be a power of two between ${min} and ${max}, got ${v}`);
  return v;
}

type Resolved = Required<Omit<RemoteStoreOptions, 'random'>> & { random: () => number };

function validate(options: RemoteStoreOptions): Resolved {
  if (options === null || typeof options !== 'object') throw new OptionError('RemoteStore options must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new OptionError(`Invalid option in RemoteStore.connect() call: "${key}"`);
  }
  const o = { ...DEFAULTS, random: Math.random, ...options };
  if (!Array.isArray(o.urls) || o.urls.length === 0) throw new OptionError('"urls" must be a non-empty array of ws:// or tcp:// URLs');
  for (const u of o.urls) {
    if (!isServerUrl(u)) throw new OptionError(`"urls" entries must look like ws://host:port or tcp://host:port, got "${String(u)}"`);
  }
  if (new Set(o.urls).size !== o.urls.length) throw new OptionError('"urls" lists a server twice');
  if (typeof o.token !== 'string') throw new OptionError('"token" must be a string');
  if (typeof o.namespace !== 'string' || o.namespace.length === 0 || Buffer.byteLength(o.namespace) > MAX_NAMESPACE_BYTES) {
    throw new OptionError(`"namespace" must be a non-empty string of at most ${MAX_NAMESPACE_BYTES} UTF-8 bytes`);
  }
  checkPageSize(o.pageSize, '"pageSize"');
  int('timeoutMs', o.timeoutMs, 1, 3_600_000);
  int('replication', o.replication, 1, o.urls.length);
  pow2('slabPages', o.slabPages, 1, 1 << 20);
  int('maxInFlight', o.maxInFlight, 1, 1 << 20);
  int('maxQueued', o.maxQueued, 1, 1 << 24);
  int('minBackoffMs', o.minBackoffMs, 1, 60_000);
  int('maxBackoffMs', o.maxBackoffMs, o.minBackoffMs, 600_000);
  if (typeof o.freeOnClose !== 'boolean') throw new OptionError('"freeOnClose" must be a boolean');
  if (typeof o.random !== 'function') throw new OptionError('"random" must be a function returning [0, 1)');
  return o as Resolved;
}

export interface RemoteStoreStats {
  readonly slabs: number;
  readonly servers: readonly LinkStats[];
  readonly repair: RepairStats;
}

export class RemoteStore implements PageStore {
  readonly name: string;
  readonly pageSize: number;
  readonly #o: Resolved;
  readonly #links: readonly ServerLink[];
  readonly #placement: Placement<ServerLink>;
  readonly #repairer: Repairer;
  #closed = false;

  private constructor(o: Resolved, links: ServerLink[]) {
    this.#o = o;
    this.name = o.urls.join(',');
    this.pageSize = o.pageSize;
    this.#links = links;
    this.#placement = new Placement(links, o.slabPages, o.pageSize, o.replication, o.random);
    this.#repairer = new Repairer(this.#placement, o.pageSize);
  }

  /**
   * Connects to every server (HELLO, then STATS for its free capacity). Rejects with `AuthError`
   * for a wrong token, `ProtocolError` for a page-size or version mismatch, `StoreError` when a
   * server cannot be reached within `timeoutMs`.
   */
  static async connect(options: RemoteStoreOptions): Promise<RemoteStore> {
    const o = validate(options);
    let store: RemoteStore | null = null; // link state changes before the store exists are not repairs
    const links = o.urls.map((url) => new ServerLink({
      url, token: o.token, namespace: o.namespace, pageSize: o.pageSize, timeoutMs: o.timeoutMs,
      maxInFlight: o.maxInFlight, maxQueued: o.maxQueued, minBackoffMs: o.minBackoffMs, maxBackoffMs: o.maxBackoffMs,
      onState: (link) => { if (store) store.#repairer.onLinkState(link); },
    }));
    try {
      await settleAll(links.map((l) => l.open()));
      const stats = await settleAll(links.map((l) => l.call((id) => encodeStats(id))));
      stats.forEach((s, i) => {
        const st = s as StatsOk;
        links[i]!.freeBytes = st.capacityBytes - st.usedBytes;
      });
    } catch (err) {
      await Promise.all(links.map((l) => l.close()));
      throw err;
    }
    store = new RemoteStore(o, links);
    return store;
  }

  get servers(): readonly string[] {
    return this.#o.urls;
  }

  get stats(): RemoteStoreStats {
    let slabs = 0;
    for (const _ of this.#placement.slabs()) slabs++;
    return { slabs, servers: this.#links.map((l) => l.snapshot()), repair: this.#repairer.stats };
  }

  read(pages: ArrayLike<number>, into: readonly Uint8Array[]): Promise<void> {
    try {
      this.#check(pages, into, 'read');
    } catch (err) {
      return Promise.reject(err);
    }
    if (pages.length === 1 && this.#o.replication === 1) {
      // One page, one copy: `readPage` (a recycled request, the reply copied straight into place),
      // one promise (not an async function's on top).
      const buf = into[0]!;
      return new Promise<void>((resolve, reject) => this.readPage(pages[0]!, buf, 0, (err) => (err ? reject(err) : resolve())));
    }
    return this.#readMany(pages, into);
  }

  async #readMany(pages: ArrayLike<number>, into: readonly Uint8Array[]): Promise<void> {
    const idx: number[] = [];
    for (let i = 0; i < pages.length; i++) idx.push(i);
    await this.#readIndices(pages, into, idx, null);
  }

  /**
   * Reads `page` into `into[at .. at + pageSize)` and calls `done` (the I/O worker's fault path).
   * With one copy per page this is a recycled request on the page's link, answered without a
   * promise; replicated reads (which may fall back to another copy) go through `read`.
   */
  readPage(page: number, into: Uint8Array, at: number, done: PageReadDone): void {
    if (this.#closed) {
      done(new StoreError('FM_ERR_STORE_CLOSED', `remote store ${this.name} is closed`));
      return;
    }
    if (!Number.isInteger(page) || page < 0 || page > 0xffff_ffff) {
      done(new StoreError('FM_ERR_BAD_ARGUMENT', `read: page number ${page} is not a u32`));
      return;
    }
    if (this.#o.replication > 1) {
      this.read([page], [into.subarray(at, at + this.pageSize)]).then(() => done(null), done);
      return;
    }
    const where = this.#placement.lookup(page);
    if (!where) {
      into.fill(0, at, at + this.pageSize); // never written: demand-zero
      done(null);
      return;
    }
    where[0]!.readPage(page, into, at, done);
  }

  async write(pages: ArrayLike<number>, data: readonly Uint8Array[]): Promise<void> {
    this.#check(pages, data, 'write');
    const groups = new Map<ServerLink, number[]>();
    /** Pages also going to the target of a slab copy in progress (re-replication). */
    let copyGroups: Map<ServerLink, number[]> | null = null;
    let dropped = false;
    const placement = this.#placement;
    for (let i = 0; i < pages.length; i++) {
      const page = pages[i]!;
      const where = placement.place(page);
      placement.markWritten(page);
      for (const link of where) {
        // A copy on a disconnected server would miss this write: drop it now rather than wait for
        // the deadline, as long as a connected copy remains (dropReplica keeps the last one).
        if (!link.ready && where.some((l) => l.ready) && placement.dropReplica(page, link)) {
          dropped = true;
          continue;
        }
        push(groups, link, i);
      }
      const copy = placement.copyOf(page);
      if (copy) {
        copy.touched.add(page);
        push(copyGroups ??= new Map(), copy.target, i);
      }
    }
    if (dropped) this.#repairer.kick();
    if (copyGroups) this.#writeCopies(copyGroups, pages, data);
    const jobs: Promise<unknown>[] = [];
    const jobLink: ServerLink[] = [];
    const jobPages: number[][] = [];
    for (const [link, idx] of groups) {
      const per = Math.max(1, Math.min(link.maxPagesPerRequest, Math.floor((link.maxFrameBytes - listBytes(0)) / (4 + this.pageSize))));
      for (let s = 0; s < idx.length; s += per) {
        const chunk = idx.length <= per ? idx : idx.slice(s, s + per);
        const nums = chunk.map((i) => pages[i]!);
        const bufs = chunk.map((i) => data[i]!);
        jobs.push(link.callWithData((id) => encodeWriteHead(id, nums, bufs, this.pageSize), bufs));
        jobLink.push(link);
        jobPages.push(nums);
      }
    }
    if (jobs.length === 1) {
      await jobs[0];
      return;
    }
    const results = await Promise.allSettled(jobs);
    let first: unknown = null;
    for (let j = 0; j < results.length; j++) {
      const r = results[j]!;
      if (r.status === 'fulfilled') continue;
      // That copy missed this write and is stale now: forget it. With replication, the write
      // still succeeds when every slab kept a copy, unless the server answered with an error.
      let lost = this.#o.replication === 1;
      if (!lost) for (const p of jobPages[j]!) if (!this.#placement.dropReplica(p, jobLink[j]!)) lost = true;
      if (lost || r.reason instanceof ProtocolError) first ??= r.reason;
    }
    if (this.#o.replication > 1 && results.some((r) => r.status === 'rejected')) this.#repairer.kick();
    if (first !== null) throw first;
  }

  /** Writes pages of slabs being copied to the copy's target; a failure abandons that copy only. */
  #writeCopies(groups: Map<ServerLink, number[]>, pages: ArrayLike<number>, data: readonly Uint8Array[]): void {
    for (const [link, idx] of groups) {
      const per = Math.max(1, Math.min(link.maxPagesPerRequest, Math.floor((link.maxFrameBytes - listBytes(0)) / (4 + this.pageSize))));
      for (let s = 0; s < idx.length; s += per) {
        const chunk = idx.slice(s, s + per);
        const nums = chunk.map((i) => pages[i]!);
        // Copied into the frame (encodeWrite): the write does not wait for its copies, so the
        // caller may reuse `data` while this one is still queued or resent.
        link.call((id) => encodeWrite(id, nums, chunk.map((i) => data[i]!), this.pageSize)).catch(() => {
          for (const p of nums) {
            const c = this.#placement.copyOf(p);
            if (c && c.target === link) c.failed = true;
          }
        });
      }
    }
  }

  async free(pages: ArrayLike<number>): Promise<void> {
    this.#open();
    const groups = new Map<ServerLink, number[]>();
    for (let i = 0; i < pages.length; i++) {
      const page = pages[i]!;
      const where = this.#placement.lookup(page);
      if (!where) continue;
      this.#placement.markFreed(page);
      for (const link of where) push(groups, link, page);
      const copy = this.#placement.copyOf(page);
      if (copy) {
        copy.touched.add(page);
        push(groups, copy.target, page);
      }
    }
    await settleAll(this.#freeJobs(groups));
  }

  /** Frees this client's pages (with `freeOnClose`) and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#o.freeOnClose) {
      this.#repairer.stop();
      const groups = new Map<ServerLink, number[]>();
      const n = this.#o.slabPages;
      const slabs: Array<[number, readonly ServerLink[]]> = [...this.#placement.slabs()];
      for (const c of this.#placement.copies()) slabs.push([c.slab, [c.target]]); // what a copy already moved
      for (const [slab, where] of slabs) {
        for (const link of where) {
          if (link.state !== 'ready') continue;
          for (let p = slab * n; p < (slab + 1) * n; p++) push(groups, link, p);
        }
      }
      // Best effort: a server that died took the pages with it.
      await Promise.allSettled(this.#freeJobs(groups));
    } else {
      // The pages stay: leave them with r copies. Servers that are down either come back or fail
      // (and are repaired around) within the deadline; then running copies finish.
      const deadline = Date.now() + 2 * this.#o.timeoutMs;
      while (Date.now() < deadline && this.#links.some((l) => l.state === 'down')) await new Promise((r) => setTimeout(r, 20));
      await this.#repairer.idle(Math.max(0, deadline - Date.now()) + this.#o.timeoutMs);
      this.#repairer.stop();
    }
    await Promise.all(this.#links.map((l) => l.close()));
  }

  /* ── internals ──────────────────────────────────────────────────────────────────────────── */

  #freeJobs(groups: Map<ServerLink, number[]>): Promise<unknown>[] {
    const jobs: Promise<unknown>[] = [];
    for (const [link, nums] of groups) {
      const per = Math.max(1, Math.min(link.maxPagesPerRequest, Math.floor((link.maxFrameBytes - listBytes(0)) / 4)));
      for (let s = 0; s < nums.length; s += per) {
        const chunk = nums.slice(s, s + per);
        jobs.push(link.call((id) => encodeFree(id, chunk)));
      }
    }
    return jobs;
  }

  /**
   * Reads `pages[i]` into `into[i]` for each i in `idx`, each from the first usable replica not in
   * `exclude`; when a server fails with a transport error and another replica exists, retries there.
   */
  async #readIndices(pages: ArrayLike<number>, into: readonly Uint8Array[], idx: readonly number[], exclude: Set<ServerLink> | null): Promise<void> {
    const groups = new Map<ServerLink, number[]>();
    for (const i of idx) {
      const where = this.#placement.lookup(pages[i]!);
      if (!where) {
        into[i]!.fill(0); // never written: demand-zero
        continue;
      }
      push(groups, this.#replica(where, exclude, pages[i]!), i);
    }
    const jobs: Promise<void>[] = [];
    for (const [link, all] of groups) {
      const per = Math.max(1, Math.min(link.maxPagesPerRequest, Math.floor((link.maxFrameBytes - readOkBytes(0, this.pageSize)) / this.pageSize)));
      for (let s = 0; s < all.length; s += per) {
        const chunk = all.length <= per ? all : all.slice(s, s + per);
        jobs.push(this.#readChunk(link, pages, into, chunk, exclude));
      }
    }
    await settleAll(jobs);
  }

  async #readChunk(link: ServerLink, pages: ArrayLike<number>, into: readonly Uint8Array[], chunk: readonly number[], exclude: Set<ServerLink> | null): Promise<void> {
    try {
      const nums = new Uint32Array(chunk.length);
      const dests: Uint8Array[] = [];
      for (let k = 0; k < chunk.length; k++) {
        nums[k] = pages[chunk[k]!]!;
        dests.push(into[chunk[k]!]!);
      }
      await new Promise<void>((resolve, reject) => link.readPages(nums, dests, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      // A transport failure (not an answer from the server) may be recovered from another copy.
      if (this.#o.replication > 1 && err instanceof StoreError && !(err instanceof ProtocolError)) {
        const next = new Set(exclude ?? []);
        next.add(link);
        const others = chunk.every((i) => this.#placement.lookup(pages[i]!)!.some((l) => l.usable && !next.has(l)));
        if (others) return this.#readIndices(pages, into, chunk, next);
      }
      throw err;
    }
  }

  #replica(where: readonly ServerLink[], exclude: Set<ServerLink> | null, page: number): ServerLink {
    let fallback: ServerLink | undefined;
    for (const l of where) {
      if (exclude?.has(l)) continue;
      if (l.state === 'ready') return l;
      if (!fallback && l.usable) fallback = l;
    }
    if (fallback) return fallback;
    // Every copy is on a server that failed or lost its pages: let that link report why.
    return where.find((l) => !exclude?.has(l)) ?? where[0]!;
  }

  #open(): void {
    if (this.#closed) throw new StoreError('FM_ERR_STORE_CLOSED', `remote store ${this.name} is closed`);
  }

  #check(pages: ArrayLike<number>, bufs: readonly Uint8Array[], what: string): void {
    this.#open();
    if (pages.length !== bufs.length) {
      throw new StoreError('FM_ERR_BAD_ARGUMENT', `${what}: ${pages.length} pages but ${bufs.length} buffers`);
    }
    for (let i = 0; i < bufs.length; i++) {
      if (bufs[i]!.length !== this.pageSize) {
        throw new StoreError('FM_ERR_BAD_ARGUMENT', `${what}: buffer ${i} has ${bufs[i]!.length} bytes, expected the page size ${this.pageSize}`);
      }
      const p = pages[i]!;
      if (!Number.isInteger(p) || p < 0 || p > 0xffff_ffff) throw new StoreError('FM_ERR_BAD_ARGUMENT', `${what}: page number ${p} is not a u32`);
    }
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

/**
 * Like Promise.all, but waits for every promise to settle before rejecting (with the first error), so
 * no request of a failed call is still writing into the caller's buffers when the call returns.
 */
async function settleAll<T>(ps: readonly Promise<T>[]): Promise<T[]> {
  if (ps.length === 1) return [await ps[0]!];
  const rs = await Promise.allSettled(ps);
  const out: T[] = [];
  for (const r of rs) {
    if (r.status === 'rejected') throw r.reason;
    out.push(r.value);
  }
  return out;
}
