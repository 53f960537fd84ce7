/**
 * @fileoverview Starts the I/O worker for a remote store and returns the guest side of its channel.
 * Startup and shutdown use postMessage (not on the fault path); faults use the shared ring.
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { StoreError } from '../errors.js';
import type { RemoteStoreOptions } from '../store/remote.js';
import { ChannelIo, createChannel } from './io-channel.js';
import type { IoWorkerData } from './io-worker.js';
import type { PhysicalMemory } from './physical-memory.js';

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

export async function startRemoteIo(phys: PhysicalMemory, store: RemoteStoreOptions): Promise<ChannelIo> {
  const channel = createChannel(store.pageSize);
  const data: IoWorkerData = { channel, memory: phys.memory, store };
  const worker = new Worker(workerUrl('io-worker'), { workerData: data });
  const closed = new Promise<void>((resolveClosed) => worker.once('exit', () => resolveClosed()));
  await new Promise<void>((ready, fail) => {
    worker.once('message', (msg: { type: string; message?: string; code?: string }) => {
      if (msg.type === 'ready') ready();
      else fail(new StoreError(msg.code ?? 'FM_ERR_STORE_CONNECT', `cannot connect to the memory servers: ${msg.message}`));
    });
    worker.once('error', (err) => fail(new StoreError('FM_ERR_IO_WORKER', `I/O worker failed: ${err.message}`, { cause: err })));
  });
  const timeoutMs = (store.timeoutMs ?? 5000) + 1000;
  return new ChannelIo(channel, store.pageSize, phys, timeoutMs, async () => {
    const timer = setTimeout(() => void worker.terminate(), 2000);
    await closed;
    clearTimeout(timer);
  });
}
