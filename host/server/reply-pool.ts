/**
 * @fileoverview Recycles READ_OK reply buffers. Allocating a fresh 64 KiB Buffer per reply costs
 * ~10 µs here (an ArrayBuffer, external-memory accounting, more GC), copying a page into a
 * reused one under 1 µs. A buffer comes back once ws reports it written to the socket (the send
 * callback; callbacks fire in send order), so it is never reused while the kernel may still read it.
 * Bounded: buffers above `maxBufferBytes` are not kept, and at most `maxPooledBytes` in total.
 */
/** Reply buffers to reuse (a bounded pool, shaped like SlabArena and SendBudget). */
export class ReplyPool {
  readonly maxPooledBytes: number;
  readonly maxBufferBytes: number;
  readonly #free = new Map<number, Uint8Array[]>();
  #pooledBytes = 0;

  constructor(maxPooledBytes: number, maxBufferBytes: number) {
    this.maxPooledBytes = maxPooledBytes;
    this.maxBufferBytes = maxBufferBytes;
  }

  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** A buffer of exactly `size` bytes, recycled when one is free; contents are undefined. */
  take(size: number): Uint8Array {
    const list = this.#free.get(size);
    if (list !== undefined && list.length > 0) {
      this.#pooledBytes -= size;
      return list.pop()!;
    }
    return Buffer.allocUnsafe(size);
  }

  /** Returns a buffer that is no longer referenced by the socket. */
  give(buf: Uint8Array): void {
    const size = buf.length;
    if (size > this.maxBufferBytes || this.#pooledBytes + size > this.maxPooledBytes) return;
    let list = this.#free.get(size);
    if (list === undefined) {
      list = [];
      this.#free.set(size, list);
    }
    list.push(buf);
    this.#pooledBytes += size;
  }
}
