/**
 * @fileoverview The I/O worker: a worker thread that owns the remote page store and serves the
 * guest's request ring (io-channel.ts). Its event loop sleeps in `Atomics.waitAsync` on the
 * doorbell, so the same loop also runs the store's WebSocket connections. Everything submitted since
 * the last wake-up is issued at once: reads and writes are batched into one store call each, and
 * batches are pipelined (a new batch does not wait for earlier ones).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RemoteStore, type RemoteStoreOptions } from '../store/remote.js';
import type { PageStore } from '../store/page-store.js';
import { channelViews, kError, kReady, kShutdown, kSubmitted, OP_READ, OP_WRITE, writeMessage, type ChannelBuffers } from './io-channel.js';

export interface IoWorkerData {
  readonly channel: SharedArrayBuffer;
  readonly memory: WebAssembly.Memory;
  readonly store: RemoteStoreOptions;
}

const data = workerData as IoWorkerData;
const pageSize = data.store.pageSize;
const b: ChannelBuffers = channelViews(data.channel, pageSize);
const mask = b.slots - 1;
let phys = new Uint8Array(data.memory.buffer);
/** Pages whose write-back is in flight → staging slot holding their bytes. */
const pendingWrites = new Map<number, number>();

function frame(offset: number): Uint8Array {
  if (offset + pageSize > phys.length) phys = new Uint8Array(data.memory.buffer); // physical memory grew
  return phys.subarray(offset, offset + pageSize);
}

function complete(seq: number, error: unknown): void {
  const slot = seq & mask;
  if (error) {
    writeMessage(b, error instanceof Error ? error.message : String(error));
    Atomics.store(b.status, slot, 1);
  } else {
    Atomics.store(b.status, slot, 0);
  }
  Atomics.store(b.done, slot, seq);
  Atomics.notify(b.done, slot);
}

async function serve(store: PageStore): Promise<void> {
  let next = 1;
  for (;;) {
    const submitted = Atomics.load(b.control, kSubmitted);
    if (submitted < next) {
      if (Atomics.load(b.control, kShutdown)) return;
      const waiting = Atomics.waitAsync(b.control, kSubmitted, submitted);
      if (waiting.async) await waiting.value;
      continue;
    }
    const readSeqs: number[] = [];
    const readPages: number[] = [];
    const readInto: Uint8Array[] = [];
    const writeSeqs: number[] = [];
    const writePages: number[] = [];
    const writeData: Uint8Array[] = [];
    for (; next <= submitted; next++) {
      const at = (next & mask) * 4;
      while (Atomics.load(b.ring, at + 3) !== next) { /* the guest publishes the sequence last */ }
      const op = b.ring[at]!;
      const page = b.ring[at + 1]!;
      const arg = b.ring[at + 2]!;
      if (op === OP_WRITE) {
        pendingWrites.set(page, arg);
        writeSeqs.push(next);
        writePages.push(page);
        writeData.push(b.staging.subarray(arg * pageSize, (arg + 1) * pageSize));
      } else if (op === OP_READ) {
        const staged = pendingWrites.get(page);
        if (staged !== undefined) {
          frame(arg).set(b.staging.subarray(staged * pageSize, (staged + 1) * pageSize));
          complete(next, null);
        } else {
          readSeqs.push(next);
          readPages.push(page);
          readInto.push(frame(arg));
        }
      }
    }
    if (writeSeqs.length > 0) {
      store.write(writePages, writeData).then(
        () => {
          writePages.forEach((page, i) => { if (pendingWrites.get(page) === (writeSeqs[i]! & mask)) pendingWrites.delete(page); });
          for (const seq of writeSeqs) complete(seq, null);
        },
        (err: unknown) => {
          writeMessage(b, (err as Error)?.message ?? String(err));
          Atomics.store(b.control, kError, 1);
          for (const seq of writeSeqs) complete(seq, err);
        },
      );
    }
    if (readSeqs.length > 0) {
      store.read(readPages, readInto).then(
        () => { for (const seq of readSeqs) complete(seq, null); },
        (err: unknown) => { for (const seq of readSeqs) complete(seq, err); },
      );
    }
  }
}

async function main(): Promise<void> {
  let store: PageStore;
  try {
    store = await RemoteStore.connect(data.store);
  } catch (err) {
    parentPort!.postMessage({ type: 'error', message: (err as Error).message, code: (err as { code?: string }).code });
    return;
  }
  Atomics.store(b.control, kReady, 1);
  parentPort!.postMessage({ type: 'ready' });
  await serve(store);
  await store.close();
  parentPort!.postMessage({ type: 'closed' });
}

void main();
