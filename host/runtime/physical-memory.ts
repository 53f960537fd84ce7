/**
 * @fileoverview Physical memory: the shared `WebAssembly.Memory` holding the control block, page
 * tables and frame pool (layout.ts), plus a byte view that is re-derived whenever it grows. The pager
 * and the page I/O both read `bytes` through this object, never a view cached across a grow.
 */
import { physicalWasmPages, WASM_PAGE, type Layout } from '../layout.js';

export class PhysicalMemory {
  readonly memory: WebAssembly.Memory;
  bytes: Uint8Array;

  constructor(
    readonly layout: Layout,
    initialFrames: number,
    readonly maxFrames: number,
    /** Another guest thread's physical memory, to attach to instead of allocating. */
    existing?: WebAssembly.Memory,
  ) {
    this.memory = existing ?? new WebAssembly.Memory({
      initial: physicalWasmPages(layout, initialFrames),
      maximum: physicalWasmPages(layout, maxFrames),
      shared: true,
    });
    this.bytes = new Uint8Array(this.memory.buffer);
  }

  /** Re-derives `bytes` if another thread grew the memory. */
  refresh(): void {
    if (this.bytes.length !== this.memory.buffer.byteLength) this.bytes = new Uint8Array(this.memory.buffer);
  }

  /** Makes room for `frames` frames. */
  ensureFrames(frames: number): void {
    const needed = physicalWasmPages(this.layout, frames);
    const have = this.memory.buffer.byteLength / WASM_PAGE;
    if (needed > have) {
      this.memory.grow(needed - have);
      this.bytes = new Uint8Array(this.memory.buffer);
    }
  }

}
