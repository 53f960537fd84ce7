/**
 * @fileoverview `instantiate(wasm, imports, options)`: instruments a module (or takes an already
 * instrumented one), builds its pager and page store, writes its data segments as the initial image,
 * links the `farmem.*` imports and the caller's, and returns the original exports plus a
 * `VirtualMemory` view, stats and close().
 */
import { decodeMeta, META_SECTION, type GuestMeta } from '../abi.js';
import { OptionError, ThreadError } from '../errors.js';
import { checkPageSize, guestLayout, WASM_PAGE } from '../layout.js';
import type { PrefetchPolicy } from '../prefetch/policy.js';
import { EmbeddedStore } from '../store/embedded.js';
import { parseRedisUrl } from '../store/redis/url.js';
import type { StoreSpec } from '../store/registry.js';
import { SharedEmbeddedStore } from '../store/shared-embedded.js';
import type { SyncPageStore } from '../store/page-store.js';
import { ratio, type RuntimeStats } from '../stats/counters.js';
import { FarMemory } from './far-memory.js';
import { frameLimits, type FrameBudget } from './frame-allocator.js';
import { FaultKind, Pager } from './pager.js';
import { StoreIo, type PageIo } from './page-io.js';
import { PhysicalMemory } from './physical-memory.js';
import { launchReclaimer, startRemoteIo } from './remote-io.js';
import type { VirtualMemory } from './virtual-memory.js';
import { instrumentCached } from './instrument-cache.js';
import { Memories } from './memory64-imports.js';
import { importedMemories, writeInitialImage, type ImportedMemory } from './initial-image.js';
import { resolveOptimizations, type Optimizations } from '../instrument/optimizations.js';
import { instantiateGuest, readSegments } from './guest-link.js';
import { GuestSpawner, type GuestThread } from './guest-spawner.js';

export interface FarmemOptions {
  /** Page size in bytes: a power of two from 256 to 65536. Default 4096. */
  pageSize?: number;
  /**
   * Local memory (the frame pool): `{ fraction }` of the guest's current memory (the pool grows
   * with memory.grow), or `{ bytes }` fixed. Default `{ fraction: 1 }` (everything local).
   */
  local?: { fraction: number } | { bytes: number };
  /** An in-process store for evicted pages. Default: a new `EmbeddedStore`. */
  store?: SyncPageStore;
  /** Memory servers for evicted pages (instead of `store`); served by an I/O worker thread. */
  remote?: RemoteOptions;
  /** A Redis server or cluster for evicted pages (instead of `store`); served by an I/O worker thread. */
  redis?: RedisOptions;
  /** Prefetch policy name (`none`, `readahead`, `stride`, `leap`, or one registered). Default `none`. */
  prefetch?: string;
  /** Directory for cached instrumented modules; `false` disables the cache. Default: no cache. */
  cacheDir?: string | false;
  /** Receives every fault (page, kind); for tracing. */
  onFault?: (page: number, kind: FaultKind) => void;
  /** Called with (done, total) while instrumenting. */
  onProgress?: (done: number, total: number) => void;
  /** Record fault latency histograms per stage (`stats().latency`). Default false. */
  latency?: boolean;
  /** Instrumenter optimizations to switch off, e.g. `{ chunk: false }` (all on by default). */
  optimize?: Partial<Optimizations>;
}

export interface RemoteOptions {
  /** Server URLs, e.g. `['ws://127.0.0.1:7070']` or `['tcp://127.0.0.1:7071']`. */
  urls: string[];
  /** The servers' shared secret (`farmem serve --token`). */
  token: string;
  /** Namespace of this run's pages. Default: a random one. */
  namespace?: string;
  /** Copies of every page on distinct servers. Default 1. */
  replication?: number;
  /** Deadline of each request in ms. Default 5000. */
  timeoutMs?: number;
  /** Leave this run's pages on the servers after close (to inspect them with STATS). Default false: they are freed. */
  keep?: boolean;
}

export interface RedisOptions {
  /** `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), or `redis+cluster://host:port,host:port,…`. */
  url: string;
  /** Prefix of this run's keys. Default: a random one. */
  namespace?: string;
  /** Leave the run's pages in Redis after close (to inspect them). Default false: they are deleted. */
  keep?: boolean;
  /** Deadline of each request in ms. Default 5000. */
  timeoutMs?: number;
}

export interface FarmemInstance {
  readonly exports: WebAssembly.Exports;
  /** The guest's memory by virtual address, or null if the module has none. */
  readonly memory: VirtualMemory | null;
  readonly instance: WebAssembly.Instance;
  readonly meta: GuestMeta;
  stats(): RuntimeStats;
  /**
   * Starts a guest thread (shared-memory modules only): a worker instantiates the module over the
   * same virtual memory and calls `entry(...args)`; `result` settles with its return value.
   * Stats include a thread's faults once it ended. close() ends threads still running.
   */
  startThread(options: StartThreadOptions): GuestThread;
  close(): Promise<void>;
}

export interface StartThreadOptions {
  /** The export the thread calls. */
  entry: string;
  /** Its arguments (i64 as bigint). Default none. */
  args?: readonly (number | bigint)[];
  /** Pass the thread's id (1, 2, …) as the first argument (as WASI's wasi_thread_start). Default false. */
  withThreadId?: boolean;
  /**
   * The thread's imports, besides farmem's: an ES module whose default export `(context) => imports`
   * runs in the thread (functions cannot cross threads); `data` (structured-cloned) is passed to it.
   */
  imports?: { url: string | URL; data?: unknown };
}

const THREAD_OPTION_KEYS = new Set(['entry', 'args', 'withThreadId', 'imports']);

function checkThreadOptions(options: StartThreadOptions): void {
  for (const key of Object.keys(options)) {
    if (!THREAD_OPTION_KEYS.has(key)) throw new OptionError(`Invalid option in startThread() call: "${key}"`);
  }
  if (typeof options.entry !== 'string') throw new OptionError('"entry" must be the name of an exported function');
  if (options.args !== undefined && !(Array.isArray(options.args) && options.args.every((a) => typeof a === 'number' || typeof a === 'bigint'))) {
    throw new OptionError('"args" must be an array of numbers and bigints');
  }
  if (options.imports !== undefined && !(typeof options.imports.url === 'string' || options.imports.url instanceof URL)) {
    throw new OptionError('"imports.url" must be a module URL or path');
  }
}

const OPTION_KEYS = new Set(['pageSize', 'local', 'store', 'remote', 'redis', 'prefetch', 'cacheDir', 'onFault', 'onProgress', 'latency', 'optimize']);

/** Smallest pool: one frame serves any access (straddles go through the bounce buffer). */
export const MIN_FRAMES = 1;

export function checkOptions(options: FarmemOptions): void {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) throw new OptionError(`Invalid option in instantiate() call: "${key}"`);
  }
  if (options.pageSize !== undefined) checkPageSize(options.pageSize, '"pageSize"');
  resolveOptimizations(options.optimize, 'instantiate() call');
  const local = options.local;
  if (local !== undefined) {
    if ('fraction' in local) {
      if (!(local.fraction > 0 && local.fraction <= 1)) throw new OptionError(`"local.fraction" must be in (0, 1], got ${local.fraction}`);
    } else if (!('bytes' in local) || !(Number.isSafeInteger(local.bytes) && local.bytes > 0)) {
      throw new OptionError('"local" must be { fraction } in (0, 1] or { bytes } > 0');
    }
  }
}

/** Is this module already instrumented (has farmem metadata)? */
export function isInstrumented(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.customSections(module, META_SECTION).length > 0;
}

export async function instantiate(
  wasm: Uint8Array | WebAssembly.Module,
  imports: WebAssembly.Imports = {},
  options: FarmemOptions = {},
): Promise<FarmemInstance> {
  checkOptions(options);
  const pageSize = options.pageSize ?? 4096;
  let module: WebAssembly.Module;
  if (wasm instanceof WebAssembly.Module) {
    if (!isInstrumented(wasm)) throw new OptionError('instantiate() needs module bytes, or a module produced by farmem instrument');
    module = wasm;
  } else {
    module = await instrumentCached(wasm, {
      pageSize,
      optimize: resolveOptimizations(options.optimize, 'instantiate() call'),
      cacheDir: options.cacheDir ?? false,
      onProgress: options.onProgress,
    });
  }
  const meta = decodeMeta(WebAssembly.Module.customSections(module, META_SECTION)[0]!);
  if (meta.pageSize !== pageSize && options.pageSize !== undefined) {
    throw new OptionError(`module was instrumented for ${meta.pageSize}-byte pages, but pageSize is ${pageSize}`);
  }
  const layout = guestLayout(meta.pageSize, meta.memory64 === true, meta.maximumPages, meta.memories?.map((m) => m.spanPages));

  if ([options.store, options.remote, options.redis].filter((x) => x !== undefined).length > 1) {
    throw new OptionError('"store", "remote" and "redis" are exclusive: pages live in one place');
  }
  const spec = storeSpec(options, meta.pageSize);
  // A shared-memory module may start guest threads: its embedded store lives in SharedArrayBuffers,
  // and a reclaimer worker serves every thread (as with memory servers).
  const sharedStore = !spec && !options.store && meta.sharedMemory
    ? SharedEmbeddedStore.create(meta.pageSize, (meta.maximumPages * WASM_PAGE) / meta.pageSize)
    : null;
  const store = spec ? null : options.store ?? sharedStore ?? new EmbeddedStore(meta.pageSize);
  if (store && store.pageSize !== meta.pageSize) throw new OptionError(`store page size ${store.pageSize} differs from module page size ${meta.pageSize}`);
  const local = options.local ?? { fraction: 1 };
  const budget: FrameBudget = 'bytes' in local
    ? { frames: Math.max(MIN_FRAMES, Math.floor(local.bytes / meta.pageSize)) }
    : { fraction: local.fraction, minFrames: MIN_FRAMES };
  // Policies load on demand: a run without prefetching does not pay for them.
  const prefetch: PrefetchPolicy | null = options.prefetch && options.prefetch !== 'none'
    ? (await import('../prefetch/registry.js')).createPolicy(options.prefetch)
    : null;

  const guestMemories = importedMemories(meta, imports);
  const initialPages = guestMemories[0]?.pages ?? meta.initialPages;
  const reclaimer = store === null || sharedStore !== null;
  const frames = frameLimits(layout, budget, initialPages, meta.maximumPages, reclaimer);
  const phys = new PhysicalMemory(layout, frames.initial, frames.max);
  const remote = spec ? await startRemoteIo(phys, spec) : null;
  const io: PageIo = remote ? remote.guest : new StoreIo(store!, phys);
  const storeName = store ? store.name : options.redis ? parseRedisUrl(options.redis.url).displayName : options.remote!.urls.join(',');
  const pager = new Pager({
    layout,
    budget,
    initialPages,
    maximumPages: meta.maximumPages,
    prefetch,
    onFault: options.onFault ?? null,
    latency: options.latency ?? false,
    reclaimer,
    sharedMemory: meta.sharedMemory ?? false,
  }, phys, io);
  if (remote && pager.latency) remote.guest.timeHandoffs(pager.latency);
  const spawner = meta.sharedMemory && (remote || sharedStore) ? new GuestSpawner({
    module, memory: phys.memory, layout, table: pager.table.buffers, guests: pager.guests.buffer, budget,
    maximumPages: meta.maximumPages, reclaimer, prefetch: prefetch?.name ?? null,
    io: remote ? { channel: remote.channel } : { store: sharedStore!.buffers }, imports: null,
  }) : null;
  let stopReclaimer = async (): Promise<void> => {};
  // Pages kept for inspection are the guest's memory as it ended: resident dirty pages included.
  const keepPages = options.remote?.keep === true || options.redis?.keep === true;
  const shutdown = async () => {
    try {
      try {
        await spawner?.close();
        await stopReclaimer();
        if (keepPages) pager.writeBackAll();
      } finally {
        await pager.close();
      }
    } finally {
      if (store && !options.store) await store.close(); // a store we created is ours to close
    }
  };
  try {
    if (remote) {
      pager.enableReclaimer();
      stopReclaimer = await remote.startReclaimer(pager.table, layout, pager.guests.buffer);
    } else if (sharedStore) {
      pager.enableReclaimer();
      const launched = launchReclaimer(pager.table, {
        memory: phys.memory, table: pager.table.buffers, layout, guests: pager.guests.buffer,
        channel: null, doorbell: null, store: sharedStore.buffers, pageSize: meta.pageSize, timeoutMs: 0,
      });
      stopReclaimer = launched.stop;
      await launched.ready;
    }
    const replication = remote && spec?.kind === 'remote' ? () => remote.guest.repairCounters() : null;
    return await link(module, meta, imports, guestMemories, pager, options, prefetch?.name ?? 'none', storeName, shutdown, spawner, replication);
  } catch (err) {
    await shutdown().catch(() => {});
    throw err;
  }
}

/** A random namespace for a run's pages on servers or in Redis. */
function randomNamespace(): string {
  return `farmem-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** What the I/O worker should open, or null for an in-process store. */
function storeSpec(options: FarmemOptions, pageSize: number): StoreSpec | null {
  if (options.remote) {
    const timeoutMs = options.remote.timeoutMs ?? 5000;
    return {
      kind: 'remote', pageSize, timeoutMs,
      options: {
        urls: options.remote.urls,
        token: options.remote.token,
        namespace: options.remote.namespace ?? randomNamespace(),
        pageSize,
        replication: options.remote.replication ?? 1,
        timeoutMs,
        freeOnClose: options.remote.keep !== true,
      },
    };
  }
  if (options.redis) {
    const r = options.redis;
    if (r === null || typeof r !== 'object' || typeof r.url !== 'string') throw new OptionError('"redis" must be { url: "redis://host:port" }');
    parseRedisUrl(r.url); // a bad URL fails here, with its own message, before any thread starts
    const timeoutMs = r.timeoutMs ?? 5000;
    return { kind: 'redis', pageSize, timeoutMs, options: { url: r.url, pageSize, namespace: r.namespace ?? randomNamespace(), keep: r.keep ?? false, timeoutMs } };
  }
  return null;
}

async function link(
  module: WebAssembly.Module,
  meta: GuestMeta,
  imports: WebAssembly.Imports,
  guestMemories: readonly (ImportedMemory | null)[],
  pager: Pager,
  options: FarmemOptions,
  policyName: string,
  storeName: string,
  shutdown: () => Promise<void>,
  spawner: GuestSpawner | null,
  replication: (() => NonNullable<RuntimeStats['replication']>) | null,
): Promise<FarmemInstance> {
  const segments = readSegments(module, meta);
  const memories = meta.memory64 || meta.memories ? new Memories(pager, meta, guestMemories.map((g) => g?.pages)) : null;
  writeInitialImage(pager, meta, segments, imports, guestMemories, memories);
  pager.counters.reset(); // stats describe the guest's run, not its loading
  const { instance, exports } = await instantiateGuest(module, meta, imports, pager, segments, memories);
  const memory = meta.hasMemory ? new FarMemory(pager) : null;

  return {
    exports,
    memory,
    instance,
    meta,
    stats(): RuntimeStats {
      pager.flushBounce();
      const c = pager.totals(spawner?.counters);
      return {
        pageSize: meta.pageSize,
        localBytes: pager.localFrames * meta.pageSize,
        reserveBytes: (pager.frameCount - pager.localFrames) * meta.pageSize,
        virtualBytes: pager.virtualBytes,
        residentPages: pager.residentPages,
        residentPeak: pager.residentPeak,
        majorFaults: c.majorFaults,
        zeroFills: c.zeroFills,
        minorFaults: c.minorFaults,
        straddles: c.straddles,
        evictions: c.evictions,
        writeBacks: c.writeBacks,
        directReclaims: c.directReclaims,
        bytesIn: c.bytesIn,
        bytesOut: c.bytesOut,
        hostAccesses: c.hostAccesses,
        prefetch: {
          policy: policyName,
          issued: c.prefetchIssued,
          hits: c.prefetchHits,
          wasted: c.prefetchWasted,
          late: c.prefetchLate,
          dropped: c.dropBehinds,
          accuracy: ratio(c.prefetchHits, c.prefetchIssued),
          coverage: ratio(c.prefetchHits, c.prefetchHits + c.majorFaults),
        },
        store: storeName,
        ...(replication ? { replication: replication() } : {}),
        ...(pager.latency ? { latency: pager.latency.summary() } : {}),
      };
    },
    startThread(thread: StartThreadOptions): GuestThread {
      checkThreadOptions(thread);
      if (!meta.sharedMemory) throw new ThreadError('FM_ERR_THREADS', 'guest threads need a module whose memory is shared (threads); this one is not');
      if (!spawner) throw new ThreadError('FM_ERR_THREADS', 'guest threads need the embedded store farmem creates or memory servers ("remote"); a "store" of the caller lives in one thread');
      const imports = thread.imports ? { url: String(thread.imports.url), data: thread.imports.data ?? null } : null;
      return spawner.spawn(thread.entry, thread.args ?? [], thread.withThreadId ?? false, imports);
    },
    async close(): Promise<void> {
      await shutdown();
    },
  };
}

