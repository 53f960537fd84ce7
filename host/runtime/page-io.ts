/**
 * @fileoverview `PageIo`: how the pager moves pages between frames and the page store. Reads are
 * started with `read()` and completed with `wait()`, so the pager can issue prefetch reads after a
 * demand read and wait only for the demand; writes hand the frame's bytes over at once (the frame is
 * reusable on return) and complete in the background.
 *
 * Two implementations: `StoreIo` calls a synchronous store on the guest thread (embedded mode: every
 * ticket has landed on return), and `ChannelIo` (io-channel.ts) talks to the I/O worker.
 */
import type { SyncPageStore } from '../store/page-store.js';
import type { PhysicalMemory } from './physical-memory.js';

export interface PageIo {
  /**
   * Starts reading `page` into physical memory at byte `offset`; returns a ticket (0 = landed). A
   * `prefetch` read may be sent after demand reads submitted with it, so it never delays them.
   */
  read(page: number, offset: number, prefetch?: boolean): number;
  /** Takes the page's bytes at physical `offset` for write-back; the frame may be reused on return. */
  write(page: number, offset: number): void;
  /**
   * Blocks until the read with `ticket` has landed; throws StoreError if it failed. `stream`: the
   * read is a prefetch touched before it landed (a stream outran its window), so the thread parks
   * rather than spin (see ChannelIo.wait).
   */
  wait(ticket: number, stream?: boolean): void;
  /** Has the read with `ticket` landed? Never blocks. */
  landed(ticket: number): boolean;
  /**
   * Hands the prefetches and write-backs submitted so far to the store's thread (a channel defers
   * them to ring its doorbell once per burst); waiting on any request flushes too.
   */
  flush?(): void;
  /**
   * Blocks until the next `read` or `write` can be handed over without waiting (a channel's ring
   * has a free slot): a caller that holds a lock around its write waits here, before taking it.
   */
  awaitRoom?(): void;
  /** Blocks until every write handed over so far is durable in the store. */
  drain(): void;
  close(): Promise<void>;
}

/** Synchronous I/O against an in-process store (embedded mode). */
export class StoreIo implements PageIo {
  constructor(
    private readonly store: SyncPageStore,
    private readonly phys: Pick<PhysicalMemory, 'bytes'>,
  ) {}
  read(page: number, offset: number): number {
    this.store.readSync(page, this.phys.bytes, offset);
    return 0;
  }
  write(page: number, offset: number): void {
    this.store.writeSync(page, this.phys.bytes, offset);
  }
  wait(): void {}
  landed(): boolean {
    return true;
  }
  drain(): void {}
  async close(): Promise<void> {}
}
