/**
 * @fileoverview The frame table: which page each frame holds, per-frame flags, the free-frame
 * stack and the CLOCK hand, all in SharedArrayBuffers so the guest thread (pager) and the reclaimer
 * worker work on the same state. Mutations happen under one lock (`lock()`/`unlock()`, an Atomics
 * mutex); in embedded mode there is no other thread and the lock is never contended.
 *
 *   control     Int32[16]           kLock | kFreeTop | kHand | kFrames | kResident | kReclaimDoorbell
 *                                   | kStop | kEvictions | kWriteBacks | kWasted | kLowWater | kHighWater
 *   framePage   Int32[maxFrames]    page + 1 held by a frame, 0 if free (zero-initialized: no fill)
 *   frameFlags  Int32[maxFrames]    REFERENCED | DIRTY | PREFETCHED | PINNED | IN_FLIGHT | EVICTING
 *   frameTicket Int32[maxFrames]    I/O ticket of a read still landing in the frame (IN_FLIGHT)
 *   freeFrames  Int32[maxFrames]    stack of free frames, top at control[kFreeTop]
 *   frameOfPage Int32[numPages]     frame + 1 of a resident page, 0 if not resident (own buffer)
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
const CONTROL_SLOTS = 16;

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
    this.readTable = new Int32Array(physical, layout.readTable, layout.numPages);
    this.writeTable = new Int32Array(physical, layout.writeTable, layout.numPages);
  }

  static allocate(layout: Layout, physical: SharedArrayBuffer, maxFrames: number): FrameTable {
    const shared = new SharedArrayBuffer((CONTROL_SLOTS + 4 * maxFrames) * 4);
    const pages = new SharedArrayBuffer(layout.numPages * 4);
    return new FrameTable(layout, physical, { shared, pages, maxFrames, numPages: layout.numPages });
  }

  /** The page a frame holds, or -1 if it is free. */
  pageOf(frame: number): number {
    return this.framePage[frame]! - 1;
  }

  setPageOf(frame: number, page: number): void {
    this.framePage[frame] = page + 1;
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

  /** Adds frames [frames, frames + count) to the pool. Under the lock. */
  addFrames(count: number): void {
    const c = this.control;
    const first = c[kFrames]!;
    // Push in reverse so frames are handed out in ascending order (adjacent pages, adjacent frames).
    for (let f = first + count - 1; f >= first; f--) this.freeFrames[c[kFreeTop]!++] = f;
    c[kFrames] = first + count;
    const frames = c[kFrames]!;
    // The reclaimer wakes below 1/8 of the pool free and refills to 1/4: a few faults' worth of slack
    // while it waits for the guest's acknowledgement (and for a core, on a busy machine).
    c[kLowWater] = Math.max(2, frames >>> 3);
    c[kHighWater] = Math.max(4, frames >>> 2);
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

  /** Forgets a frame's page after eviction and frees the frame. Under the lock. */
  release(frame: number, page: number): void {
    this.frameOfPage[page] = 0;
    this.framePage[frame] = 0;
    this.frameFlags[frame] = 0;
    this.control[kResident]!--;
    this.pushFree(frame);
  }
}
