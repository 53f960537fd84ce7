/**
 * @fileoverview The memory server's storage: a slab arena of page slots, allocated lazily, and the
 * per-namespace page → slot index. One `SlotPool` per page size; every pool draws on one byte
 * budget (`capacityBytes`) that counts stored pages, so a full server is detected before anything
 * of a request is written.
 *
 *   SlotPool (pageSize P, headroom H, slotsPerSlab = slabBytes / P = 2^k, stride = H + P)
 *
 *   slot s ──▶ slabs[s >>> k]  at byte (s & (2^k - 1)) · stride + H
 *   ┌──────────────── slab 0 ────────────────┐┌──────────── slab 1 ──────────┐┌─ slab 2 (not yet allocated)
 *   │ H │ slot 0 │ H │ slot 1 │ ... │ H │ 2^k-1 ││ H │ 2^k │ ...                ││
 *   └───┴────────┴───┴────────┴─────┴───┴──────┘└───┴─────┴──────────────────┘└─
 *   free slots: a Uint32Array stack (grown by doubling); `fresh` = first never-used slot.
 *
 * Slabs are allocated on demand and kept for reuse (not returned to the OS), so `slabBytes` may
 * exceed `usedBytes` by what was freed plus at most one partly used slab per pool.
 *
 * **Replies straight from a slot (pinning).** A pool with headroom H > 0 (the server gives 64 bytes,
 * which keeps pages cache-line aligned, to page sizes whose replies are sent alone: connection.ts)
 * can lend a slot as a reply: the caller writes the reply header into the last bytes of the room
 * before the page and hands `view(slot, headerBytes)` to the socket, with no copy. Until the socket has written it (`unpin`), the slot is PINNED:
 *
 *   state   READ (pinReply)      WRITE of its page            FREE of its page      unpin (sent)
 *   IDLE    → PINNED             in place                     → free stack          —
 *   PINNED  refused (copy path)  copy-on-write: the page gets → RETIRED             → IDLE
 *                                a new slot; old → RETIRED
 *   RETIRED not indexed          —                            —                     → free stack
 *
 * So the bytes of a reply never change after the READ was answered (a later WRITE lands in another
 * slot), and a slot is never handed to another page — of this or any namespace — while a reply
 * still shows it. One reply per slot at a time (its header room is single), so a second READ of a
 * pinned page is copied. Pinned slots are bounded by the send budget (each pinned reply is charged
 * to it until written), so copy-on-write adds at most that much slab memory.
 *
 * **Landing slots.** A WRITE still arriving takes slots no page owns yet (`land`, IDLE, counted
 * against the capacity as `landingBytes`); its pages move to them when it is handled
 * (`commitLanded`), or they go back (`dropLanded`).
 */

/** Slot states (`SlotPool` overview). */
const IDLE = 0;
const PINNED = 1;
const RETIRED = 2;

export class SlotPool {
  readonly pageSize: number;
  readonly slotsPerSlab: number;
  /** Bytes before every page for a reply header (0: replies are always copied). */
  readonly headroom: number;
  readonly #stride: number;
  readonly #shift: number;
  readonly #mask: number;
  /** Buffers, so a reply view needs no wrapping before a socket takes it. */
  readonly #slabs: Buffer[] = [];
  #free = new Uint32Array(1024);
  #freeTop = 0;
  /** First slot never handed out; slots ≥ fresh in the last slab are unused. */
  #fresh = 0;
  /** IDLE / PINNED / RETIRED per slot (overview), sized with the slabs. */
  #state = new Uint8Array(0);
  #pinned = 0;
  #copiesOnWrite = 0;

  constructor(pageSize: number, slabBytes: number, headroom = 0) {
    this.pageSize = pageSize;
    this.headroom = headroom;
    this.#stride = headroom + pageSize;
    this.slotsPerSlab = slabBytes / pageSize;
    this.#shift = Math.log2(this.slotsPerSlab);
    this.#mask = this.slotsPerSlab - 1;
  }

  /** Bytes of slab memory allocated by this pool. */
  get slabBytes(): number {
    return this.#slabs.length * this.slotsPerSlab * this.#stride;
  }

  /** Slots available without allocating a slab. */
  get available(): number {
    return this.#freeTop + (this.#slabs.length * this.slotsPerSlab - this.#fresh);
  }

  /** Slots lent to replies not yet written (PINNED or RETIRED). */
  get pinned(): number {
    return this.#pinned;
  }

  /** WRITEs of a pinned page that went to a new slot. */
  get copiesOnWrite(): number {
    return this.#copiesOnWrite;
  }

  /**
   * Allocates slabs until `n` slots are available. Called before a WRITE changes anything, so an
   * allocation failure (the process itself out of memory) leaves the store unchanged.
   */
  reserve(n: number): void {
    while (this.available < n) {
      this.#slabs.push(Buffer.alloc(this.slotsPerSlab * this.#stride));
      const state = new Uint8Array(this.#slabs.length * this.slotsPerSlab);
      state.set(this.#state);
      this.#state = state;
    }
  }

  /** Takes a slot; `reserve` must have made one available. */
  alloc(): number {
    if (this.#freeTop > 0) return this.#free[--this.#freeTop]!;
    if (this.#fresh >= this.#slabs.length * this.slotsPerSlab) this.reserve(1);
    return this.#fresh++;
  }

  /** Gives the slot back; a pinned one only once its reply was written (`unpin`). */
  release(slot: number): void {
    if (this.#state[slot] !== IDLE) {
      this.#state[slot] = RETIRED;
      return;
    }
    if (this.#freeTop === this.#free.length) {
      const grown = new Uint32Array(this.#free.length * 2);
      grown.set(this.#free);
      this.#free = grown;
    }
    this.#free[this.#freeTop++] = slot;
  }

  /** Whether a WRITE of the slot's page must go to a new slot (`replace`). */
  isPinned(slot: number): boolean {
    return this.#state[slot] !== IDLE;
  }

  /** The page left `slot` for a slot it landed in (`SlabArena.commitLanded`): `slot` goes back, counted as a copy-on-write if a reply still shows it. */
  vacate(slot: number): void {
    if (this.#state[slot] !== IDLE) this.#copiesOnWrite++;
    this.release(slot);
  }

  /** The page moves to a new slot (copy-on-write of a pinned one); returns it. `reserve` first. */
  replace(slot: number): number {
    const fresh = this.alloc();
    this.release(slot);
    this.#copiesOnWrite++;
    return fresh;
  }

  /**
   * Lends an idle slot to one reply: true if it was idle (it is PINNED now; write the header into
   * `view(slot)`'s first `headroom` bytes), false if it already shows a reply or has no headroom.
   */
  pin(slot: number): boolean {
    if (this.headroom === 0 || this.#state[slot] !== IDLE) return false;
    this.#state[slot] = PINNED;
    this.#pinned++;
    return true;
  }

  /** The reply has been written (or dropped with its socket): the slot is IDLE again, or freed if RETIRED. */
  unpin(slot: number): void {
    const retired = this.#state[slot] === RETIRED;
    this.#state[slot] = IDLE;
    this.#pinned--;
    if (retired) this.release(slot);
  }

  /** The slot's page and the `before` bytes of header room right in front of it (no copy). */
  view(slot: number, before: number): Buffer {
    const at = (slot & this.#mask) * this.#stride + this.headroom;
    return this.#slabs[slot >>> this.#shift]!.subarray(at - before, at + this.pageSize);
  }

  /** Copies `src[srcOffset .. +pageSize)` into the slot. */
  store(slot: number, src: Uint8Array, srcOffset: number): void {
    const at = (slot & this.#mask) * this.#stride + this.headroom;
    this.#slabs[slot >>> this.#shift]!.set(src.subarray(srcOffset, srcOffset + this.pageSize), at);
  }

  /** Copies `src` into the slot from byte `within` of its page on. */
  storeAt(slot: number, within: number, src: Uint8Array): void {
    const at = (slot & this.#mask) * this.#stride + this.headroom;
    this.#slabs[slot >>> this.#shift]!.set(src, at + within);
  }

  /** Copies the slot into `dst[dstOffset .. +pageSize)`. */
  load(slot: number, dst: Uint8Array, dstOffset: number): void {
    const at = (slot & this.#mask) * this.#stride + this.headroom;
    dst.set(this.#slabs[slot >>> this.#shift]!.subarray(at, at + this.pageSize), dstOffset);
  }
}

/** Request counters, kept per namespace and for the whole server (what STATS reports). */
export interface Counters {
  reads: number;
  writes: number;
  frees: number;
  errors: number;
  pagesRead: number;
  pagesWritten: number;
}

export function newCounters(): Counters {
  return { reads: 0, writes: 0, frees: 0, errors: 0, pagesRead: 0, pagesWritten: 0 };
}

/** A namespace's pages: page number → slot in the pool of its page size. */
export class Namespace {
  readonly name: string;
  readonly pageSize: number;
  readonly pool: SlotPool;
  readonly index = new Map<number, number>();
  /** This namespace's share of the server's counters (a non-admin STATS sees only these). */
  readonly counters: Counters = newCounters();
  /** Open connections bound to this namespace; an empty namespace with none is dropped. */
  connections = 0;

  constructor(name: string, pool: SlotPool) {
    this.name = name;
    this.pageSize = pool.pageSize;
    this.pool = pool;
  }

  get pages(): number {
    return this.index.size;
  }
}

/**
 * Page slots for every page size, under one byte budget. (Bounded pools here, in budget.ts and in
 * reply-pool.ts share a shape, two limits fixed at construction and usage behind a getter; what
 * they bound and how differs, so they stay separate.)
 */
export class SlabArena {
  readonly capacityBytes: number;
  readonly slabBytes: number;
  readonly #pools = new Map<number, SlotPool>();
  #usedBytes = 0;
  /** Slots taken by WRITEs still arriving (`land`), not yet any page's: counted against the capacity too. */
  #landingBytes = 0;
  /** Pages stored by landed WRITEs so far (`commitLanded`). */
  #landedPages = 0;
  /** Header room each page size's slots get (SlotPool overview): the server's choice, not the arena's. */
  readonly #headroom: (pageSize: number) => number;

  constructor(capacityBytes: number, slabBytes: number, headroom: (pageSize: number) => number = () => 0) {
    this.capacityBytes = capacityBytes;
    this.slabBytes = slabBytes;
    this.#headroom = headroom;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get landingBytes(): number {
    return this.#landingBytes;
  }

  get landedPages(): number {
    return this.#landedPages;
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.slabBytes;
    return n;
  }

  pool(pageSize: number): SlotPool {
    let p = this.#pools.get(pageSize);
    if (!p) {
      p = new SlotPool(pageSize, Math.max(this.slabBytes, pageSize), this.#headroom(pageSize));
      this.#pools.set(pageSize, p);
    }
    return p;
  }

  /** Whether `pages` more pages of `pageSize` bytes fit in the budget. */
  fits(pages: number, pageSize: number): boolean {
    return this.#usedBytes + this.#landingBytes + pages * pageSize <= this.capacityBytes;
  }

  /**
   * Stores `count` pages into `ns` (page `pages[i]` ← `data[i·P .. +P)`), all or nothing: returns
   * false, changing nothing, when the new pages do not fit in the budget. A page whose slot is
   * pinned by an unsent reply moves to a new slot (copy-on-write), so that reply keeps its bytes.
   */
  write(ns: Namespace, pages: Uint32Array, data: Uint8Array): boolean {
    const P = ns.pageSize;
    const index = ns.index;
    const pool = ns.pool;
    const count = pages.length;
    let fresh = 0;
    let moved = 0;
    for (let i = 0; i < count; i++) {
      const slot = index.get(pages[i]!);
      if (slot === undefined) fresh++;
      else if (pool.isPinned(slot)) moved++;
    }
    if (!this.#freshFit(ns, pages, fresh)) return false;
    pool.reserve(fresh + moved);
    for (let i = 0; i < count; i++) {
      const page = pages[i]!;
      let slot = index.get(page);
      if (slot === undefined) {
        slot = pool.alloc();
        index.set(page, slot);
        this.#usedBytes += P;
      } else if (pool.isPinned(slot)) {
        slot = pool.replace(slot);
        index.set(page, slot);
      }
      pool.store(slot, data, i * P);
    }
    return true;
  }

  /**
   * Whether the pages of `pages` not in `ns` yet fit, `fresh` being their count with a page listed
   * twice counted twice: recounted exactly before refusing.
   */
  #freshFit(ns: Namespace, pages: Uint32Array, fresh: number): boolean {
    if (this.fits(fresh, ns.pageSize)) return true;
    const distinct = new Set<number>();
    for (let i = 0; i < pages.length; i++) if (!ns.index.has(pages[i]!)) distinct.add(pages[i]!);
    return this.fits(distinct.size, ns.pageSize);
  }

  /**
   * Slots for the `count` pages of a WRITE still arriving, its data copied into them as it comes
   * (connection.ts, "WRITEs that land in their slots"): no page's yet, so nothing reads them, and
   * counted against the capacity until `commitLanded` or `dropLanded`. Null when they do not fit
   * (the WRITE is then gathered and answered as usual).
   */
  land(ns: Namespace, count: number): Uint32Array | null {
    if (!this.fits(count, ns.pageSize)) return null;
    const slots = new Uint32Array(count);
    ns.pool.reserve(count);
    for (let i = 0; i < count; i++) slots[i] = ns.pool.alloc();
    this.#landingBytes += count * ns.pageSize;
    return slots;
  }

  /**
   * The landed WRITE is whole and its turn came: page `pages[i]` now lives in `slots[i]`, all or
   * nothing as in `write` (false, the slots given back, when its new pages do not fit). The page's
   * old slot is given back (a pinned one once its reply was written).
   */
  commitLanded(ns: Namespace, pages: Uint32Array, slots: Uint32Array): boolean {
    const P = ns.pageSize;
    this.#landingBytes -= slots.length * P;
    const index = ns.index;
    let fresh = 0;
    for (let i = 0; i < pages.length; i++) if (!index.has(pages[i]!)) fresh++;
    if (!this.#freshFit(ns, pages, fresh)) {
      releaseAll(ns.pool, slots);
      return false;
    }
    for (let i = 0; i < pages.length; i++) {
      const old = index.get(pages[i]!);
      if (old === undefined) this.#usedBytes += P;
      else ns.pool.vacate(old);
      index.set(pages[i]!, slots[i]!);
    }
    this.#landedPages += pages.length;
    return true;
  }

  /** The landing WRITE will not be stored (its connection closed, or it failed): its slots go back. */
  dropLanded(ns: Namespace, slots: Uint32Array): void {
    this.#landingBytes -= slots.length * ns.pageSize;
    releaseAll(ns.pool, slots);
  }

  /**
   * Pins the slot of `page` for a reply sent straight from it (`SlotPool.pin`): its slot, or -1
   * when the page was never written, its pool has no header room, or a reply already shows it.
   */
  pinReply(ns: Namespace, page: number): number {
    const slot = ns.index.get(page);
    return slot !== undefined && ns.pool.pin(slot) ? slot : -1;
  }

  /** Copies `page` to `out[at .. at + P)` (zeros if never written): a reply built in place. */
  readPage(ns: Namespace, page: number, out: Uint8Array, at: number): void {
    const slot = ns.index.get(page);
    if (slot === undefined) out.fill(0, at, at + ns.pageSize);
    else ns.pool.load(slot, out, at);
  }

  free(ns: Namespace, pages: Uint32Array): void {
    for (let i = 0; i < pages.length; i++) {
      const slot = ns.index.get(pages[i]!);
      if (slot === undefined) continue;
      ns.index.delete(pages[i]!);
      ns.pool.release(slot); // a pinned slot is freed once its reply was written
      this.#usedBytes -= ns.pageSize;
    }
  }
}

/** Gives every slot of `slots` back to `pool` (a landing WRITE's that will not be stored). */
function releaseAll(pool: SlotPool, slots: Uint32Array): void {
  for (let i = 0; i < slots.length; i++) pool.release(slots[i]!);
}
