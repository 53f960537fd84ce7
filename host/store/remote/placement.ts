/**
 * @fileoverview Where each slab of pages lives. A slab is `slabPages` consecutive page numbers
 * (slab = page >>> slabShift); the first write to a slab places it on `replication` distinct servers,
 * each chosen by power-of-two-choices on estimated free capacity (Infiniswap): sample two usable
 * servers at random, take the one with more free bytes. The estimate starts from each server's STATS
 * at connect and drops by a whole slab per placement, so servers fill evenly without a STATS round
 * trip per write. A slab never placed has never been written: its pages read as zeros.
 *
 *   page p ──▶ slab p >>> slabShift ──▶ [link a, link b, ...]  (r entries, r = replication)
 *                                   ──▶ written: bit (p & (slabPages-1)) set once p was written
 *                                   ──▶ copy in progress (re-replication): target link, pages touched since
 *
 * A lost server's copies are forgotten (`removeLink`); the slabs it held then have fewer than r
 * copies until `remote/repair.ts` copies them, from a surviving copy, onto another server
 * (`beginCopy` … `commitCopy`). While a copy runs, writes and frees of the slab also go to the target
 * and mark the page touched, so the copy never overwrites newer data with what it read before.
 */
import { StoreError } from '../../errors.js';

/** What placement needs from a server link. */
export interface Placeable {
  readonly url: string;
  /** Connected now: new slabs go only to ready servers. */
  readonly ready: boolean;
  /** Connected or reconnecting: existing copies there may still be read. */
  readonly usable: boolean;
  /** The server drains: it takes no new slabs, and the slabs it holds move elsewhere. */
  readonly draining: boolean;
  freeBytes: number;
}

/** A slab being copied onto `target`; `touched` holds pages written or freed since it began. */
export interface SlabCopy<L> {
  readonly slab: number;
  readonly target: L;
  readonly touched: Set<number>;
  failed: boolean;
}

export class Placement<L extends Placeable> {
  readonly slabShift: number;
  readonly slabPages: number;
  readonly replication: number;
  readonly #links: readonly L[];
  readonly #slabBytes: number;
  readonly #random: () => number;
  readonly #slabs = new Map<number, readonly L[]>();
  /** Per placed slab, a bitmap of its pages ever written (and not freed since). */
  readonly #written = new Map<number, Uint32Array>();
  /** Slabs being copied to a new server. */
  readonly #copies = new Map<number, SlabCopy<L>>();

  constructor(links: readonly L[], slabPages: number, pageSize: number, replication: number, random: () => number) {
    this.#links = links;
    this.slabPages = slabPages;
    this.slabShift = Math.log2(slabPages);
    this.replication = replication;
    this.#slabBytes = slabPages * pageSize;
    this.#random = random;
  }

  /** Servers holding `page`'s slab, or undefined when the slab was never written. */
  lookup(page: number): readonly L[] | undefined {
    return this.#slabs.get(page >>> this.slabShift);
  }

  /** Servers holding `page`'s slab, placing the slab first if needed. */
  place(page: number): readonly L[] {
    const slab = page >>> this.slabShift;
    let where = this.#slabs.get(slab);
    if (where) return where;
    const chosen: L[] = [];
    for (let r = 0; r < this.replication; r++) {
      const pick = this.#choose(chosen);
      if (!pick) {
        throw new StoreError('FM_ERR_SERVER_UNREACHABLE',
          `cannot place slab ${slab} on ${this.replication} servers: only ${chosen.length} of ${this.#links.length} are connected or reconnecting`);
      }
      pick.freeBytes -= this.#slabBytes;
      chosen.push(pick);
    }
    where = chosen;
    this.#slabs.set(slab, where);
    return where;
  }

  /**
   * Forgets `link`'s copy of `page`'s slab (the copy missed a write and is stale). Never removes the
   * last copy: returns false instead, and the caller reports the data as lost.
   */
  dropReplica(page: number, link: L): boolean {
    const slab = page >>> this.slabShift;
    const where = this.#slabs.get(slab);
    if (!where || !where.includes(link)) return true;
    if (where.length === 1) return false;
    this.#slabs.set(slab, where.filter((l) => l !== link));
    return true;
  }

  /** Records that `page` was written (the copy of a slab moves only its written pages). */
  markWritten(page: number): void {
    const slab = page >>> this.slabShift;
    let bits = this.#written.get(slab);
    if (!bits) {
      bits = new Uint32Array(Math.max(1, this.slabPages >>> 5));
      this.#written.set(slab, bits);
    }
    const i = page & (this.slabPages - 1);
    bits[i >>> 5]! |= 1 << (i & 31);
  }

  markFreed(page: number): void {
    const bits = this.#written.get(page >>> this.slabShift);
    if (!bits) return;
    const i = page & (this.slabPages - 1);
    bits[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** The written pages of `slab`, in order. */
  writtenPages(slab: number): number[] {
    const bits = this.#written.get(slab);
    const out: number[] = [];
    if (!bits) return out;
    const base = slab * this.slabPages;
    for (let i = 0; i < this.slabPages; i++) if ((bits[i >>> 5]! >>> (i & 31)) & 1) out.push(base + i);
    return out;
  }

  /**
   * Forgets every copy on `link` (its server is gone): each slab keeps its other copies. A slab
   * whose only copy was there keeps it listed, so reading it reports why. Returns slabs affected.
   */
  removeLink(link: L): number {
    let n = 0;
    for (const [slab, where] of this.#slabs) {
      if (!where.includes(link) || where.length === 1) continue;
      this.#slabs.set(slab, where.filter((l) => l !== link));
      n++;
    }
    for (const [slab, c] of this.#copies) {
      if (c.target !== link) continue;
      c.failed = true;
      this.#copies.delete(slab);
    }
    return n;
  }

  /** Slabs with fewer than `replication` copies. */
  underReplicated(): number {
    let n = 0;
    for (const where of this.#slabs.values()) if (where.length < this.replication) n++;
    return n;
  }

  /** A slab to copy: fewer than r copies or one on a draining server, one copy ready, no copy running. */
  nextToRepair(): number | undefined {
    for (const [slab, where] of this.#slabs) {
      if ((where.length < this.replication || where.some((l) => l.draining)) && !this.#copies.has(slab) && where.some((l) => l.ready)) return slab;
    }
    return undefined;
  }

  /** A ready server without a copy of `slab`, by power of two choices; undefined if none. */
  chooseTarget(slab: number): L | undefined {
    const where = this.#slabs.get(slab) ?? [];
    const pick = this.#choose(where, false);
    return pick;
  }

  beginCopy(slab: number, target: L): SlabCopy<L> {
    const c: SlabCopy<L> = { slab, target, touched: new Set(), failed: false };
    this.#copies.set(slab, c);
    return c;
  }

  /** The copy running for `page`'s slab, if any. */
  copyOf(page: number): SlabCopy<L> | undefined {
    return this.#copies.size === 0 ? undefined : this.#copies.get(page >>> this.slabShift);
  }

  /**
   * The copy is complete: the target holds the slab from now on. When the slab already had r copies
   * (it was copied because one is on a draining server), the target replaces that copy, which is
   * returned so the caller frees it there; otherwise the target is an extra copy and null is returned.
   */
  commitCopy(c: SlabCopy<L>): L | null {
    this.#copies.delete(c.slab);
    const where = this.#slabs.get(c.slab);
    if (!where || where.includes(c.target)) return null;
    const leaving = where.length >= this.replication ? where.find((l) => l.draining) : undefined;
    this.#slabs.set(c.slab, leaving ? where.map((l) => (l === leaving ? c.target : l)) : [...where, c.target]);
    c.target.freeBytes -= this.#slabBytes;
    return leaving ?? null;
  }

  abortCopy(c: SlabCopy<L>): void {
    if (this.#copies.get(c.slab) === c) this.#copies.delete(c.slab);
  }

  /** Copies running now (for freeing what a target already got). */
  copies(): IterableIterator<SlabCopy<L>> {
    return this.#copies.values();
  }

  /** Every placed slab, for freeing a namespace on close. */
  slabs(): IterableIterator<[number, readonly L[]]> {
    return this.#slabs.entries();
  }

  /** Slabs with a copy on `link` (for reporting what a lost server took with it). */
  slabsOn(link: L): number {
    let n = 0;
    for (const where of this.#slabs.values()) if (where.includes(link)) n++;
    return n;
  }

  /**
   * Power of two choices among ready links not yet chosen for this slab; when none is ready, among
   * links reconnecting (their requests wait for the reconnect, within the deadline), so a brief
   * outage of every server delays new slabs instead of failing them.
   */
  #choose(exclude: readonly L[], orReconnecting = true): L | undefined {
    let candidates = this.#links.filter((l) => l.ready && !l.draining && !exclude.includes(l));
    if (candidates.length === 0 && orReconnecting) candidates = this.#links.filter((l) => l.usable && !l.draining && !exclude.includes(l));
    if (candidates.length <= 1) return candidates[0];
    const n = candidates.length;
    const i = Math.floor(this.#random() * n);
    let j = Math.floor(this.#random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return b.freeBytes > a.freeBytes ? b : a;
  }
}
