/**
 * @fileoverview The embedded page store in SharedArrayBuffers, so every guest thread (and the
 * reclaimer) of a shared-memory module reads and writes evicted pages in-process, synchronously,
 * from its own worker. Callers serialise access with the frame-table lock (every pager and
 * reclaimer call happens under it), so the store has no lock of its own.
 *
 *   control Int32[4]          kSlots (slots ever used) | kFreeTop
 *   index   Int32[numPages]   page → slot + 1 (0 = never written: reads as zeros)
 *   free    Int32[numPages]   stack of released slots, top at control[kFreeTop]
 *   data    growable SAB      slot s at s × pageSize; grown by doubling up to numPages × pageSize
 *
 * The index is sized for the module's maximum memory; its untouched pages cost no memory.
 */
import { InProcessStore } from './page-store.js';

// Slots of the shared control array (a table of offsets, like other shared layouts' constants).
const kSlots = 0;
const kFreeTop = 1;
/** Initial data capacity in pages. */
const INITIAL_SLOTS = 64;

export interface SharedStoreBuffers {
  readonly control: SharedArrayBuffer;
  readonly index: SharedArrayBuffer;
  readonly free: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  readonly pageSize: number;
}

export class SharedEmbeddedStore extends InProcessStore {
  readonly name = 'embedded';
  readonly pageSize: number;
  private readonly control: Int32Array;
  private readonly index: Int32Array;
  private readonly freeSlots: Int32Array;
  private readonly data: SharedArrayBuffer;
  /** View over `data`, re-derived when another thread grew it. */
  private bytes: Uint8Array;

  constructor(readonly buffers: SharedStoreBuffers) {
    super();
    this.pageSize = buffers.pageSize;
    this.control = new Int32Array(buffers.control);
    this.index = new Int32Array(buffers.index);
    this.freeSlots = new Int32Array(buffers.free);
    this.data = buffers.data;
    this.bytes = new Uint8Array(this.data);
  }

  /** A new, empty store for `numPages` virtual pages of `pageSize` bytes. */
  static create(pageSize: number, numPages: number): SharedEmbeddedStore {
    const max = numPages * pageSize;
    return new SharedEmbeddedStore({
      control: new SharedArrayBuffer(16),
      index: new SharedArrayBuffer(numPages * 4),
      free: new SharedArrayBuffer(numPages * 4),
      data: new SharedArrayBuffer(Math.min(max, INITIAL_SLOTS * pageSize), { maxByteLength: max }),
      pageSize,
    });
  }

  get bytesStored(): number {
    return (this.control[kSlots]! - this.control[kFreeTop]!) * this.pageSize;
  }

  readSync(page: number, into: Uint8Array, at: number): void {
    const slot = this.index[page]! - 1;
    if (slot < 0) {
      into.fill(0, at, at + this.pageSize);
      return;
    }
    const offset = slot * this.pageSize;
    into.set(this.view(offset).subarray(offset, offset + this.pageSize), at);
  }

  writeSync(page: number, data: Uint8Array, at: number): void {
    let slot = this.index[page]! - 1;
    if (slot < 0) {
      slot = this.allocSlot();
      this.index[page] = slot + 1;
    }
    const offset = slot * this.pageSize;
    this.view(offset).set(data.subarray(at, at + this.pageSize), offset);
  }

  freeSync(page: number): void {
    const slot = this.index[page]! - 1;
    if (slot < 0) return;
    this.index[page] = 0;
    this.freeSlots[this.control[kFreeTop]!++] = slot;
  }

  async close(): Promise<void> {}

  /** The data view, covering the slot at byte `offset`. */
  private view(offset: number): Uint8Array {
    if (offset + this.pageSize > this.bytes.length) this.bytes = new Uint8Array(this.data);
    return this.bytes;
  }

  private allocSlot(): number {
    const c = this.control;
    if (c[kFreeTop]! > 0) return this.freeSlots[--c[kFreeTop]!]!;
    const slot = c[kSlots]!++;
    const need = (slot + 1) * this.pageSize;
    if (need > this.data.byteLength) this.data.grow(Math.min(this.data.maxByteLength, Math.max(need, 2 * this.data.byteLength)));
    return slot;
  }
}
