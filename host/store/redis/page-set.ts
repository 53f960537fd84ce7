/**
 * @fileoverview A growable bit set of page numbers: the pages a Redis store has written and not
 * freed. It lets a read of a never-written page return zeros without a round trip, turns a missing
 * key of a written page into an error instead of a silent zero page, and lists the keys to delete
 * at close without scanning the server.
 *
 *   words Uint32Array   bit (page & 31) of words[page >>> 5] ⇔ page written
 *
 * Grows by doubling; at most 2^32 / 256 pages (16 Mi bits = 2 MiB) for a full 32-bit guest at the
 * smallest page size.
 */
import { grownToHold } from '../grow.js';

export class PageSet {
  private words = new Uint32Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(page: number): boolean {
    const w = page >>> 5;
    return w < this.words.length && (this.words[w]! & (1 << (page & 31))) !== 0;
  }

  add(page: number): void {
    const w = page >>> 5;
    if (w >= this.words.length) this.words = grownToHold(this.words, w);
    const bit = 1 << (page & 31);
    if ((this.words[w]! & bit) === 0) {
      this.words[w] |= bit;
      this.count++;
    }
  }

  delete(page: number): void {
    const w = page >>> 5;
    if (w >= this.words.length) return;
    const bit = 1 << (page & 31);
    if ((this.words[w]! & bit) !== 0) {
      this.words[w] &= ~bit;
      this.count--;
    }
  }

  /** Calls `fn` for every page in ascending order. */
  forEach(fn: (page: number) => void): void {
    const words = this.words;
    for (let w = 0; w < words.length; w++) {
      let bits = words[w]!;
      while (bits !== 0) {
        const low = 31 - Math.clz32(bits & -bits);
        fn(w * 32 + low);
        bits &= bits - 1;
      }
    }
  }
}
