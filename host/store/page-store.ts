/**
 * @fileoverview The `PageStore` interface: where evicted pages live. Backends: the embedded
 * in-process store (default), remote farmem memory servers, Redis. The runtime only talks to this
 * interface. Page numbers are virtual page indices (`vaddr >>> pageShift`), unique per namespace.
 *
 * Semantics every backend keeps:
 * - A page never written reads as zeros (demand-zero).
 * - `write` is durable for the store once its promise resolves; a store that cannot keep a page
 *   (full, server gone without another copy) rejects with a `StoreError` and never drops data silently.
 * - Calls may be issued concurrently (pipelined); a read issued after a write of the same page,
 *   once that write resolved, sees the written data.
 */

export interface PageStore {
  /** Short name for stats and errors: `embedded`, `ws://host:port`, `redis://...`. */
  readonly name: string;
  readonly pageSize: number;
  /** Reads `pages[i]` into `into[i]` (each exactly `pageSize` bytes). */
  read(pages: ArrayLike<number>, into: readonly Uint8Array[]): Promise<void>;
  /**
   * Writes `data[i]` (each exactly `pageSize` bytes) as the new content of `pages[i]`. The caller
   * keeps `data` unchanged until the promise settles: a remote store sends the pages from where they lie.
   */
  write(pages: ArrayLike<number>, data: readonly Uint8Array[]): Promise<void>;
  /**
   * Optional fast form of a one-page `read` for the I/O worker's fault path: reads `page` into
   * `into[at .. at + pageSize)` and calls `done` with null or the error (possibly before returning),
   * without a promise or per-call arrays. Same semantics as `read([page], [that range])`.
   */
  readPage?(page: number, into: Uint8Array, at: number, done: (err: Error | null) => void): void;
  /** Forgets pages; they read as zeros afterwards. */
  free(pages: ArrayLike<number>): Promise<void>;
  close(): Promise<void>;
}

/** A store that can also serve a page synchronously on the guest thread (embedded mode). */
export interface SyncPageStore extends PageStore {
  /** Reads a page into `into[offset .. offset + pageSize)`; no allocation. */
  readSync(page: number, into: Uint8Array, offset: number): void;
  /** Writes `data[offset .. offset + pageSize)` as the page's content. */
  writeSync(page: number, data: Uint8Array, offset: number): void;
}

/** The batch methods of PageStore for an in-process store, one page at a time through its sync methods. */
export abstract class InProcessStore implements SyncPageStore {
  abstract readonly name: string;
  abstract readonly pageSize: number;
  abstract readSync(page: number, into: Uint8Array, offset: number): void;
  abstract writeSync(page: number, data: Uint8Array, offset: number): void;
  abstract freeSync(page: number): void;
  abstract close(): Promise<void>;

  async read(pages: ArrayLike<number>, into: readonly Uint8Array[]): Promise<void> {
    for (let i = 0; i < pages.length; i++) this.readSync(pages[i]!, into[i]!, 0);
  }
  async write(pages: ArrayLike<number>, data: readonly Uint8Array[]): Promise<void> {
    for (let i = 0; i < pages.length; i++) this.writeSync(pages[i]!, data[i]!, 0);
  }
  async free(pages: ArrayLike<number>): Promise<void> {
    for (let i = 0; i < pages.length; i++) this.freeSync(pages[i]!);
  }
}
