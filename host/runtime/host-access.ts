/**
 * @fileoverview Host access to a guest's virtual memory: the bulk memory ops (memory.copy, fill and
 * data-segment init), host reads and writes by virtual address (VirtualMemory, WASI buffers), and
 * madvise-like hints. Every access goes page by page through the pager's `ensure()`, as a fault would.
 */
import { frameAddress, type Layout } from '../layout.js';
import { copyBytes } from '../shared-copy.js';
import { Advice, type PrefetchPolicy } from '../prefetch/policy.js';
import type { FrameAllocator } from './frame-allocator.js';
import { PINNED, REFERENCED, type FrameTable } from './frame-table.js';
import type { GuestThreads } from './guest-threads.js';
import type { Pager } from './pager.js';
import type { PhysicalMemory } from './physical-memory.js';

export class HostAccess {
  private readonly pager: Pager;
  private readonly layout: Layout;
  private readonly phys: PhysicalMemory;
  private readonly frames: FrameAllocator;
  private readonly table: FrameTable;
  private readonly guests: GuestThreads;
  private readonly thread: number;
  private readonly sharedMemory: boolean;
  private readonly prefetch: PrefetchPolicy | null;
  private readonly pageSize: number;
  private readonly frameOfPage: Int32Array;
  private readonly frameFlags: Int32Array;
  /** One page of bytes that copy and fill move through. */
  private readonly scratch: Uint8Array;

  constructor(pager: Pager, phys: PhysicalMemory, frames: FrameAllocator, prefetch: PrefetchPolicy | null, sharedMemory: boolean) {
    this.pager = pager;
    this.layout = pager.layout;
    this.phys = phys;
    this.frames = frames;
    this.table = pager.table;
    this.guests = pager.guests;
    this.thread = pager.thread;
    this.sharedMemory = sharedMemory;
    this.prefetch = prefetch;
    this.pageSize = pager.layout.pageSize;
    this.frameOfPage = pager.table.frameOfPage;
    this.frameFlags = pager.table.frameFlags;
    this.scratch = new Uint8Array(this.pageSize);
  }

  /** `farmem.copy(dst, src, n)`: memory.copy, with memmove semantics and all-or-nothing bounds (non-negative exact numbers). */
  copy(dst: number, src: number, n: number, limit = this.pager.virtualBytes): void {
    this.pager.flushBounce();
    if (src + n > limit || dst + n > limit) throw oob();
    const ps = this.pageSize;
    if (dst <= src) {
      for (let done = 0; done < n; ) {
        const chunk = Math.min(n - done, ps - ((src + done) % ps), ps - ((dst + done) % ps));
        this.readVirtual(src + done, this.scratch, 0, chunk);
        this.writeVirtual(dst + done, this.scratch, 0, chunk);
        done += chunk;
      }
    } else {
      for (let left = n; left > 0; ) {
        const s = src + left;
        const d = dst + left;
        const chunk = Math.min(left, ((s - 1) % ps) + 1, ((d - 1) % ps) + 1);
        this.readVirtual(s - chunk, this.scratch, 0, chunk);
        this.writeVirtual(d - chunk, this.scratch, 0, chunk);
        left -= chunk;
      }
    }
  }

  /** `farmem.fill(dst, value, n)`: memory.fill. */
  fill(dst: number, value: number, n: number, limit = this.pager.virtualBytes): void {
    this.pager.flushBounce();
    if (dst + n > limit) throw oob();
    this.scratch.fill(value & 0xff);
    for (let done = 0; done < n; ) {
      const chunk = Math.min(n - done, this.pageSize - ((dst + done) % this.pageSize));
      this.writeVirtual(dst + done, this.scratch, 0, chunk);
      done += chunk;
    }
  }

  /** Copies `length` bytes at virtual `addr` into `dst[at..]`. Caller checked bounds. */
  readVirtual(addr: number, dst: Uint8Array, at: number, length: number): void {
    const ps = this.pageSize;
    while (length > 0) {
      const page = Math.floor(addr / ps);
      const within = addr - page * ps;
      const chunk = Math.min(length, ps - within);
      const from = frameAddress(this.layout, this.pager.ensure(page, false)) + within;
      if (dst === this.phys.bytes) this.phys.bytes.copyWithin(at, from, from + chunk);
      else copyBytes(dst, at, this.phys.bytes.subarray(from, from + chunk));
      addr += chunk;
      at += chunk;
      length -= chunk;
    }
    if (this.pager.tracksGuest && !this.pager.inGuest) this.guests.quiesce(this.thread);
  }

  /**
   * Copies `src[at .. at + length)` to virtual `addr`, marking pages dirty. Caller checked bounds.
   * The mirror of `readVirtual` (same page walk, the copy the other way).
   */
  writeVirtual(addr: number, src: Uint8Array, at: number, length: number): void {
    const ps = this.pageSize;
    while (length > 0) {
      const page = Math.floor(addr / ps);
      const within = addr - page * ps;
      const chunk = Math.min(length, ps - within);
      const to = frameAddress(this.layout, this.pager.ensure(page, true)) + within;
      if (src === this.phys.bytes) this.phys.bytes.copyWithin(to, at, at + chunk);
      else copyBytes(this.phys.bytes, to, src.subarray(at, at + chunk));
      addr += chunk;
      at += chunk;
      length -= chunk;
    }
    if (this.pager.tracksGuest && !this.pager.inGuest) this.guests.quiesce(this.thread);
  }

  /** Writes a page's initial content straight into the store (data segments, before the guest runs). */
  writeInitialImage(addr: number, data: Uint8Array): void {
    this.writeVirtual(addr, data, 0, data.length);
  }

  /**
   * `farmem.hint(addr, len, advice)`, like madvise: WillNeed starts reading the range's pages
   * (at most half the pool), DontNeed pages the range out (dirty pages are written back, never
   * discarded), Sequential/Random/Normal are passed to the prefetch policy. Out-of-range parts are
   * ignored, as are unknown advice values: a hint never changes what the program computes.
   */
  hint(addr: number, length: number, advice: number): void {
    this.pager.flushBounce();
    const start = addr >>> 0;
    const end = Math.min(start + (length >>> 0), this.pager.virtualBytes);
    if (end <= start) return;
    const first = Math.floor(start / this.pageSize);
    const last = Math.floor((end - 1) / this.pageSize);
    const count = last - first + 1;
    if (advice === Advice.WillNeed) {
      this.frames.lock();
      try {
        const limit = Math.min(count, this.table.frames >>> 1);
        for (let p = first; p < first + limit; p++) if (this.frameOfPage[p] === 0) this.pager.startPrefetch(p);
      } finally {
        this.frames.unlock();
      }
    } else if (advice === Advice.DontNeed) {
      this.frames.lock();
      try {
        // With several guest threads another may hold a translation: only make the pages the
        // next victims (unreferenced, unmapped); eviction then follows the acknowledgement protocol.
        const others = this.sharedMemory && this.guests.running() > 1;
        for (let p = first; p <= last; p++) {
          const frame = this.frameOfPage[p]! - 1;
          if (frame < 0 || this.frameFlags[frame]! & PINNED) continue;
          if (others) {
            this.frameFlags[frame]! &= ~REFERENCED;
            this.table.unmap(p);
          } else {
            this.frames.evict(frame, p, this.frameFlags[frame]!, 'hint');
          }
        }
      } finally {
        this.frames.unlock();
      }
    } else if (advice === Advice.Sequential || advice === Advice.Random || advice === Advice.Normal) {
      this.prefetch?.advise?.(first, count, advice);
    }
  }
}

function oob(): WebAssembly.RuntimeError {
  return new WebAssembly.RuntimeError('memory access out of bounds');
}
