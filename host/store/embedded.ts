/**
 * @fileoverview The embedded page store: evicted pages kept in this process, in a slab arena.
 * It is the default store, so `farmem run prog.wasm` needs no server; it also serves reads
 * synchronously on the guest thread (no I/O worker).
 *
 *   index: Int32Array  page → slot + 1 (0 = never written: reads as zeros), grown by doubling
 *   slabs: ArrayBuffer[SLAB_PAGES × pageSize] allocated on demand; slot s lives in slab s / SLAB_PAGES
 *   free:  Int32Array stack of released slots
 *
 * The synchronous calls allocate nothing once warm (they are on the fault path): a slot's page and
 * a frame of the caller's buffer are each copied through a `Uint8Array` view made the first time it
 * is needed and kept (`slotViews`, `peerViews`), since `TypedArray.set` copies whole arrays only.
 */
import { grownToHold } from './grow.js';
import { InProcessStore } from './page-store.js';

/** Pages per slab: 1 MiB slabs at 4 KiB pages, large enough to amortize allocation. */
const SLAB_BYTES = 1 << 20;

export class EmbeddedStore extends InProcessStore {
  readonly name = 'embedded';
  private index = new Int32Array(1024);
  private readonly slabs: Uint8Array[] = [];
  private readonly slabPages: number;
  private readonly slabShift: number;
  private slots = 0;
  private freeSlots = new Int32Array(64);
  private freeTop = 0;
  /** A view of each slot's page, made on its first use. */
  private slotViews: Uint8Array[] = [];
  /** The caller's buffer (physical memory) and page-sized views of it by page-aligned offset. */
  private peer: Uint8Array | null = null;
  private peerViews: Uint8Array[] = [];

  constructor(readonly pageSize: number) {
    super();
    this.slabPages = Math.max(1, SLAB_BYTES / pageSize);
    this.slabShift = Math.log2(this.slabPages);
  }

  /** Bytes of page data held. */
  get bytesStored(): number {
    return (this.slots - this.freeTop) * this.pageSize;
  }

  readSync(page: number, into: Uint8Array, at: number): void {
    const slot = page < this.index.length ? this.index[page]! - 1 : -1;
    if (slot < 0) {
      into.fill(0, at, at + this.pageSize);
      return;
    }
    into.set(this.slotView(slot), at);
  }

  writeSync(page: number, data: Uint8Array, at: number): void {
    if (page >= this.index.length) this.index = grownToHold(this.index, page);
    let slot = this.index[page]! - 1;
    if (slot < 0) {
      slot = this.allocSlot();
      this.index[page] = slot + 1;
    }
    this.slotView(slot).set(this.peerView(data, at));
  }

  freeSync(page: number): void {
    if (page >= this.index.length) return;
    const slot = this.index[page]! - 1;
    if (slot < 0) return;
    this.index[page] = 0;
    this.freeSlots = grownToHold(this.freeSlots, this.freeTop);
    this.freeSlots[this.freeTop++] = slot;
  }

  async close(): Promise<void> {
    this.slabs.length = 0;
    this.slotViews = [];
    this.peer = null;
    this.peerViews = [];
    this.index = new Int32Array(0);
  }

  private slotView(slot: number): Uint8Array {
    let view = this.slotViews[slot];
    if (view === undefined) {
      const offset = (slot & (this.slabPages - 1)) * this.pageSize;
      view = this.slabs[slot >>> this.slabShift]!.subarray(offset, offset + this.pageSize);
      this.slotViews[slot] = view;
    }
    return view;
  }

  /**
   * `buf[at .. at + pageSize)` as a view: `buf` itself when it is one page, else a kept view (frames
   * sit at `frameBase + f × pageSize`, so `at / pageSize` rounded down tells them apart).
   */
  private peerView(buf: Uint8Array, at: number): Uint8Array {
    const ps = this.pageSize;
    if (at === 0 && buf.length === ps) return buf;
    if (buf !== this.peer) {
      // Physical memory grew (a new view of it): views of the old one would still be right, but
      // are dropped so they do not keep the old buffer object alive.
      this.peer = buf;
      this.peerViews = [];
    }
    const k = Math.floor(at / ps);
    let view = this.peerViews[k];
    if (view === undefined || view.byteOffset !== buf.byteOffset + at) {
      view = buf.subarray(at, at + ps);
      this.peerViews[k] = view;
    }
    return view;
  }

  private allocSlot(): number {
    if (this.freeTop > 0) return this.freeSlots[--this.freeTop]!;
    const slot = this.slots++;
    if ((slot >>> this.slabShift) >= this.slabs.length) this.slabs.push(new Uint8Array(this.slabPages * this.pageSize));
    return slot;
  }
}
