/**
 * @fileoverview The pager: serves a guest's faults on the guest's own thread. It maps pages into
 * frames of physical memory (frame-table.ts holds the shared frame state), moves pages through a
 * `PageIo` (in-process store, or the I/O worker's ring for memory servers), runs CLOCK with second
 * chance via soft-unmap, writes back only dirty pages, and issues prefetch reads after the demand read.
 *
 * Over 400 lines: fault handling, frame allocation with CLOCK (direct reclaim with several guest
 * threads included), host access (bulk ops, hints) and atomics wait/notify still share this class;
 * splitting them is issue 15's work.
 *
 * A resident page may be mapped in RT (readable) and WT (writable, i.e. dirty), or in neither
 * ("soft-unmapped"): the next touch is then a minor fault that sets REFERENCED again. A dirty page
 * stays DIRTY until written back, even while unmapped.
 *
 * Eviction safety with a reclaimer worker (threaded mode): the reclaimer unmaps victims, marks them
 * EVICTING, publishes a new generation (control block kGeneration) and reuses their frames only after
 * the guest acknowledged that generation (every guest thread's slot in guest-threads.ts). The guest acknowledges at the start of every
 * `ensure()`: at that point it holds no translation (translations are used by the very next
 * instruction, never across a call into the host). A touch of an EVICTING page rescues it (minor).
 * In embedded mode there is no reclaimer: the guest evicts directly, which is trivially safe.
 *
 * Several guest threads (a shared-memory module): each thread has its own Pager over the same
 * physical memory, frame table and store (`PagerOptions.attach`), a thread index, its own bounce
 * buffer, and an acknowledgement slot in the guest-thread table (guest-threads.ts). Every frame-table
 * change happens under the lock; a thread acknowledges at every `ensure()` as with one thread, and is
 * QUIESCENT (acknowledges everything) while it waits for other threads' acknowledgements, sleeps in
 * `memory.atomic.wait`, runs a host import or runs no guest code at all; a frame is reused only once
 * every running thread acknowledged its generation, also on direct reclaim.
 */
import { bounceAddress, FAULT_WRITE, frameAddress, kGeneration, kVirtualPages, OOB_ADDRESS, WASM_PAGE, type Layout } from '../layout.js';
import { StoreError } from '../errors.js';
import {
  evictChannel, faultChannel, prefetchChannel, publishEvict, publishFault, publishPrefetch, publishStoreError, storeErrorChannel,
} from '../stats/channels.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from '../prefetch/policy.js';
import { Counters } from '../stats/counters.js';
import { FaultLatency } from '../stats/latency.js';
import { GuestThreads } from './guest-threads.js';
import type { PageIo } from './page-io.js';
import type { PhysicalMemory } from './physical-memory.js';
import {
  DIRTY, EVICTING, FrameTable, type FrameTableBuffers, IN_FLIGHT, kEvictions, kLocalFrames, kLowWater, kReclaimDoorbell, kResident, kResidentPeak,
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
  /** The module's memory is shared: several guest threads may run over this physical memory. */
  readonly sharedMemory?: boolean;
  /** An additional guest thread: attach to the first thread's frame table and thread table. */
  readonly attach?: { readonly thread: number; readonly table: FrameTableBuffers; readonly guests: SharedArrayBuffer };
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
  /** Every guest thread's acknowledgement and wait slot; this pager is thread `thread`. */
  readonly guests: GuestThreads;
  readonly thread: number;
  private readonly sharedMemory: boolean;
  private readonly bounce: number;
  /** Frame count when `phys.bytes` was last checked (another thread may have grown the pool). */
  private knownFrames = 0;
  /**
   * True while guest code runs on this thread (shared memory: set by the export and import wrappers
   * of instance.ts). Outside guest code a host access leaves the thread QUIESCENT.
   */
  private inGuest = false;
  private tracksGuest = false;

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
    const attach = options.attach;
    const table = attach ? new FrameTable(layout, buffer, attach.table) : FrameTable.allocate(layout, buffer, phys.maxFrames);
    this.table = table;
    this.sharedMemory = options.sharedMemory ?? false;
    this.threaded = this.sharedMemory;
    this.thread = attach?.thread ?? 0;
    this.bounce = bounceAddress(this.thread);
    this.guests = new GuestThreads(attach?.guests);
    this.readTable = table.readTable;
    this.writeTable = table.writeTable;
    this.frameOfPage = table.frameOfPage;
    this.frameFlags = table.frameFlags;
    this.frameTicket = table.frameTicket;
    this.pageStored = table.pageStored;
    if (attach) {
      this.knownFrames = table.frames;
      return;
    }
    this.guests.register(0, 0);
    this.control[kVirtualPages] = options.initialPages;
    this.growPool(options.initialPages);
  }

  /** From now on a reclaimer worker shares the frame table: take the lock, acknowledge generations. */
  enableReclaimer(): void {
    this.threaded = true;
  }

  /** From now on the caller tells when guest code runs (shared memory: instance.ts wraps exports and imports). */
  trackGuest(): void {
    this.tracksGuest = true;
  }

  /** Guest code starts or resumes on this thread: translations it loads from now on are this generation's. */
  enterGuest(): void {
    this.inGuest = true;
    this.guests.resume(this.thread, Atomics.load(this.control, kGeneration));
  }

  /** Guest code stopped (returned, or called the host): the thread holds no translation. */
  leaveGuest(): void {
    this.inGuest = false;
    this.guests.quiesce(this.thread);
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

  /** Counters with the reclaimer's evictions and write-backs folded in (and `others`: ended guest threads'). */
  totals(others?: Counters): Counters {
    const c = this.counters;
    const t = this.table.control;
    const out = new Counters();
    Object.assign(out, c);
    if (others) out.add(others);
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
    // Shared memory flushes a bounce store right after it (farmem.flush); one still pending here
    // belongs to a misaligned atomic store that trapped and wrote nothing.
    if (this.pendingAddr >= 0) {
      if (this.sharedMemory) this.pendingAddr = -1;
      else this.flushBounce();
    }
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
    const bounce = this.bounce + (ea & 15);
    // Load the current bytes first: a store usually overwrites them all, but a misaligned atomic
    // store traps before writing, and the later flush must then write back what was there.
    this.readVirtual(ea, this.phys.bytes, bounce, size);
    if (write) {
      // The guest stores into the bounce buffer next; both pages are unmapped so any access to
      // them enters the host, which first copies the bounce buffer back (flushBounce). Shared
      // memory flushes right after the store instead (another thread may touch the pages first).
      if (!this.sharedMemory) {
        this.unmap(page);
        this.unmap(page + 1);
      }
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
    this.lock();
    let old: number;
    let pages: number;
    try {
      old = this.control[kVirtualPages]!;
      pages = old + delta;
      if (pages > this.maximumPages) return -1;
      Atomics.store(this.control, kVirtualPages, pages);
    } finally {
      this.unlock();
    }
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
    if (this.tracksGuest && !this.inGuest) this.guests.quiesce(this.thread);
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
      const to = this.frameAddress(this.ensure(page, true)) + within;
      if (src === this.phys.bytes) this.phys.bytes.copyWithin(to, at, at + chunk);
      else this.phys.bytes.set(src.subarray(at, at + chunk), to);
      addr += chunk;
      at += chunk;
      length -= chunk;
    }
    if (this.tracksGuest && !this.inGuest) this.guests.quiesce(this.thread);
  }

  /** Called on every host entry that may look at guest memory (and by `farmem.flush` with shared memory). */
  flushBounce(): void {
    const addr = this.pendingAddr;
    if (addr < 0) return;
    this.pendingAddr = -1;
    this.writeVirtual(addr, this.phys.bytes, this.bounce + (addr & 15), this.pendingBytes);
  }

  // ── memory.atomic.wait / notify on shared memory, by virtual address ───────────────────────────

  /**
   * `farmem.wait32/64(ea, expected, timeoutNs)`: the guest already trapped on a bad address, so
   * `ea` is in bounds and aligned. Returns 0 (woken by notify), 1 (value differs), 2 (timed out).
   * The value is compared and the thread enqueued under the frame-table lock, which notify takes
   * too, so a notify after the guest's store cannot be missed. The waiter holds no translation.
   */
  wait(ea: number, expected: number | bigint, timeoutNs: bigint, bytes: 4 | 8): number {
    if (this.pendingAddr >= 0) this.flushBounce();
    ea >>>= 0;
    const page = Math.floor(ea / this.pageSize);
    const within = ea - page * this.pageSize;
    this.guests.quiesce(this.thread);
    this.table.lock();
    try {
      const phys = this.frameAddress(this.ensureLocked(page, false)) + within;
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
    this.lock(); // another guest thread may grow it at the same time
    try {
      this.phys.ensureFrames(Math.min(this.table.buffers.maxFrames, local + reserve));
      this.table.grow(local, reserve);
      this.knownFrames = this.table.frames;
    } finally {
      this.unlock();
    }
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
      this.guests.resume(this.thread, Atomics.load(this.control, kGeneration));
      this.table.lock();
      try {
        if (this.table.frames !== this.knownFrames) { // another guest thread grew the pool
          this.knownFrames = this.table.frames;
          this.phys.refresh();
        }
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


  /**
   * Under the lock (threaded). The lock is released while a read lands (and on direct reclaim with
   * several guest threads), so after each such wait the page is looked up again: another thread may
   * have brought it in, mapped it or evicted it meanwhile.
   */
  private ensureLocked(page: number, write: boolean): number {
    for (;;) {
      let frame = this.frameOfPage[page]! - 1;
      if (frame >= 0) {
        const flags = this.frameFlags[frame]!;
        let late = false;
        if (flags & IN_FLIGHT) {
          const ticket = this.frameTicket[frame]!;
          if (!this.io.landed(ticket)) {
            late = true;
            if (flags & PREFETCHED) this.counters.prefetchLate++;
            this.frameFlags[frame]! |= PINNED;
            this.waitUnlocked(ticket);
            if (this.frameOfPage[page] !== frame + 1) continue;
          }
          this.frameFlags[frame]! &= ~IN_FLIGHT;
        }
        const wasMapped = this.readTable[page] !== 0;
        if (!wasMapped || (write && this.writeTable[page] === 0)) {
          this.counters.minorFaults++;
          if (this.frameFlags[frame]! & PREFETCHED) {
            this.counters.prefetchHits++;
            this.frameFlags[frame]! &= ~PREFETCHED;
            this.noteFault(page, FaultKind.PrefetchHit);
            if (this.prefetch !== null) this.runPrefetch(page, true, frame, late);
          } else {
            this.noteFault(page, wasMapped ? FaultKind.WriteMinor : FaultKind.Minor);
          }
        }
      } else {
        frame = this.takeFrame();
        if (this.frameOfPage[page] !== 0) { // another guest thread brought the page in meanwhile
          this.table.pushFree(frame);
          continue;
        }
        const ticket = this.readPage(page, frame, false);
        if (this.timing) this.markSent = performance.now();
        this.counters.majorFaults++;
        this.table.assign(frame, page);
        // PINNED keeps reclaimers away while the read lands; IN_FLIGHT makes other threads wait for it.
        this.frameTicket[frame] = ticket;
        this.frameFlags[frame] = ticket === 0 ? REFERENCED | PINNED : REFERENCED | PINNED | IN_FLIGHT;
        this.noteFault(page, FaultKind.Major);
        // Prefetch reads are issued after the demand read, and we wait only for the demand.
        if (this.prefetch !== null) this.runPrefetch(page, false, frame, false);
        if (ticket !== 0) this.waitUnlocked(ticket);
        if (this.timing) this.markReply = performance.now();
        if (this.frameOfPage[page] !== frame + 1) continue;
      }
      let flags = (this.frameFlags[frame]! & ~(EVICTING | PINNED | IN_FLIGHT)) | REFERENCED; // EVICTING: rescued
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
        // With several guest threads another may hold a translation: only make the pages the
        // next victims (unreferenced, unmapped); eviction then follows the acknowledgement protocol.
        const others = this.sharedMemory && this.guests.running() > 1;
        for (let p = first; p <= last; p++) {
          const frame = this.frameOfPage[p]! - 1;
          if (frame < 0 || this.frameFlags[frame]! & PINNED) continue;
          if (others) {
            this.frameFlags[frame]! &= ~REFERENCED;
            this.unmap(p);
          } else {
            this.evict(frame, p, this.frameFlags[frame]!, 'hint');
          }
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
    if (this.frameOfPage[p] !== 0) { // another guest thread brought it in while this one reclaimed
      this.table.pushFree(frame);
      return;
    }
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
    const wasPinned = this.frameFlags[pinned]! & PINNED;
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
    if (!wasPinned) this.frameFlags[pinned]! &= ~PINNED;
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
    if (this.sharedMemory && this.guests.running() > 1) return this.evictShared();
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
    if (evictChannel.hasSubscribers) publishEvict(page, (flags & DIRTY) !== 0, (flags & PREFETCHED) !== 0, reason);
    this.table.release(frame, page);
  }

  private unmap(page: number): void {
    this.table.unmap(page);
  }
}

function oob(): WebAssembly.RuntimeError {
  return new WebAssembly.RuntimeError('memory access out of bounds');
}
