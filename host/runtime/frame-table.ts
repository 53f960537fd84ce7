/**
 * @fileoverview The frame table: which page each frame holds, per-frame flags, the free-frame
 * stack and the CLOCK hand, all in SharedArrayBuffers so the guest thread (pager) and the reclaimer
 * worker work on the same state. Mutations happen under one lock (`lock()`/`unlock()`, an Atomics
 * mutex); in embedded mode there is no other thread and the lock is never contended.
 *
 *   control     Int32[16]           kLock | kFreeTop | kHand | kFrames | kResident | kReclaimDoorbell
 *                                   | kStop | kEvictions | kWriteBacks | kWasted | kLowWater | kHighWater
 *                                   | kLocalFrames | kResidentPeak
 *   framePage   Int32[maxFrames]    page + 1 held by a frame, 0 if free (zero-initialized: no fill)
 *   frameFlags  Int32[maxFrames]    REFERENCED | DIRTY | PREFETCHED | PINNED | IN_FLIGHT | EVICTING
 *   frameTicket Int32[maxFrames]    I/O ticket of a read still landing in the frame (IN_FLIGHT)
 *   freeFrames  Int32[maxFrames]    stack of free frames, top at control[kFreeTop]
 *   frameOfPage Int32[numPages]     frame + 1 of a resident page, 0 if not resident (own buffer)
 *   pageStored  u8[numPages]        1 once the page was written to the store (same buffer): a page
 *                                   never written there reads as zeros, so a fault on it needs no I/O
 *
 * Local memory: the pool holds the frames the user asked for (kLocalFrames) plus, when a reclaimer
 * runs, a reserve of free frames on top (`reserveFrames`). The reclaimer evicts only when the free
 * frames fall below the reserve, i.e. when more than kLocalFrames pages are resident: a run whose
 * pages all fit never evicts, and a full pool keeps exactly the requested pages resident after every
 * reclaim round (up to the low-watermark slack between rounds).
 *
 * Page-table entries (RT/WT) live in physical memory (layout.ts); `clockStep` clears them when it
 * soft-unmaps or selects a victim.
 */
import type { Layout } from '../layout.js';

export const REFERENCED = 1;
export const DIRTY = 2;
export const PREFETCHED = 4;
export const PINNED = 8;
/** A read is still landing in the frame (its ticket belongs to the guest's I/O channel). */
export const IN_FLIGHT = 16;
/** Selected by the reclaimer, unmapped, waiting for the guest's acknowledgement before reuse. */
export const EVICTING = 32;

export const kLock = 0;
export const kFreeTop = 1;
export const kHand = 2;
export const kFrames = 3;
export const kResident = 4;
/** Bumped by the guest when free frames fall below the low watermark; the reclaimer sleeps on it. */
export const kReclaimDoorbell = 5;
export const kStop = 6;
export const kEvictions = 7;
export const kWriteBacks = 8;
export const kWasted = 9;
export const kLowWater = 10;
export const kHighWater = 11;
/** Frames the user asked for (the reserve comes on top). */
export const kLocalFrames = 12;
/** Most pages resident at once during the run. */
export const kResidentPeak = 13;
const CONTROL_SLOTS = 16;

/**
 * Free frames kept on top of `local` frames when a reclaimer runs: enough for the faults (and their
 * prefetches) that arrive while the reclaimer waits for a core and for the guest's acknowledgement.
 * A quarter of the pool, and at least 32 frames (a few ms of faults) unless the pool is smaller.
 */
export function reserveFrames(local: number): number {
  return Math.max(4, Math.ceil(local / 4), Math.min(local, 32));
}

/** Spins before sleeping on a contended lock. */
const LOCK_SPIN = 200;

export interface FrameTableBuffers {
  readonly shared: SharedArrayBuffer;
  readonly pages: SharedArrayBuffer;
  readonly maxFrames: number;
  readonly numPages: number;
}

export class FrameTable {
  readonly control: Int32Array;
  /** page + 1 per frame (0 = free); read through pageOf(). */
  private readonly framePage: Int32Array;
  readonly frameFlags: Int32Array;
  readonly frameTicket: Int32Array;
  readonly freeFrames: Int32Array;
  readonly frameOfPage: Int32Array;
  readonly pageStored: Uint8Array;
  readonly readTable: Int32Array;
  readonly writeTable: Int32Array;

  /** Allocates a new table (guest side) or attaches to an existing one (`buffers`, reclaimer side). */
  constructor(
    readonly layout: Layout,
    physical: SharedArrayBuffer,
    readonly buffers: FrameTableBuffers,
  ) {
    const { maxFrames } = buffers;
    let at = 0;
    const ints = (n: number) => {
      const view = new Int32Array(buffers.shared, at, n);
      at += n * 4;
      return view;
    };
    this.control = ints(CONTROL_SLOTS);
    this.framePage = ints(maxFrames);
    this.frameFlags = ints(maxFrames);
    this.frameTicket = ints(maxFrames);
    this.freeFrames = ints(maxFrames);
    this.frameOfPage = new Int32Array(buffers.pages, 0, buffers.numPages);
    this.pageStored = new Uint8Array(buffers.pages, buffers.numPages * 4, buffers.numPages);
    this.readTable = new Int32Array(physical, layout.readTable, layout.numPages);
    this.writeTable = new Int32Array(physical, layout.writeTable, layout.numPages);
  }

  static allocate(layout: Layout, physical: SharedArrayBuffer, maxFrames: number): FrameTable {
    const shared = new SharedArrayBuffer((CONTROL_SLOTS + 4 * maxFrames) * 4);
    const pages = new SharedArrayBuffer(layout.numPages * 5);
    return new FrameTable(layout, physical, { shared, pages, maxFrames, numPages: layout.numPages });
  }

  /** The page a frame holds, or -1 if it is free. */
  pageOf(frame: number): number {
    return this.framePage[frame]! - 1;
  }

  lock(): void {
    const c = this.control;
    if (Atomics.compareExchange(c, kLock, 0, 1) === 0) return;
    for (let i = 0; i < LOCK_SPIN; i++) {
      if (Atomics.load(c, kLock) === 0 && Atomics.compareExchange(c, kLock, 0, 1) === 0) return;
    }
    // 2 = locked with waiters (Drepper's futex mutex).
    while (Atomics.exchange(c, kLock, 2) !== 0) Atomics.wait(c, kLock, 2);
  }

  unlock(): void {
    if (Atomics.sub(this.control, kLock, 1) !== 1) {
      Atomics.store(this.control, kLock, 0);
      Atomics.notify(this.control, kLock, 1);
    }
  }

  get frames(): number {
    return this.control[kFrames]!;
  }
  get freeCount(): number {
    return this.control[kFreeTop]!;
  }

  /**
   * Grows the pool to `local` requested frames plus `reserve` free frames on top; returns how many
   * frames were added (physical memory must already hold them). Under the lock.
   */
  grow(local: number, reserve: number): number {
    const c = this.control;
    const first = c[kFrames]!;
    const total = Math.min(this.buffers.maxFrames, local + reserve);
    if (total <= first) return 0;
    // Push in reverse so frames are handed out in ascending order (adjacent pages, adjacent frames).
    for (let f = total - 1; f >= first; f--) this.freeFrames[c[kFreeTop]!++] = f;
    c[kFrames] = total;
    c[kLocalFrames] = Math.min(local, total);
    // The reclaimer wakes when the free frames fall to half the reserve (more than
    // kLocalFrames pages resident) and evicts back down to the reserve.
    const held = total - c[kLocalFrames]!;
    c[kHighWater] = held;
    c[kLowWater] = held - Math.max(1, held >>> 1);
    return total - first;
  }

  popFree(): number {
    const c = this.control;
    return c[kFreeTop]! > 0 ? this.freeFrames[--c[kFreeTop]!]! : -1;
  }

  pushFree(frame: number): void {
    this.freeFrames[this.control[kFreeTop]!++] = frame;
  }

  /**
   * One step of CLOCK under the hand. Returns the frame to evict, or -1 to keep scanning. A
   * referenced frame gets a second chance: its bit is cleared and its page soft-unmapped so the next
   * touch is a minor fault that sets it again. Frames with any `skip` flag are passed over.
   */
  clockStep(skip: number): number {
    const c = this.control;
    const f = c[kHand]!;
    c[kHand] = f + 1 >= c[kFrames]! ? 0 : f + 1;
    const page = this.pageOf(f);
    if (page < 0) return -1;
    const flags = this.frameFlags[f]!;
    if (flags & skip) return -1;
    if (flags & REFERENCED) {
      this.frameFlags[f] = flags & ~REFERENCED;
      Atomics.store(this.readTable, page, 0);
      Atomics.store(this.writeTable, page, 0);
      return -1;
    }
    return f;
  }

  /** Asks the reclaimer to finish its batch and exit; wakes it wherever it sleeps. */
  stopReclaimer(): void {
    Atomics.store(this.control, kStop, 1);
    Atomics.add(this.control, kReclaimDoorbell, 1);
    Atomics.notify(this.control, kReclaimDoorbell);
  }

  unmap(page: number): void {
    Atomics.store(this.readTable, page, 0);
    Atomics.store(this.writeTable, page, 0);
  }

  /** A frame now holds `page`. Under the lock. */
  assign(frame: number, page: number): void {
    this.framePage[frame] = page + 1;
    this.frameOfPage[page] = frame + 1;
    const resident = ++this.control[kResident]!;
    if (resident > this.control[kResidentPeak]!) this.control[kResidentPeak] = resident;
  }

  /** The page's content is (being) written to the store; from now on a fault must read it. */
  markStored(page: number): void {
    this.pageStored[page] = 1;
  }

  /**
   * Soft-unmaps every resident page (DIRTY stays): each guest thread's next access faults into the
   * host, where it acknowledges the newest generation (a TLB shootdown). Under the lock.
   */
  unmapAll(): void {
    for (let f = 0, n = this.frames; f < n; f++) {
      const page = this.pageOf(f);
      if (page >= 0) this.unmap(page);
    }
  }

  /** Forgets a frame's page after eviction and frees the frame. Under the lock. */
  release(frame: number, page: number): void {
    this.frameOfPage[page] = 0;
    this.framePage[frame] = 0;
    this.frameFlags[frame] = 0;
    this.control[kResident]!--;
    this.pushFree(frame);
  }
}
