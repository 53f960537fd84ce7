/**
 * @fileoverview The memory server's storage: a slab arena of page slots, allocated lazily, and the
 * per-namespace page → slot index. One `SlotPool` per page size; every pool draws on one byte
 * budget (`capacityBytes`) that counts stored pages, so a full server is detected before anything
 * of a request is written.
 *
 *   SlotPool (pageSize P, slabBytes S, slotsPerSlab = S / P = 2^k)
 *
 *   slot s ──▶ slabs[s >>> k]  at byte (s & (2^k - 1)) · P
 *   ┌──────────── slab 0 ────────────┐┌──────────── slab 1 ────────────┐┌─ slab 2 (not yet allocated)
 *   │ slot 0 │ slot 1 │ ... │ 2^k - 1 ││ 2^k    │ ...                   ││
 *   └────────┴────────┴─────┴─────────┘└────────┴──────────────────────┘└─
 *   free slots: a Uint32Array stack (grown by doubling); `fresh` = first never-used slot.
 *
 * Slabs are allocated on demand and kept for reuse (not returned to the OS), so `slabBytes` may
 * exceed `usedBytes` by what was freed plus at most one partly used slab per pool.
 */

export class SlotPool {
  readonly pageSize: number;
  readonly slotsPerSlab: number;
  readonly #shift: number;
  readonly #mask: number;
  readonly #slabs: Uint8Array[] = [];
  #free = new Uint32Array(1024);
  #freeTop = 0;
  /** First slot never handed out; slots ≥ fresh in the last slab are unused. */
  #fresh = 0;

  constructor(pageSize: number, slabBytes: number) {
    this.pageSize = pageSize;
    this.slotsPerSlab = slabBytes / pageSize;
    this.#shift = Math.log2(this.slotsPerSlab);
    this.#mask = this.slotsPerSlab - 1;
  }

  /** Bytes of slab memory allocated by this pool. */
  get slabBytes(): number {
    return this.#slabs.length * this.slotsPerSlab * this.pageSize;
  }

  /** Slots available without allocating a slab. */
  get available(): number {
    return this.#freeTop + (this.#slabs.length * this.slotsPerSlab - this.#fresh);
  }

  /**
   * Allocates slabs until `n` slots are available. Called before a WRITE changes anything, so an
   * allocation failure (the process itself out of memory) leaves the store unchanged.
   */
  reserve(n: number): void {
    while (this.available < n) this.#slabs.push(new Uint8Array(this.slotsPerSlab * this.pageSize));
  }

  /** Takes a slot; `reserve` must have made one available. */
  alloc(): number {
    if (this.#freeTop > 0) return this.#free[--this.#freeTop]!;
    if (this.#fresh >= this.#slabs.length * this.slotsPerSlab) this.reserve(1);
    return this.#fresh++;
  }

  release(slot: number): void {
    if (this.#freeTop === this.#free.length) {
      const grown = new Uint32Array(this.#free.length * 2);
      grown.set(this.#free);
      this.#free = grown;
    }
    this.#free[this.#freeTop++] = slot;
  }

  /** Copies `src[srcOffset .. +pageSize)` into the slot. */
  store(slot: number, src: Uint8Array, srcOffset: number): void {
    const at = (slot & this.#mask) * this.pageSize;
    this.#slabs[slot >>> this.#shift]!.set(src.subarray(srcOffset, srcOffset + this.pageSize), at);
  }

  /** Copies the slot into `dst[dstOffset .. +pageSize)`. */
  load(slot: number, dst: Uint8Array, dstOffset: number): void {
    const at = (slot & this.#mask) * this.pageSize;
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

  constructor(capacityBytes: number, slabBytes: number) {
    this.capacityBytes = capacityBytes;
    this.slabBytes = slabBytes;
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get allocatedBytes(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.slabBytes;
    return n;
  }

  pool(pageSize: number): SlotPool {
    let p = this.#pools.get(pageSize);
    if (!p) {
      p = new SlotPool(pageSize, Math.max(this.slabBytes, pageSize));
      this.#pools.set(pageSize, p);
    }
    return p;
  }

  /** Whether `pages` more pages of `pageSize` bytes fit in the budget. */
  fits(pages: number, pageSize: number): boolean {
    return this.#usedBytes + pages * pageSize <= this.capacityBytes;
  }

  /**
   * Stores `count` pages into `ns` (page `pages[i]` ← `data[i·P .. +P)`), all or nothing: returns
   * false, changing nothing, when the new pages do not fit in the budget.
   */
  write(ns: Namespace, pages: Uint32Array, data: Uint8Array): boolean {
    const P = ns.pageSize;
    const index = ns.index;
    const count = pages.length;
    let fresh = 0;
    for (let i = 0; i < count; i++) if (!index.has(pages[i]!)) fresh++;
    if (!this.fits(fresh, P)) {
      // `fresh` counts a page listed twice twice; recount exactly before refusing.
      const distinct = new Set<number>();
      for (let i = 0; i < count; i++) if (!index.has(pages[i]!)) distinct.add(pages[i]!);
      fresh = distinct.size;
      if (!this.fits(fresh, P)) return false;
    }
    ns.pool.reserve(fresh);
    for (let i = 0; i < count; i++) {
      const page = pages[i]!;
      let slot = index.get(page);
      if (slot === undefined) {
        slot = ns.pool.alloc();
        index.set(page, slot);
        this.#usedBytes += P;
      }
      ns.pool.store(slot, data, i * P);
    }
    return true;
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
      ns.pool.release(slot);
      this.#usedBytes -= ns.pageSize;
    }
  }
}
