/**
 * @fileoverview memory.atomic.wait and notify on shared memory, by virtual address: the guest's
 * `farmem.wait32/64` and `farmem.notify` imports. Waiters queue in the guest-thread table
 * (guest-threads.ts) under the frame-table lock, and sleep QUIESCENT, holding no translation.
 */
import { frameAddress, kGeneration, type Layout } from '../layout.js';
import type { FrameTable } from './frame-table.js';
import type { GuestThreads } from './guest-threads.js';
import type { Pager } from './pager.js';
import type { PhysicalMemory } from './physical-memory.js';

export class AtomicWaits {
  private readonly pager: Pager;
  private readonly layout: Layout;
  private readonly phys: PhysicalMemory;
  private readonly table: FrameTable;
  private readonly guests: GuestThreads;
  private readonly thread: number;
  private readonly pageSize: number;
  /** The physical memory's control block (kGeneration). */
  private readonly control: Int32Array;

  constructor(pager: Pager, phys: PhysicalMemory, control: Int32Array) {
    this.pager = pager;
    this.layout = pager.layout;
    this.phys = phys;
    this.table = pager.table;
    this.guests = pager.guests;
    this.thread = pager.thread;
    this.pageSize = pager.layout.pageSize;
    this.control = control;
  }

  /**
   * `farmem.wait32/64(ea, expected, timeoutNs)`: the guest already trapped on a bad address, so
   * `ea` is in bounds and aligned. Returns 0 (woken by notify), 1 (value differs), 2 (timed out).
   * The value is compared and the thread enqueued under the frame-table lock, which notify takes
   * too, so a notify after the guest's store cannot be missed. The waiter holds no translation.
   */
  wait(ea: number, expected: number | bigint, timeoutNs: bigint, bytes: 4 | 8): number {
    this.pager.flushBounce();
    ea >>>= 0;
    const page = Math.floor(ea / this.pageSize);
    const within = ea - page * this.pageSize;
    this.guests.quiesce(this.thread);
    this.table.lock();
    try {
      const phys = frameAddress(this.layout, this.pager.ensureLocked(page, false)) + within;
      const buffer = this.phys.bytes.buffer;
      const equal = bytes === 4
        ? Atomics.load(new Int32Array(buffer, phys, 1), 0) === (expected as number | 0)
        : Atomics.load(new BigInt64Array(buffer, phys, 1), 0) === BigInt.asIntN(64, expected as bigint);
      this.guests.quiesce(this.thread);
      if (!equal) return 1;
      this.guests.enqueueWaiter(this.thread, ea);
    } finally {
      this.table.unlock();
    }
    this.pager.handOver(); // before it sleeps: its fault's prefetches would otherwise wait for another ring
    this.guests.sleep(this.thread, timeoutNs < 0n ? Infinity : Number(timeoutNs) / 1e6);
    this.table.lock();
    const woken = this.guests.dequeueWaiter(this.thread);
    this.guests.resume(this.thread, Atomics.load(this.control, kGeneration));
    this.table.unlock();
    return woken ? 0 : 2;
  }

  /** `farmem.notify(ea, count)`: wakes up to `count` (u32) threads waiting on `ea`; returns how many. */
  notify(ea: number, count: number): number {
    this.table.lock();
    try {
      return this.guests.wake(ea >>> 0, count >>> 0);
    } finally {
      this.table.unlock();
    }
  }
}
