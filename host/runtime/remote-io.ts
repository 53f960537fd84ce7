/**
 * @fileoverview Threaded mode for memory servers: starts the I/O worker (owner of the remote store)
 * and the reclaimer worker, wires their rings, and returns the guest's side. Startup and shutdown
 * use postMessage (not on the fault path); faults use the shared rings.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../errors.js';
import type { Layout } from '../layout.js';
import type { StoreSpec } from '../store/registry.js';
import type { FrameTable } from './frame-table.js';
import { ChannelIo, createChannel, createDoorbell, handoffClockOrigin, rebuildError, type PhysicalBytes } from './io-channel.js';
import type { IoWorkerData } from './io-worker.js';
import type { PhysicalMemory } from './physical-memory.js';
import type { ReclaimerData } from './reclaimer-worker.js';

/**
 * URL of a compiled worker script. Workers run JavaScript, so when this module runs from its
 * TypeScript source (tests), the worker comes from the build in dist/ (`npm test` builds first).
 */
export function workerUrl(name: string): URL {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return new URL(`./${name}.js`, import.meta.url);
  const root = resolve(dirname(here), '..', '..');
  const built = join(root, 'dist', 'host', 'runtime', `${name}.js`);
  if (!existsSync(built)) throw new StoreError('FM_ERR_NOT_BUILT', `${built} is missing; run "npm run build" first`);
  return pathToFileURL(built);
}

/** Resolves when the worker posts `{ type: 'ready' }`; rejects with its error (after `what: `, if given) otherwise. */
function started(worker: Worker, what: string | null): Promise<void> {
  return new Promise<void>((ready, fail) => {
    worker.once('message', (msg: { type: string; message?: string; code?: string; name?: string; wireStatus?: number }) => {
      if (msg.type === 'ready') ready();
      else fail(rebuildError(msg.name, msg.code ?? 'FM_ERR_STORE_CONNECT', `${what ? `${what}: ` : ''}${msg.message}`, msg.wireStatus));
    });
    worker.once('error', (err) => fail(new StoreError('FM_ERR_WORKER', `${what ?? 'the I/O worker failed'}: ${err.message}`, { cause: err })));
  });
}

function exited(worker: Worker): () => Promise<void> {
  const done = new Promise<void>((resolveExit) => worker.once('exit', () => resolveExit()));
  return async () => {
    const timer = setTimeout(() => void worker.terminate(), 2000);
    await done;
    clearTimeout(timer);
  };
}

export interface RemoteIo {
  readonly guest: ChannelIo;
  /** What another guest thread needs to produce on the guest ring (under the frame-table lock). */
  readonly channel: RemoteChannel;
  /** Starts the reclaimer on the pager's frame table; returns a function that stops it (drained). */
  startReclaimer(table: FrameTable, layout: Layout, guests: SharedArrayBuffer): Promise<() => Promise<void>>;
}

export interface RemoteChannel {
  readonly ring: SharedArrayBuffer;
  readonly doorbell: SharedArrayBuffer;
  readonly pageSize: number;
  readonly timeoutMs: number;
}

export async function startRemoteIo(phys: PhysicalMemory, store: StoreSpec): Promise<RemoteIo> {
  const doorbell = createDoorbell();
  const guestChannel = createChannel(store.pageSize);
  const reclaimChannel = createChannel(store.pageSize);
  const data: IoWorkerData = { channels: [guestChannel, reclaimChannel], doorbell, memory: phys.memory, store, clockOrigin: handoffClockOrigin() };
  const io = new Worker(workerUrl('io-worker'), { workerData: data });
  const ioExited = exited(io);
  try {
    // A Redis error names the server and the fix itself.
    await started(io, store.kind === 'redis' ? null : 'cannot connect to the memory servers');
  } catch (err) {
    await io.terminate();
    throw err;
  }
  const timeoutMs = store.timeoutMs + 1000;
  const guest = new ChannelIo(guestChannel, store.pageSize, phys as PhysicalBytes, new Int32Array(doorbell), timeoutMs, ioExited);
  return {
    guest,
    channel: { ring: guestChannel, doorbell, pageSize: store.pageSize, timeoutMs },
    async startReclaimer(table, layout, guests) {
      const launched = launchReclaimer(table, {
        memory: phys.memory, table: table.buffers, layout, guests, channel: reclaimChannel, doorbell, store: null, pageSize: store.pageSize, timeoutMs,
      });
      await launched.ready;
      return launched.stop;
    },
  };
}

/**
 * Starts a reclaimer worker without waiting for it (a guest thread may start one from inside a host
 * call, where it cannot await): `ready` settles when it runs, `stop` drains and ends it.
 */
export function launchReclaimer(table: FrameTable, data: ReclaimerData): { ready: Promise<void>; stop: () => Promise<void> } {
  const worker = new Worker(workerUrl('reclaimer-worker'), { workerData: data });
  const reclaimerExited = exited(worker);
  const ready = started(worker, 'reclaimer failed to start');
  ready.catch(() => {}); // reported by whoever awaits it; a failed start also ends the worker
  return {
    ready,
    async stop() {
      table.stopReclaimer();
      await reclaimerExited();
    },
  };
}
