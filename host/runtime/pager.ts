/**
 * @fileoverview The pager: serves a guest's faults on the guest's own thread. It maps pages into
 * frames of physical memory (frame-table.ts holds the shared frame state), moves pages through a
 * `PageIo` (in-process store, or the I/O worker's ring for memory servers), runs CLOCK with second
 * chance via soft-unmap, writes back only dirty pages, and issues prefetch reads after the demand read.
 *
 * Over 400 lines: fault handling, frame allocation with CLOCK and host access (bulk ops, hints)
 * still share this class; splitting them (issue 15) waits for the shared-memory work still in
 * flight here.
 *
 * A resident page may be mapped in RT (readable) and WT (writable, i.e. dirty), or in neither
 * ("soft-unmapped"): the next touch is then a minor fault that sets REFERENCED again. A dirty page
 * stays DIRTY until written back, even while unmapped.
 *
 * Eviction safety with a reclaimer worker (threaded mode): the reclaimer unmaps victims, marks them
 * EVICTING, publishes a new generation (control block kGeneration) and reuses their frames only after
 * the guest acknowledged that generation (kGuestAck). The guest acknowledges at the start of every
 * `ensure()`: at that point it holds no translation (translations are used by the very next
 * instruction, never across a call into the host). A touch of an EVICTING page rescues it (minor).
 * In embedded mode there is no reclaimer: the guest evicts directly, which is trivially safe.
 */
import { BOUNCE_ADDRESS, FAULT_WRITE, frameAddress, kGeneration, kGuestAck, kVirtualPages, OOB_ADDRESS, WASM_PAGE, type Layout } from '../layout.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from '../prefetch/policy.js';
import { StoreError } from '../errors.js';
import {
  evictChannel, faultChannel, prefetchChannel, publishEvict, publishFault, publishPrefetch, publishStoreError, storeErrorChannel,
} from '../stats/channels.js';
import { Counters } from '../stats/counters.js';
import { FaultLatency } from '../stats/latency.js';
import type { PageIo } from './page-io.js';
import type { PhysicalMemory } from './physical-memory.js';
import {
  DIRTY, EVICTING, FrameTable, IN_FLIGHT, kEvictions, kLocalFrames, kLowWater, kReclaimDoorbell, kResident, kResidentPeak,
  kWasted, kWriteBacks, PINNED, PREFETCHED, REFERENCED, reserveFrames,
} from './frame-table.js';

/** `servedKind` before the fault being timed was served (a resident, mapped page: no fault at all). */
const NOT_SERVED = -1;

/** Most pages one prefetch decision may bring in (leap-stream keeps up to 256 in flight). */
const MAX_PREFETCH = 256;

/** How the frame pool is sized: a fixed number of frames, or a fraction of the guest's memory. */
export type FrameBudget = { readonly frames: number } | { readonly fraction: number; readonly minFrames: number };

export interface PagerOptions {
  readonly layout: Layout;
  readonly budget: FrameBudget;
  /** Initial and maximum virtual size, in wasm pages. */
  readonly initialPages: number;
  readonly maximumPages: number;
  readonly prefetch: PrefetchPolicy | null;
  /** Called for every fault with (page, kind) when tracing; null when off. */
  readonly onFault: ((page: number, kind: FaultKind) => void) | null;
  /** Record per-stage fault latency histograms (costs two clock reads per fault). */
  readonly latency: boolean;
  /**
   * A reclaimer worker will share the frame table: the pool gets a reserve of free frames on top of
   * the budget (`reserveFrames`), and pages never written to the store are zero-filled here instead
   * of read (the store is this run's own, empty namespace).
   */
  readonly reclaimer?: boolean;
}

export const enum FaultKind {
  Major = 0,
  Minor = 1,
  PrefetchHit = 2,
  WriteMinor = 3,
}

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

/**
 * The fault a prefetch policy is shown, one object reused for every fault. `time` reads the clock
 * when the policy asks (during `onFault`): storing a fresh double in a field would allocate a heap
 * number on every fault, for a value the built-in policies never read.
 */
class PolicyFaultInfo implements FaultInfo {
  page = 0;
  prefetchHit = false;
  numPages = 0;
  late = false;
  frames = 0;
  get time(): number {
    return performance.now() * 1e6;
  }
}

export class Pager {
  readonly layout: Layout;
  readonly memory: WebAssembly.Memory;
  readonly counters = new Counters();
  /** Latency histograms, or null when not recording. */
  readonly latency: FaultLatency | null;
  readonly table: FrameTable;
  private readonly phys: PhysicalMemory;
  private readonly io: PageIo;
  /** True when a reclaimer worker shares the frame table. */
  private threaded = false;
  private readonly prefetch: PrefetchPolicy | null;
  private readonly onFault: PagerOptions['onFault'];
  private readonly pageSize: number;
  private readonly budget: FrameBudget;
  private readonly maximumPages: number;
  /** Whether the pool carries a reserve, and never-stored pages are zero-filled without I/O. */
  private readonly reserve: boolean;
  private readonly pageStored: Uint8Array;

  private readonly control: Int32Array;
  private readonly readTable: Int32Array;
  private readonly writeTable: Int32Array;
  private readonly frameOfPage: Int32Array;
  private readonly frameFlags: Int32Array;
  private readonly frameTicket: Int32Array;

  /** A straddling store waiting in the bounce buffer: flushed at the next host entry. */
  private pendingAddr = -1;
  private pendingBytes = 0;
  private readonly scratch: Uint8Array;
  private readonly prefetchOut = new Int32Array(MAX_PREFETCH);
  private readonly faultInfo = new PolicyFaultInfo();
  /** Marks of the fault being served (performance.now() ms) and what it turned out to be. */
  private timing = false;
  private markSent = 0;
  private markReply = 0;
  private markMapped = 0;
  /** What the fault being timed turned out to be (set by `noteFault`), or NOT_SERVED yet. */
  private servedKind: FaultKind | typeof NOT_SERVED = NOT_SERVED;

  constructor(options: PagerOptions, phys: PhysicalMemory, io: PageIo) {
    const { layout } = options;
    this.layout = layout;
    this.phys = phys;
    this.memory = phys.memory;
    this.io = io;
    this.prefetch = options.prefetch;
    this.onFault = options.onFault;
    this.latency = options.latency ? new FaultLatency() : null;
    this.pageSize = layout.pageSize;
    this.budget = options.budget;
    this.maximumPages = options.maximumPages;
    this.scratch = new Uint8Array(layout.pageSize);
    this.reserve = options.reclaimer === true;

    const buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    this.control = new Int32Array(buffer, 0, 64);
    const table = FrameTable.allocate(layout, buffer, phys.maxFrames);
    this.table = table;
    this.readTable = table.readTable;
    this.writeTable = table.writeTable;
    this.frameOfPage = table.frameOfPage;
    this.frameFlags = table.frameFlags;
    this.frameTicket = table.frameTicket;
    this.pageStored = table.pageStored;
    this.control[kVirtualPages] = options.initialPages;
    this.growPool(options.initialPages);
  }

  /** From now on a reclaimer worker shares the frame table: take the lock, acknowledge generations. */
  enableReclaimer(): void {
    this.threaded = true;
  }

  /** Current virtual size in bytes. */
  get virtualBytes(): number {
    return this.control[kVirtualPages]! * WASM_PAGE;
  }
  get frameCount(): number {
    return this.table.frames;
  }
  /** Frames of local memory the budget grants (the reclaimer's reserve is on top). */
  get localFrames(): number {
    return this.table.control[kLocalFrames]!;
  }
  get residentPages(): number {
    return this.table.control[kResident]!;
  }
  /** Most pages resident at once so far. */
  get residentPeak(): number {
    return Atomics.load(this.table.control, kResidentPeak);
  }

  /** Counters with the reclaimer's evictions and write-backs folded in. */
  totals(): Counters {
    const c = this.counters;
    const t = this.table.control;
    const out = new Counters();
    Object.assign(out, c);
    out.evictions += Atomics.load(t, kEvictions);
    out.writeBacks += Atomics.load(t, kWriteBacks);
    out.bytesOut += Atomics.load(t, kWriteBacks) * this.pageSize;
    out.prefetchWasted += Atomics.load(t, kWasted);
    return out;
  }

  // ── guest imports ────────────────────────────────────────────────────────────────────────────

  /**
   * `farmem.fault(addr, offset, info)`: returns the physical address the guest should access for
   * `info & 0xff` bytes at virtual `addr + offset`. Traps (by returning an address past physical
   * memory) when the access is out of bounds, exactly where the original would.
   */
  fault(addr: number, offset: number, info: number): number {
    return this.faultAt((addr >>> 0) + (offset >>> 0), info);
  }

  /**
   * `fault()` at an exact effective address (up to 2^53: memory64's `fault64` passes its own).
   * With several memories the address is in the shared page space and the caller checked its
   * memory's bounds (`limit` Infinity); likewise for copy and fill.
   */
  faultAt(ea: number, info: number, limit = this.virtualBytes): number {
    if (this.pendingAddr >= 0) this.flushBounce();
    const size = info & 0xff;
    if (ea + size > limit) return (OOB_ADDRESS + (ea & 15)) | 0;
    const write = (info & FAULT_WRITE) !== 0;
    const page = Math.floor(ea / this.pageSize);
    const within = ea - page * this.pageSize;
    if (within + size <= this.pageSize) {
      if (this.latency === null) return (this.frameAddress(this.ensure(page, write)) + within) | 0;
      return this.timedFault(page, write, within);
    }
    // Straddles two pages: serve it from the bounce buffer, keeping the address's alignment.
    this.counters.straddles++;
    const bounce = BOUNCE_ADDRESS + (ea & 15);
    // Load the current bytes first: a store usually overwrites them all, but a misaligned atomic
    // store traps before writing, and the later flush must then write back what was there.
    this.readVirtual(ea, this.phys.bytes, bounce, size);
    if (write) {
      // The guest stores into the bounce buffer next; both pages are unmapped so any access to
      // them enters the host, which first copies the bounce buffer back (flushBounce).
      this.unmap(page);
      this.unmap(page + 1);
      this.pendingAddr = ea;
      this.pendingBytes = size;
    }
    return bounce;
  }

  /** `fault()` with latency marks: entry → request sent → reply → mapped → resumed. */
  private timedFault(page: number, write: boolean, within: number): number {
    const entry = performance.now();
    this.timing = true;
    this.servedKind = NOT_SERVED;
    const address = (this.frameAddress(this.ensure(page, write)) + within) | 0;
    this.timing = false;
    const resumed = performance.now();
    const served = this.servedKind as FaultKind | typeof NOT_SERVED; // set by noteFault inside ensure()
    if (served === FaultKind.Major) this.latency!.recordMajor(entry, this.markSent, this.markReply, this.markMapped, resumed);
    else if (served !== NOT_SERVED) this.latency!.recordMinor(entry, resumed);
    return address;
  }

  /** `farmem.grow(delta)`: memory.grow on the virtual memory, by `delta` (≥ 0) wasm pages. */
  grow(delta: number): number {
    if (this.pendingAddr >= 0) this.flushBounce();
    const old = this.control[kVirtualPages]!;
    const pages = old + delta;
    if (pages > this.maximumPages) return -1;
    this.control[kVirtualPages] = pages;
    if ('fraction' in this.budget) this.growPool(pages);
    return old;
  }

  /** `farmem.copy(dst, src, n)`: memory.copy, with memmove semantics and all-or-nothing bounds (non-negative exact numbers). */
  copy(dst: number, src: number, n: number, limit = this.virtualBytes): void {
    if (this.pendingAddr >= 0) this.flushBounce();
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
  fill(dst: number, value: number, n: number, limit = this.virtualBytes): void {
    if (this.pendingAddr >= 0) this.flushBounce();
    if (dst + n > limit) throw oob();
    this.scratch.fill(value & 0xff);
    for (let done = 0; done < n; ) {
      const chunk = Math.min(n - done, this.pageSize - ((dst + done) % this.pageSize));
      this.writeVirtual(dst + done, this.scratch, 0, chunk);
      done += chunk;
    }
  }

  // ── host access by virtual address (VirtualMemory, bulk ops, data segments) ──────────────────

  /** Copies `length` bytes at virtual `addr` into `dst[at..]`. Caller checked bounds. */
  readVirtual(addr: number, dst: Uint8Array, at: number, length: number): void {
    const ps = this.pageSize;
    while (length > 0) {
      const page = Math.floor(addr / ps);
      const within = addr - page * ps;
      const chunk = Math.min(length, ps - within);
      const from = this.frameAddress(this.ensure(page, false)) + within;
      if (dst === this.phys.bytes) this.phys.bytes.copyWithin(at, from, from + chunk);
      else dst.set(this.phys.bytes.subarray(from, from + chunk), at);
      addr += chunk;
      at += chunk;
      length -= chunk;
    }
  }

  /** Copies `src[at .. at + length)` to virtual `addr`, marking pages dirty. Caller checked bounds. */
  writeVirtual(addr: number, src: Uint8Array, at: number, length: number): void {
    const ps = this.pageSize;
    while (length > 0) {
      const page = Math.floor(addr / ps);
      const within = addr - page * ps;
      const chunk = Math.min(length, ps - within);
      const to = this.frameAddress(this.ensure(page, true)) + within;
      if (src === this.phys.bytes) this.phys.bytes.copyWithin(to, at, at + chunk);
      else this.phys.bytes.set(src.subarray(at, at + chunk), to);
      addr += chunk;
      at += chunk;
      length -= chunk;
    }
  }

  /** Called on every host entry that may look at guest memory. */
  flushBounce(): void {
    const addr = this.pendingAddr;
    if (addr < 0) return;
    this.pendingAddr = -1;
    this.writeVirtual(addr, this.phys.bytes, BOUNCE_ADDRESS + (addr & 15), this.pendingBytes);
  }

  /** Writes a page's initial content straight into the store (data segments, before the guest runs). */
  writeInitialImage(addr: number, data: Uint8Array): void {
    this.writeVirtual(addr, data, 0, data.length);
  }

  /** Writes every dirty resident page back to the store (e.g. before handing the store to another runtime). */
  writeBackAll(): void {
    if (this.pendingAddr >= 0) this.flushBounce();
    this.lock();
    for (let f = 0; f < this.table.frames; f++) {
      const page = this.table.pageOf(f);
      if (page >= 0 && this.frameFlags[f]! & DIRTY) {
        this.table.markStored(page);
        this.io.write(page, this.frameAddress(f));
        this.frameFlags[f]! &= ~DIRTY;
        this.writeTable[page] = 0;
        this.counters.writeBacks++;
        this.counters.bytesOut += this.pageSize;
      }
    }
    this.unlock();
    this.io.drain();
  }

  /** Waits for outstanding I/O and stops it. */
  async close(): Promise<void> {
    try {
      this.io.drain();
    } finally {
      await this.io.close();
    }
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  private frameAddress(frame: number): number {
    return frameAddress(this.layout, frame);
  }

  /** Grows the pool to the budget for a guest of `wasmPages` (plus the reserve). */
  private growPool(wasmPages: number): void {
    const local = localFrames(this.layout, this.budget, wasmPages);
    const reserve = this.reserve ? reserveFrames(local) : 0;
    this.phys.ensureFrames(Math.min(this.table.buffers.maxFrames, local + reserve));
    this.lock();
    this.table.grow(local, reserve);
    this.unlock();
  }

  /**
   * Starts reading `page` into `frame`; returns the I/O ticket. A page never written to the store
   * (with a reserve, the store is this run's own) is zero-filled here: no I/O, ticket 0.
   */
  private readPage(page: number, frame: number, prefetch: boolean): number {
    const at = this.frameAddress(frame);
    if (this.reserve && this.pageStored[page] === 0) {
      this.phys.bytes.fill(0, at, at + this.pageSize);
      this.counters.zeroFills++;
      return 0;
    }
    this.counters.bytesIn += this.pageSize;
    return this.io.read(page, at, prefetch);
  }

  private lock(): void {
    if (this.threaded) this.table.lock();
  }
  private unlock(): void {
    if (this.threaded) this.table.unlock();
  }

  /** Makes `page` resident and mapped for reading (and writing); returns its frame. */
  private ensure(page: number, write: boolean): number {
    try {
      if (!this.threaded) return this.ensureLocked(page, write);
      // Safepoint: the guest holds no translation now, so every generation published so far is safe.
      Atomics.store(this.control, kGuestAck, Atomics.load(this.control, kGeneration));
      Atomics.notify(this.control, kGuestAck);
      this.table.lock();
      try {
        return this.ensureLocked(page, write);
      } finally {
        this.table.unlock();
      }
    } catch (e) {
      if (e instanceof StoreError && storeErrorChannel.hasSubscribers) publishStoreError(e);
      throw e;
    }
  }

  /** Reports a served fault to the trace hook and the `farmem:fault` channel. */
  private noteFault(page: number, kind: FaultKind): void {
    this.servedKind = kind;
    this.onFault?.(page, kind);
    if (faultChannel.hasSubscribers) publishFault(page, kind);
  }

  private ensureLocked(page: number, write: boolean): number {
    let frame = this.frameOfPage[page]! - 1;
    let flags: number;
    if (frame >= 0) {
      flags = this.frameFlags[frame]!;
      if (flags & EVICTING) flags &= ~EVICTING; // rescued before the reclaimer reused it
      let late = false;
      if (flags & IN_FLIGHT) {
        const ticket = this.frameTicket[frame]!;
        if (!this.io.landed(ticket)) {
          late = true;
          this.counters.prefetchLate++;
          this.frameFlags[frame]! |= PINNED;
          this.waitUnlocked(ticket);
        }
        flags &= ~IN_FLIGHT;
      }
      const prefetchHit = (flags & PREFETCHED) !== 0;
      const wasMapped = this.readTable[page] !== 0;
      if (!wasMapped || (write && this.writeTable[page] === 0)) {
        this.counters.minorFaults++;
        if (prefetchHit) {
          this.counters.prefetchHits++;
          flags &= ~PREFETCHED;
          this.noteFault(page, FaultKind.PrefetchHit);
          if (this.prefetch !== null) this.runPrefetch(page, true, frame, late);
        } else {
          this.noteFault(page, wasMapped ? FaultKind.WriteMinor : FaultKind.Minor);
        }
      }
    } else {
      frame = this.takeFrame();
      const ticket = this.readPage(page, frame, false);
      if (this.timing) this.markSent = performance.now();
      this.counters.majorFaults++;
      this.table.assign(frame, page);
      flags = 0;
      this.noteFault(page, FaultKind.Major);
      if (this.prefetch !== null) {
        // Prefetch reads are issued after the demand read, and we wait only for the demand.
        this.frameFlags[frame] = REFERENCED | PINNED;
        this.runPrefetch(page, false, frame, false);
      }
      this.frameFlags[frame]! |= PINNED; // keep the reclaimer away while the read lands
      if (ticket !== 0) this.waitUnlocked(ticket);
      if (this.timing) this.markReply = performance.now();
    }
    flags |= REFERENCED;
    const delta = (this.frameAddress(frame) - page * this.pageSize) | 0;
    this.readTable[page] = delta;
    if (write) {
      flags |= DIRTY;
      this.writeTable[page] = delta;
    }
    this.frameFlags[frame] = flags;
    if (this.timing) this.markMapped = performance.now();
    return frame;
  }

  /**
   * `farmem.hint(addr, len, advice)`, like madvise: WillNeed starts reading the range's pages
   * (at most half the pool), DontNeed pages the range out (dirty pages are written back, never
   * discarded), Sequential/Random/Normal are passed to the prefetch policy. Out-of-range parts are
   * ignored, as are unknown advice values: a hint never changes what the program computes.
   */
  hint(addr: number, length: number, advice: number): void {
    if (this.pendingAddr >= 0) this.flushBounce();
    const start = addr >>> 0;
    const end = Math.min(start + (length >>> 0), this.virtualBytes);
    if (end <= start) return;
    const first = Math.floor(start / this.pageSize);
    const last = Math.floor((end - 1) / this.pageSize);
    const count = last - first + 1;
    if (advice === Advice.WillNeed) {
      this.lock();
      try {
        const limit = Math.min(count, this.table.frames >>> 1);
        for (let p = first; p < first + limit; p++) if (this.frameOfPage[p] === 0) this.startPrefetch(p);
      } finally {
        this.unlock();
      }
    } else if (advice === Advice.DontNeed) {
      this.lock();
      try {
        for (let p = first; p <= last; p++) {
          const frame = this.frameOfPage[p]! - 1;
          if (frame < 0 || this.frameFlags[frame]! & PINNED) continue;
          this.evict(frame, p, this.frameFlags[frame]!, 'hint');
        }
      } finally {
        this.unlock();
      }
    } else if (advice === Advice.Sequential || advice === Advice.Random || advice === Advice.Normal) {
      this.prefetch?.advise?.(first, count, advice);
    }
  }

  /** Reads `p` into a free frame, unmapped: its first touch is a minor fault counted as a prefetch hit. */
  private startPrefetch(p: number): void {
    const frame = this.takeFrame();
    const ticket = this.readPage(p, frame, true);
    this.table.assign(frame, p);
    this.frameTicket[frame] = ticket;
    this.frameFlags[frame] = ticket === 0 ? PREFETCHED : PREFETCHED | IN_FLIGHT;
    this.counters.prefetchIssued++;
  }

  /**
   * Waits for a read without holding the frame-table lock, so the reclaimer can work meanwhile. The
   * frame being read is PINNED (and unmapped), so nothing else touches it.
   */
  private waitUnlocked(ticket: number): void {
    if (!this.threaded) return this.io.wait(ticket);
    this.table.unlock();
    try {
      this.io.wait(ticket);
    } finally {
      this.table.lock();
    }
  }

  private runPrefetch(page: number, hit: boolean, pinned: number, late: boolean): void {
    const info = this.faultInfo;
    info.page = page;
    info.prefetchHit = hit;
    info.late = late;
    info.frames = this.table.frames;
    const numPages = Math.ceil(this.virtualBytes / this.pageSize);
    info.numPages = numPages;
    const count = this.prefetch!.onFault(info, this.prefetchOut);
    if (count === 0) return;
    // Never let prefetching evict the page being faulted in, nor use more than half the pool.
    this.frameFlags[pinned]! |= PINNED;
    const limit = Math.min(count, this.table.frames >>> 1);
    let issued = 0;
    for (let i = 0; i < limit; i++) {
      const p = this.prefetchOut[i]!;
      if (p >= 0 && p < numPages && this.frameOfPage[p] === 0) {
        this.startPrefetch(p);
        issued++;
      }
    }
    this.frameFlags[pinned]! &= ~PINNED;
    if (prefetchChannel.hasSubscribers) publishPrefetch(page, hit, this.prefetchOut, count, issued);
  }

  /** A free frame, evicting if none is free. */
  private takeFrame(): number {
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
   * is a fine victim here: the guest, inside the host, holds no translation to it.
   */
  private evictOne(): number {
    for (let scanned = 0; ; scanned++) {
      if (scanned > 3 * this.table.frames) throw new Error('farmem: every frame is pinned; the frame pool is too small');
      const f = this.table.clockStep(PINNED);
      if (f < 0) continue;
      const page = this.table.pageOf(f);
      this.evict(f, page, this.frameFlags[f]!, 'reclaim');
      // evict() released the frame onto the free stack; take it back.
      return this.table.popFree();
    }
  }

  private evict(frame: number, page: number, flags: number, reason: 'reclaim' | 'hint'): void {
    this.readTable[page] = 0;
    this.writeTable[page] = 0;
    if (flags & IN_FLIGHT) this.io.wait(this.frameTicket[frame]!); // let the read land before reuse
    if (flags & DIRTY) {
      this.table.markStored(page);
      this.io.write(page, this.frameAddress(frame));
      this.counters.writeBacks++;
      this.counters.bytesOut += this.pageSize;
    }
    if (flags & PREFETCHED) this.counters.prefetchWasted++;
    this.counters.evictions++;
    this.table.release(frame, page);
    if (evictChannel.hasSubscribers) publishEvict(page, (flags & DIRTY) !== 0, (flags & PREFETCHED) !== 0, reason);
  }

  private unmap(page: number): void {
    this.table.unmap(page);
  }
}

function oob(): WebAssembly.RuntimeError {
  return new WebAssembly.RuntimeError('memory access out of bounds');
}
