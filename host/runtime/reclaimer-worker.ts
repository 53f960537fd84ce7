/**
 * @fileoverview The reclaimer: a worker thread that keeps the free-frame stack between the low and
 * high watermarks, off the guest's critical path. One round:
 *
 *   1. under the lock, run CLOCK until enough victims: referenced frames get a second chance
 *      (bit cleared, page soft-unmapped); victims are unmapped and marked EVICTING;
 *   2. publish generation g+1 (control block kGeneration);
 *   3. wait until every running guest thread acknowledged g+1 (guest-threads.ts): from then on none
 *      can hold a stale translation to a victim (see pager.ts, eviction safety); a thread that runs
 *      on without entering the host is forced in by a shootdown (all pages soft-unmapped);
 *   4. for each victim still EVICTING (a touch in between rescued it), under the lock (taken per
 *      victim once the ring has room for its write-back, so a faulting guest waits for at most one
 *      copy, never for a round trip): hand a dirty
 *      page to the I/O worker for write-back (copied out, so the frame is free at once), drop a
 *      clean one, and push the frame on the free stack.
 *
 * It sleeps on kReclaimDoorbell, which the guest rings when free frames fall below the low watermark.
 * Write-backs go to the I/O worker's ring (memory servers), or straight into the shared embedded
 * store (guest threads in embedded mode), under the frame-table lock like every store access.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { frameAddress, kGeneration, type Layout } from '../layout.js';
import { SharedEmbeddedStore, type SharedStoreBuffers } from '../store/shared-embedded.js';
import {
  DIRTY, EVICTING, FrameTable, IN_FLIGHT, kEvictions, kHighWater, kLowWater, kReclaimDoorbell, kStop, kWasted, kWriteBacks,
  PINNED, PREFETCHED, type FrameTableBuffers,
} from './frame-table.js';
import { GuestThreads } from './guest-threads.js';
import { ChannelIo } from './io-channel.js';
import { StoreIo, type PageIo } from './page-io.js';

export interface ReclaimerData {
  readonly memory: WebAssembly.Memory;
  readonly table: FrameTableBuffers;
  readonly layout: Layout;
  readonly guests: SharedArrayBuffer;
  /** Write-back target: the I/O worker's ring and doorbell, or the shared embedded store. */
  readonly channel: SharedArrayBuffer | null;
  readonly doorbell: SharedArrayBuffer | null;
  readonly store: SharedStoreBuffers | null;
  readonly pageSize: number;
  readonly timeoutMs: number;
}

const data = workerData as ReclaimerData;
const physical = { bytes: new Uint8Array(data.memory.buffer) };
const table = new FrameTable(data.layout, data.memory.buffer as unknown as SharedArrayBuffer, data.table);
const cb = new Int32Array(data.memory.buffer, 0, 64);
const io: PageIo = data.store
  ? new StoreIo(new SharedEmbeddedStore(data.store), physical)
  : new ChannelIo(data.channel!, data.pageSize, physical, new Int32Array(data.doorbell!), data.timeoutMs, async () => {});
const guests = new GuestThreads(data.guests);
const c = table.control;
const victims = new Int32Array(2 * data.table.maxFrames);

function stopping(): boolean {
  return Atomics.load(c, kStop) !== 0;
}

/** Selects victims and publishes their generation; returns how many (pairs in `victims`). */
function select(): { count: number; generation: number } {
  table.lock();
  try {
    const want = c[kHighWater]! - table.freeCount;
    let count = 0;
    for (let scanned = 0, frames = table.frames; count < want && scanned < 2 * frames; scanned++) {
      const f = table.clockStep(PINNED | IN_FLIGHT | EVICTING);
      if (f < 0) continue;
      const page = table.pageOf(f);
      table.frameFlags[f]! |= EVICTING;
      table.unmap(page);
      victims[2 * count] = f;
      victims[2 * count + 1] = page;
      count++;
    }
    const generation = count > 0 ? Atomics.add(cb, kGeneration, 1) + 1 : 0;
    return { count, generation };
  } finally {
    table.unlock();
  }
}

/**
 * Step 4, one victim per hold of the lock: a dirty victim's copy into the ring's staging (~10 µs for
 * a cold 64 KiB page) then delays a faulting guest by one copy, not by the whole batch's.
 */
function finish(count: number): void {
  for (let i = 0; i < count; i++) {
    // A full ring waits for a write-back's round trip: wait for it outside the lock, so a fault of
    // the guest never waits for that round trip too.
    io.awaitRoom?.();
    table.lock();
    try {
      if (physical.bytes.length < data.memory.buffer.byteLength) physical.bytes = new Uint8Array(data.memory.buffer);
      const f = victims[2 * i]!;
      const page = victims[2 * i + 1]!;
      const flags = table.frameFlags[f]!;
      if (table.pageOf(f) !== page || !(flags & EVICTING)) continue; // rescued, or evicted by the guest
      if (flags & DIRTY) {
        table.markStored(page);
        io.write(page, frameAddress(data.layout, f));
        Atomics.add(c, kWriteBacks, 1);
      }
      if (flags & PREFETCHED) Atomics.add(c, kWasted, 1);
      Atomics.add(c, kEvictions, 1);
      table.release(f, page);
    } finally {
      table.unlock();
    }
  }
}

function shootdown(): void {
  table.lock();
  try {
    table.unmapAll();
  } finally {
    table.unlock();
  }
}

function run(): void {
  while (!stopping()) {
    const bell = Atomics.load(c, kReclaimDoorbell);
    if (table.freeCount >= c[kLowWater]! || table.frames === 0) {
      Atomics.wait(c, kReclaimDoorbell, bell, 100);
      continue;
    }
    const { count, generation } = select();
    if (count === 0) {
      Atomics.wait(c, kReclaimDoorbell, bell, 10);
      continue;
    }
    // Wait for every guest thread's safepoint acknowledgement of this generation.
    const acknowledged = guests.awaitAcknowledged(generation, -1, shootdown, stopping, 20);
    if (!acknowledged) break; // stopping with victims un-acknowledged: leave them resident (EVICTING is cleared on touch)
    finish(count);
    io.flush?.(); // one doorbell for the round's write-backs
  }
}

parentPort!.postMessage({ type: 'ready' });
try {
  run();
  io.drain();
} catch (err) {
  parentPort!.postMessage({ type: 'error', message: (err as Error).message });
}
await io.close();
