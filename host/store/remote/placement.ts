/**
 * @fileoverview Where each slab of pages lives. A slab is `slabPages` consecutive page numbers
 * (slab = page >>> slabShift); the first write to a slab places it on `replication` distinct servers,
 * each chosen by power-of-two-choices on estimated free capacity (Infiniswap): sample two usable
 * servers at random, take the one with more free bytes. The estimate starts from each server's STATS
 * at connect and drops by a whole slab per placement, so servers fill evenly without a STATS round
 * trip per write. A slab never placed has never been written: its pages read as zeros.
 *
 *   page p ──▶ slab p >>> slabShift ──▶ [link a, link b, ...]  (r entries, r = replication)
 */
import { StoreError } from '../../errors.js';

/** What placement needs from a server link. */
export interface Placeable {
  readonly url: string;
  /** Connected now: new slabs go only to ready servers. */
  readonly ready: boolean;
  /** Connected or reconnecting: existing copies there may still be read. */
  readonly usable: boolean;
  freeBytes: number;
}

export class Placement<L extends Placeable> {
  readonly slabShift: number;
  readonly slabPages: number;
  readonly replication: number;
  readonly #links: readonly L[];
  readonly #slabBytes: number;
  readonly #random: () => number;
  readonly #slabs = new Map<number, readonly L[]>();

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
  #choose(exclude: readonly L[]): L | undefined {
    let candidates = this.#links.filter((l) => l.ready && !exclude.includes(l));
    if (candidates.length === 0) candidates = this.#links.filter((l) => l.usable && !exclude.includes(l));
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
