/**
 * @fileoverview The I/O worker: a worker thread that owns the page store (farmem servers or Redis,
 * opened by kind through store/registry.ts) and serves the request rings (io-channel.ts) of the
 * guest and of the reclaimer. Its event loop sleeps in `Atomics.waitAsync` on the shared doorbell,
 * so the same loop also runs the store's connections. Everything submitted since the last wake-up
 * is issued at once: reads and writes are batched into one store call each, and batches are
 * pipelined (a new batch does not wait for earlier ones). A read of a page whose write-back is still in flight (from either ring) is served from that
 * write's staging copy.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorRecord } from '../errors.js';
import type { PageStore } from '../store/page-store.js';
import { openStore, type StoreSpec } from '../store/registry.js';
import { channelViews, kError, kReady, kShutdown, kSubmitted, OP_READ, OP_WRITE, writeError, type ChannelBuffers } from './io-channel.js';

export interface IoWorkerData {
  readonly channels: readonly SharedArrayBuffer[];
  readonly doorbell: SharedArrayBuffer;
  readonly memory: WebAssembly.Memory;
  readonly store: StoreSpec;
}

const data = workerData as IoWorkerData;
const pageSize = data.store.pageSize;
const channels: ChannelBuffers[] = data.channels.map((sab) => channelViews(sab, pageSize));
const doorbell = new Int32Array(data.doorbell);
let phys = new Uint8Array(data.memory.buffer);
/** Pages whose write-back is in flight → the staging bytes holding them. */
const pendingWrites = new Map<number, Uint8Array>();

function frame(offset: number): Uint8Array {
  if (offset + pageSize > phys.length) phys = new Uint8Array(data.memory.buffer); // physical memory grew
  return phys.subarray(offset, offset + pageSize);
}

function complete(b: ChannelBuffers, seq: number, error: unknown): void {
  const slot = seq & (b.slots - 1);
  if (error) {
    for (const c of channels) writeError(c, error);
    Atomics.store(b.status, slot, 1);
  } else {
    Atomics.store(b.status, slot, 0);
  }
  Atomics.store(b.done, slot, seq);
  Atomics.notify(b.done, slot);
}

async function serve(store: PageStore): Promise<void> {
  const next = channels.map(() => 1);
  const submitted = channels.map(() => 0);
  for (;;) {
    const bell = Atomics.load(doorbell, 0);
    // Snapshot in channel order (guest first), issue in reverse (reclaimer first). A guest read of a
    // page is published only after the reclaimer published that page's write-back and released the
    // frame, so if the guest's snapshot holds the read, the later reclaimer snapshot holds the write,
    // and issuing the write first registers it in pendingWrites before the read looks.
    for (let c = 0; c < channels.length; c++) submitted[c] = Atomics.load(channels[c]!.control, kSubmitted);
    let idle = true;
    for (let c = channels.length - 1; c >= 0; c--) {
      if (submitted[c]! >= next[c]!) {
        idle = false;
        next[c] = drain(store, channels[c]!, next[c]!, submitted[c]!);
      }
    }
    if (idle) {
      if (channels.every((b) => Atomics.load(b.control, kShutdown))) return;
      const waiting = Atomics.waitAsync(doorbell, 0, bell);
      if (waiting.async) await waiting.value;
    }
  }
}

/** Issues requests `from..to` of one channel as one write batch and one read batch; returns to + 1. */
function drain(store: PageStore, b: ChannelBuffers, from: number, to: number): number {
  const mask = b.slots - 1;
  const readSeqs: number[] = [];
  const readPages: number[] = [];
  const readInto: Uint8Array[] = [];
  const writeSeqs: number[] = [];
  const writePages: number[] = [];
  const writeData: Uint8Array[] = [];
  for (let seq = from; seq <= to; seq++) {
    const at = (seq & mask) * 4;
    while (Atomics.load(b.ring, at + 3) !== seq) { /* the producer publishes the sequence last */ }
    const op = b.ring[at]!;
    const page = b.ring[at + 1]!;
    const arg = b.ring[at + 2]!;
    if (op === OP_WRITE) {
      const bytes = b.staging.subarray(arg * pageSize, (arg + 1) * pageSize);
      pendingWrites.set(page, bytes);
      writeSeqs.push(seq);
      writePages.push(page);
      writeData.push(bytes);
    } else if (op === OP_READ) {
      const staged = pendingWrites.get(page);
      if (staged !== undefined) {
        frame(arg).set(staged);
        complete(b, seq, null);
      } else {
        readSeqs.push(seq);
        readPages.push(page);
        readInto.push(frame(arg));
      }
    }
  }
  if (writeSeqs.length > 0) {
    store.write(writePages, writeData).then(
      () => {
        writePages.forEach((page, i) => { if (pendingWrites.get(page) === writeData[i]) pendingWrites.delete(page); });
        for (const seq of writeSeqs) complete(b, seq, null);
      },
      (err: unknown) => {
        for (const c of channels) {
          writeError(c, err);
          Atomics.store(c.control, kError, 1);
        }
        for (const seq of writeSeqs) complete(b, seq, err);
      },
    );
  }
  if (readSeqs.length > 0) {
    store.read(readPages, readInto).then(
      () => { for (const seq of readSeqs) complete(b, seq, null); },
      (err: unknown) => { for (const seq of readSeqs) complete(b, seq, err); },
    );
  }
  return to + 1;
}

async function main(): Promise<void> {
  let store: PageStore;
  try {
    store = await openStore(data.store);
  } catch (err) {
    const r = toErrorRecord(err);
    parentPort!.postMessage({ type: 'error', message: r.message, code: r.code, name: r.name, wireStatus: r.wireStatus });
    return;
  }
  for (const b of channels) Atomics.store(b.control, kReady, 1);
  parentPort!.postMessage({ type: 'ready' });
  // Atomics.waitAsync does not keep a worker's event loop alive: while every server link is down
  // (its reconnect timer is unref'd) nothing else would, and the worker would exit mid-run.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await serve(store);
  clearInterval(keepAlive);
  await store.close();
  parentPort!.postMessage({ type: 'closed' });
}

void main();
