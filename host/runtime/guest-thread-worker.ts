/**
 * @fileoverview A guest thread: a worker that attaches a Pager to the shared frame table, guest-thread
 * table and store of a shared-memory module (guest-spawner.ts), instantiates the instrumented module
 * over the same physical memory, calls one export, and reports its result (or error) and its fault
 * counters to the thread that spawned it. Before it ends it waits for the threads it spawned itself
 * (a worker's own workers end with it). Its slot in the guest-thread table is freed by its spawner.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { decodeMeta, META_SECTION } from '../abi.js';
import { SharedEmbeddedStore } from '../store/shared-embedded.js';
import { FarMemory } from './far-memory.js';
import { instantiateGuest, readSegments } from './guest-link.js';
import { GuestSpawner, type GuestThreadData, type GuestThreadReport, type ThreadImportsFactory } from './guest-spawner.js';
import { ChannelIo, type PhysicalBytes } from './io-channel.js';
import { StoreIo, type PageIo } from './page-io.js';
import { Pager } from './pager.js';
import { PhysicalMemory } from './physical-memory.js';

const data = workerData as GuestThreadData;
const meta = decodeMeta(WebAssembly.Module.customSections(data.module, META_SECTION)[0]!);
const phys = new PhysicalMemory(data.layout, 0, data.table.maxFrames, data.memory);
const io: PageIo = 'store' in data.io
  ? new StoreIo(new SharedEmbeddedStore(data.io.store), phys)
  : new ChannelIo(data.io.channel.ring, data.io.channel.pageSize, phys as PhysicalBytes, new Int32Array(data.io.channel.doorbell),
    data.io.channel.timeoutMs, async () => {});
const prefetch = data.prefetch ? (await import('../prefetch/registry.js')).createPolicy(data.prefetch) : null;
const pager = new Pager({
  layout: data.layout,
  budget: data.budget,
  initialPages: meta.initialPages,
  maximumPages: data.maximumPages,
  prefetch,
  onFault: null,
  latency: false,
  reclaimer: data.reclaimer,
  sharedMemory: true,
  attach: { thread: data.thread, table: data.table, guests: data.guests },
}, phys, io);
const spawner = new GuestSpawner(data);
const memory = meta.hasMemory ? new FarMemory(pager) : null;

async function run(): Promise<GuestThreadReport> {
  try {
    const factory = data.imports ? ((await import(data.imports.url)) as { default: ThreadImportsFactory }).default : null;
    const imports = factory
      ? await factory({ memory, thread: data.thread, data: data.imports!.data, spawn: (entry, args, withId) => spawner.spawn(entry, args, withId).id })
      : {};
    // A shared memory is one 32-bit memory (the instrumenter refuses shared memory64 and several memories).
    const { exports } = await instantiateGuest(data.module, meta, imports, pager, readSegments(data.module, meta), null);
    const entry = exports[data.entry];
    if (typeof entry !== 'function') throw new TypeError(`the module has no exported function "${data.entry}"`);
    const result = (entry as (...args: unknown[]) => unknown)(...data.args);
    return { type: 'done', result, counters: { ...pager.counters } };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { type: 'error', name: e.constructor.name === 'Error' ? e.name : e.constructor.name, message: e.message, code: (e as { code?: string }).code, counters: { ...pager.counters } };
  } finally {
    pager.leaveGuest(); // finished: acknowledges everything until the spawner frees the slot
  }
}

parentPort!.postMessage(await run());
await spawner.idle();
