/**
 * @fileoverview The pager: the fault handler on the guest's own thread. `fault()` finds the page,
 * `ensure()` makes it resident and mapped (a minor fault remaps it, a major fault reads it through a
 * `PageIo`: in-process store, or the I/O worker's ring for memory servers), straddling accesses go
 * through the bounce buffer, and prefetch reads are issued after the demand read. Frames come from
 * frame-allocator.ts (CLOCK, direct reclaim, write-back), frame-table.ts holds the shared frame
 * state; host reads/writes, bulk ops and hints are host-access.ts, atomics wait/notify atomic-wait.ts.
 *
 * Over 400 lines: the fault path's rules (eviction safety below), timing and prefetch issue stay in
 * this one class so that a minor fault, the hottest case, calls no other object.
 *
 * A resident page may be mapped in RT (readable) and WT (writable, i.e. dirty), or in neither
 * ("soft-unmapped"): the next touch is then a minor fault that sets REFERENCED again. A dirty page
 * stays DIRTY until written back, even while unmapped.
 *
 * Eviction safety with a reclaimer worker (threaded mode): the reclaimer unmaps victims, marks them
 * EVICTING, publishes a new generation (control block kGeneration) and reuses their frames only after
 * the guest acknowledged that generation (every guest thread's slot in guest-threads.ts). The guest
 * acknowledges at the start of every `ensure()`: at that point it holds no translation (translations
 * are used by the very next instruction, never across a call into the host). A touch of an EVICTING
 * page rescues it (minor).
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
import { faultChannel, prefetchChannel, publishFault, publishPrefetch, publishStoreError, storeErrorChannel } from '../stats/channels.js';
import { type FaultInfo, type PrefetchPolicy } from '../prefetch/policy.js';
import { Counters } from '../stats/counters.js';
import { FaultLatency } from '../stats/latency.js';
import { AtomicWaits } from './atomic-wait.js';
import { FrameAllocator, type FrameBudget } from './frame-allocator.js';
import { GuestThreads } from './guest-threads.js';
import { HostAccess } from './host-access.js';
import type { PageIo } from './page-io.js';
import type { PhysicalMemory } from './physical-memory.js';
import {
  DIRTY, EVICTING, FrameTable, type FrameTableBuffers, IN_FLIGHT, kEvictions, kHighWater, kLocalFrames, kResident, kResidentPeak, kWasted, kWriteBacks, PINNED,
  PREFETCHED, REFERENCED,
} from './frame-table.js';

/** `servedKind` before the fault being timed was served (a resident, mapped page: no fault at all). */
const NOT_SERVED = -1;

/** Most pages one prefetch decision may bring in (leap-stream keeps up to 256 in flight). */
const MAX_PREFETCH = 256;


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
  dropBehind = -1;
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
  /** Free frames, CLOCK and direct reclaim, eviction and write-back. */
  readonly frames: FrameAllocator;
  /** Host reads and writes by virtual address, bulk memory ops, hints. */
  readonly host: HostAccess;
  /** memory.atomic.wait and notify by virtual address (shared memory). */
  readonly atomics: AtomicWaits;
  private readonly phys: PhysicalMemory;
  private readonly io: PageIo;
  /** True when a reclaimer worker shares the frame table. */
  private threaded = false;
  private readonly prefetch: PrefetchPolicy | null;
  private readonly onFault: PagerOptions['onFault'];
  private readonly pageSize: number;
  private readonly maximumPages: number;
  /** Whether the pool carries a reserve, and never-stored pages are zero-filled without I/O. */
  private readonly reserve: boolean;
  private readonly growsWithMemory: boolean;
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
   * of instance.ts). Outside guest code a host access leaves the thread QUIESCENT (host-access.ts).
   */
  inGuest = false;
  tracksGuest = false;

  /** A straddling store waiting in the bounce buffer: flushed at the next host entry. */
  private pendingAddr = -1;
  private pendingBytes = 0;
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
    this.growsWithMemory = 'fraction' in options.budget;
    this.maximumPages = options.maximumPages;
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
    this.frames = new FrameAllocator({
      layout, table, phys, io, counters: this.counters, guests: this.guests, control: this.control, thread: this.thread,
      sharedMemory: this.sharedMemory, budget: options.budget, reserve: this.reserve,
    });
    this.host = new HostAccess(this, phys, this.frames, this.prefetch, this.sharedMemory);
    this.atomics = new AtomicWaits(this, phys, this.control);
    if (attach) {
      this.knownFrames = table.frames;
      return;
    }
    this.guests.register(0, 0);
    this.control[kVirtualPages] = options.initialPages;
    this.knownFrames = this.frames.growPool(options.initialPages);
  }

  /** From now on a reclaimer worker shares the frame table: take the lock, acknowledge generations. */
  enableReclaimer(): void {
    this.threaded = true;
    this.frames.enableReclaimer();
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
      // A call for a page already mapped for this access (a shared-check member whose group was
      // dropped by another access's fault) is served as nothing (ensureLocked only translates it):
      // no clock reads for it even with latency on. Threaded guests keep the timed path, since
      // another thread may evict the page between this test and the lock.
      if (this.latency === null || (!this.threaded && this.mappedFor(page, write))) return (this.frameAddress(this.ensure(page, write)) + within) | 0;
      return this.timedFault(page, write, within);
    }
    // Straddles two pages: serve it from the bounce buffer, keeping the address's alignment.
    this.counters.straddles++;
    const bounce = this.bounce + (ea & 15);
    // Load the current bytes first: a store usually overwrites them all, but a misaligned atomic
    // store traps before writing, and the later flush must then write back what was there.
    this.host.readVirtual(ea, this.phys.bytes, bounce, size);
    if (write) {
      // The guest stores into the bounce buffer next; both pages are unmapped so any access to
      // them enters the host, which first copies the bounce buffer back (flushBounce). Shared
      // memory flushes right after the store instead (another thread may touch the pages first).
      if (!this.sharedMemory) {
        this.table.unmap(page);
        this.table.unmap(page + 1);
      }
      this.pendingAddr = ea;
      this.pendingBytes = size;
    }
    return bounce;
  }

  /** The page is mapped for a read (and for a write when `write`): ensure() only translates it. */
  private mappedFor(page: number, write: boolean): boolean {
    return this.readTable[page] !== 0 && (!write || this.writeTable[page] !== 0);
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
    this.frames.lock();
    let old: number;
    let pages: number;
    try {
      old = this.control[kVirtualPages]!;
      pages = old + delta;
      if (pages > this.maximumPages) return -1;
      Atomics.store(this.control, kVirtualPages, pages);
    } finally {
      this.frames.unlock();
    }
    if (this.growsWithMemory) this.knownFrames = this.frames.growPool(pages);
    return old;
  }

  /** Called on every host entry that may look at guest memory (and by `farmem.flush` with shared memory). */
  flushBounce(): void {
    const addr = this.pendingAddr;
    if (addr < 0) return;
    this.pendingAddr = -1;
    this.host.writeVirtual(addr, this.phys.bytes, this.bounce + (addr & 15), this.pendingBytes);
  }

  /** Writes every dirty resident page back to the store (e.g. before handing the store to another runtime). */
  writeBackAll(): void {
    if (this.pendingAddr >= 0) this.flushBounce();
    this.frames.writeBackDirty();
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

  /** Makes `page` resident and mapped for reading (and writing); returns its frame. */
  /** Also the page walk of host-access.ts. */
  ensure(page: number, write: boolean): number {
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

  /**
   * Hands the prefetches and write-backs submitted so far to the store's thread: one doorbell for a
   * prefetch window and the drop-behind evictions before it. A direct reclaim's write-back is rung by
   * the demand read after it (or by the next ring or wait: nothing waits on it before then).
   */
  handOver(): void {
    this.io.flush?.();
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
  ensureLocked(page: number, write: boolean): number {
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
            this.waitUnlocked(ticket, (flags & PREFETCHED) !== 0);
            if (this.frameOfPage[page] !== frame + 1) continue;
          }
          this.frameFlags[frame]! &= ~IN_FLIGHT;
        }
        if (!this.mappedFor(page, write)) {
          this.counters.minorFaults++;
          if (this.frameFlags[frame]! & PREFETCHED) {
            this.counters.prefetchHits++;
            this.frameFlags[frame]! &= ~PREFETCHED;
            this.noteFault(page, FaultKind.PrefetchHit);
            if (this.prefetch !== null) this.runPrefetch(page, true, frame, late);
          } else {
            this.noteFault(page, this.readTable[page] !== 0 ? FaultKind.WriteMinor : FaultKind.Minor);
          }
        }
      } else {
        frame = this.frames.takeFrame();
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

  /** Reads `p` into a free frame, unmapped: its first touch is a minor fault counted as a prefetch hit. */
  startPrefetch(p: number): void {
    const frame = this.frames.takeFrame();
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
   * frame being read is PINNED (and unmapped), so nothing else touches it. `stream`: a late prefetch
   * (PageIo.wait).
   */
  private waitUnlocked(ticket: number, stream = false): void {
    if (!this.threaded) return this.io.wait(ticket, stream);
    this.table.unlock();
    try {
      this.io.wait(ticket, stream);
    } finally {
      this.table.lock();
    }
  }

  /**
   * Drop-behind (the policy's `FaultInfo.dropBehind`): evicts `page` now, when it is resident and
   * evictable and the pool is short of free frames (below the reclaimer's high watermark, or an
   * eighth of the pool without a reclaimer), so the frame the stream needs next comes from behind it
   * instead of CLOCK's victim, which on a loop larger than local memory is a page the next pass
   * needs. Never with other guest threads running (one may hold a translation to it), never the
   * page being faulted in, a pinned or in-flight one, or one the reclaimer is evicting.
   */
  private dropBehind(page: number, pinned: number): void {
    const frame = page < this.frameOfPage.length ? this.frameOfPage[page]! - 1 : -1;
    if (frame < 0 || frame === pinned) return;
    const flags = this.frameFlags[frame]!;
    if (flags & (PINNED | IN_FLIGHT | EVICTING)) return;
    const below = this.threaded ? this.table.control[kHighWater]! : this.table.frames >>> 3;
    if (this.table.freeCount >= below) return;
    if (this.sharedMemory && this.guests.running() > 1) return;
    this.counters.dropBehinds++;
    this.frames.evict(frame, page, flags, 'drop-behind');
  }

  private runPrefetch(page: number, hit: boolean, pinned: number, late: boolean): void {
    const info = this.faultInfo;
    info.page = page;
    info.prefetchHit = hit;
    info.late = late;
    info.frames = this.table.frames;
    const numPages = Math.ceil(this.virtualBytes / this.pageSize);
    info.numPages = numPages;
    info.dropBehind = -1;
    const count = this.prefetch!.onFault(info, this.prefetchOut);
    if (info.dropBehind >= 0) this.dropBehind(info.dropBehind, pinned);
    if (count === 0) return this.handOver();
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
    this.handOver();
    if (prefetchChannel.hasSubscribers) publishPrefetch(page, hit, this.prefetchOut, count, issued);
  }
}

