/**
 * @fileoverview The frame allocator: sizes the frame pool to the budget and hands the pager free
 * frames. It rings the reclaimer's doorbell at low water, and when no frame is free reclaims one
 * directly on the guest thread: CLOCK with second chance, and with several guest threads only after
 * every other running thread acknowledged the victim's generation. Eviction writes dirty pages back.
 */
import { frameAddress, kGeneration, WASM_PAGE, type Layout } from '../layout.js';
import { evictChannel, publishEvict, type EvictMessage } from '../stats/channels.js';
import type { Counters } from '../stats/counters.js';
import type { GuestThreads } from './guest-threads.js';
import type { PageIo } from './page-io.js';
import type { PhysicalMemory } from './physical-memory.js';
import { DIRTY, EVICTING, type FrameTable, IN_FLIGHT, kLowWater, kReclaimDoorbell, PINNED, PREFETCHED, reserveFrames } from './frame-table.js';

/** How the frame pool is sized: a fixed number of frames, or a fraction of the guest's memory. */
export type FrameBudget = { readonly frames: number } | { readonly fraction: number; readonly minFrames: number };

/** Frames of local memory a budget grants for a guest of `wasmPages` (the reserve not included). */
export function localFrames(layout: Layout, budget: FrameBudget, wasmPages: number): number {
  return 'frames' in budget
    ? budget.frames
    : Math.max(budget.minFrames, Math.ceil((budget.fraction * wasmPages * WASM_PAGE) / layout.pageSize));
}

/**
 * Frames the pool starts with and may grow to, for a budget and the guest's memory limits,
 * including the reclaimer's reserve when `reserve` is set.
 */
export function frameLimits(layout: Layout, budget: FrameBudget, initialPages: number, maximumPages: number, reserve = false): { initial: number; max: number } {
  const pool = (wasmPages: number) => {
    const local = localFrames(layout, budget, wasmPages);
    return Math.min(layout.maxFrames, reserve ? local + reserveFrames(local) : local);
  };
  const max = pool(maximumPages);
  return { initial: Math.min(max, pool(initialPages)), max };
}

/** What the allocator works on: the pager's own objects, shared, created once with it. */
export interface FrameAllocatorParts {
  readonly layout: Layout;
  readonly table: FrameTable;
  readonly phys: PhysicalMemory;
  readonly io: PageIo;
  readonly counters: Counters;
  readonly guests: GuestThreads;
  /** The physical memory's control block (kGeneration). */
  readonly control: Int32Array;
  readonly thread: number;
  readonly sharedMemory: boolean;
  readonly budget: FrameBudget;
  /** The pool carries the reclaimer's reserve on top of the budget. */
  readonly reserve: boolean;
}

export class FrameAllocator {
  private readonly layout: Layout;
  private readonly table: FrameTable;
  private readonly phys: PhysicalMemory;
  private readonly io: PageIo;
  private readonly counters: Counters;
  private readonly guests: GuestThreads;
  private readonly control: Int32Array;
  private readonly thread: number;
  private readonly sharedMemory: boolean;
  private readonly budget: FrameBudget;
  private readonly reserve: boolean;
  private readonly pageSize: number;
  private readonly readTable: Int32Array;
  private readonly writeTable: Int32Array;
  private readonly frameFlags: Int32Array;
  private readonly frameTicket: Int32Array;
  /** True when a reclaimer worker or another guest thread shares the frame table. */
  private threaded: boolean;

  constructor(parts: FrameAllocatorParts) {
    this.layout = parts.layout;
    this.table = parts.table;
    this.phys = parts.phys;
    this.io = parts.io;
    this.counters = parts.counters;
    this.guests = parts.guests;
    this.control = parts.control;
    this.thread = parts.thread;
    this.sharedMemory = parts.sharedMemory;
    this.budget = parts.budget;
    this.reserve = parts.reserve;
    this.pageSize = parts.layout.pageSize;
    this.readTable = parts.table.readTable;
    this.writeTable = parts.table.writeTable;
    this.frameFlags = parts.table.frameFlags;
    this.frameTicket = parts.table.frameTicket;
    this.threaded = parts.sharedMemory;
  }

  /** From now on a reclaimer worker shares the frame table. */
  enableReclaimer(): void {
    this.threaded = true;
  }

  /** Takes the frame-table lock when another thread shares the table. */
  lock(): void {
    if (this.threaded) this.table.lock();
  }
  unlock(): void {
    if (this.threaded) this.table.unlock();
  }

  /** Grows the pool to the budget for a guest of `wasmPages` (plus the reserve); returns the frame count. */
  growPool(wasmPages: number): number {
    const local = localFrames(this.layout, this.budget, wasmPages);
    const reserve = this.reserve ? reserveFrames(local) : 0;
    this.lock(); // another guest thread may grow it at the same time
    try {
      this.phys.ensureFrames(Math.min(this.table.buffers.maxFrames, local + reserve));
      this.table.grow(local, reserve);
      return this.table.frames;
    } finally {
      this.unlock();
    }
  }

  /** A free frame, evicting if none is free. */
  takeFrame(): number {
    let frame = this.table.popFree();
    if (this.threaded && this.table.freeCount < this.table.control[kLowWater]!) {
      Atomics.add(this.table.control, kReclaimDoorbell, 1);
      Atomics.notify(this.table.control, kReclaimDoorbell);
    }
    if (frame < 0) {
      this.counters.directReclaims++;
      frame = this.evictOne();
    }
    return frame;
  }

  /**
   * Direct reclaim on the guest thread: CLOCK until a victim. A frame the reclaimer marked EVICTING
   * is a fine victim here: the guest, inside the host, holds no translation to it. A frame whose
   * read is still in flight (a prefetch not landed yet; never in embedded mode) is passed over for
   * the first two sweeps: prefetched pages land unreferenced, so CLOCK would otherwise pick them
   * first, and evicting one waits a round trip for the read to land only to throw it away (in a
   * small pool this made every top-up of a stream wait on its own prefetches).
   */
  private evictOne(): number {
    if (this.sharedMemory && this.guests.running() > 1) return this.evictShared();
    const frames = this.table.frames;
    for (let scanned = 0; ; scanned++) {
      if (scanned > 3 * frames) throw new Error('farmem: every frame is pinned; the frame pool is too small');
      const f = this.table.clockStep(scanned < 2 * frames ? PINNED | IN_FLIGHT : PINNED);
      if (f < 0) continue;
      const page = this.table.pageOf(f);
      this.evict(f, page, this.frameFlags[f]!, 'reclaim');
      // evict() released the frame onto the free stack; take it back.
      return this.table.popFree();
    }
  }

  /**
   * Direct reclaim with several guest threads: another thread may hold a translation to the victim,
   * so the victim is unmapped and marked EVICTING in a new generation, and evicted only once every
   * other running thread acknowledged it (this one is QUIESCENT: it is inside ensure()). The lock is
   * released meanwhile; a touch in between rescues the victim and the search starts again.
   */
  private evictShared(): number {
    for (let round = 0; ; round++) {
      const free = this.table.popFree();
      if (free >= 0) return free;
      let victim = -1;
      for (let scanned = 0; victim < 0 && scanned <= 3 * this.table.frames; scanned++) victim = this.table.clockStep(PINNED);
      if (victim < 0) { // every frame is pinned by a read landing for another thread: let it finish
        if (round > 100_000) throw new Error('farmem: every frame stays pinned; the frame pool is too small for the guest threads');
        this.table.unlock();
        Atomics.wait(this.control, kGeneration, Atomics.load(this.control, kGeneration), 0.05);
        this.table.lock();
        continue;
      }
      const page = this.table.pageOf(victim);
      this.frameFlags[victim]! |= EVICTING;
      this.table.unmap(page);
      const generation = Atomics.add(this.control, kGeneration, 1) + 1;
      // This thread holds no translation while it waits: another may be waiting for it too.
      this.guests.quiesce(this.thread);
      this.table.unlock();
      try {
        this.guests.awaitAcknowledged(generation, this.thread, () => this.shootdown());
      } finally {
        this.table.lock();
        this.guests.resume(this.thread, Atomics.load(this.control, kGeneration));
      }
      const flags = this.frameFlags[victim]!;
      if (this.table.pageOf(victim) === page && flags & EVICTING) {
        this.evict(victim, page, flags, 'reclaim');
        return this.table.popFree();
      }
    }
  }

  private shootdown(): void {
    this.table.lock();
    try {
      this.table.unmapAll();
    } finally {
      this.table.unlock();
    }
  }

  evict(frame: number, page: number, flags: number, reason: EvictMessage['reason']): void {
    this.readTable[page] = 0;
    this.writeTable[page] = 0;
    if (flags & IN_FLIGHT) this.io.wait(this.frameTicket[frame]!); // let the read land before reuse
    if (flags & DIRTY) {
      if (this.reserve) this.table.markStored(page); // read only by the zero-fill check, which needs the reserve
      this.io.write(page, frameAddress(this.layout, frame));
      this.counters.writeBacks++;
      this.counters.bytesOut += this.pageSize;
    }
    if (flags & PREFETCHED) this.counters.prefetchWasted++;
    this.counters.evictions++;
    if (evictChannel.hasSubscribers) publishEvict(page, (flags & DIRTY) !== 0, (flags & PREFETCHED) !== 0, reason);
    this.table.release(frame, page);
  }

  /** Writes every dirty resident page back to the store, keeping the pages resident. */
  writeBackDirty(): void {
    this.lock();
    for (let f = 0; f < this.table.frames; f++) {
      const page = this.table.pageOf(f);
      if (page >= 0 && this.frameFlags[f]! & DIRTY) {
        if (this.reserve) this.table.markStored(page);
        this.io.write(page, frameAddress(this.layout, f));
        this.frameFlags[f]! &= ~DIRTY;
        this.writeTable[page] = 0;
        this.counters.writeBacks++;
        this.counters.bytesOut += this.pageSize;
      }
    }
    this.unlock();
    this.io.drain();
  }
}
