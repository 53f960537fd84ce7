/**
 * @fileoverview Starting additional guest threads of a shared-memory module: each is a worker
 * (guest-thread-worker.ts) that instantiates the same instrumented module over the same physical
 * memory, frame table, guest-thread table and store, and calls one export. Startup uses postMessage
 * and structured clone (a WebAssembly.Module, the shared Memory and SharedArrayBuffers); the fault
 * path never does. `spawn()` is synchronous, so a guest can start a thread from inside a host call
 * (WASI `thread-spawn`), on the main thread or on a guest thread (nested spawns).
 */
import { Worker } from 'node:worker_threads';
import { ThreadError } from '../errors.js';
import { MAX_GUEST_THREADS, type Layout } from '../layout.js';
import type { SharedStoreBuffers } from '../store/shared-embedded.js';
import { Counters } from '../stats/counters.js';
import type { FrameTableBuffers } from './frame-table.js';
import { GuestThreads } from './guest-threads.js';
import type { FrameBudget } from './frame-allocator.js';
import type { RemoteChannel } from './remote-io.js';
import { workerUrl } from './remote-io.js';

/** Everything a guest thread shares with the others (structured-cloneable). */
export interface SpawnContext {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly layout: Layout;
  readonly table: FrameTableBuffers;
  readonly guests: SharedArrayBuffer;
  readonly budget: FrameBudget;
  readonly maximumPages: number;
  /** The pool has a reclaimer's reserve (see PagerOptions.reclaimer). */
  readonly reclaimer: boolean;
  readonly prefetch: string | null;
  /** Where evicted pages live: the shared embedded store, or the I/O worker's guest ring. */
  readonly io: { readonly store: SharedStoreBuffers } | { readonly channel: RemoteChannel };
  /** An ES module whose default export builds each thread's imports (see ThreadImportsFactory). */
  readonly imports: { readonly url: string; readonly data: unknown } | null;
}

/** Default export of a thread-imports module: builds one guest thread's imports (may be async). */
export type ThreadImportsFactory = (context: ThreadImportsContext) => WebAssembly.Imports | Promise<WebAssembly.Imports>;

export interface ThreadImportsContext {
  /** The guest's memory by virtual address, as `fm.memory` on the main thread. */
  readonly memory: import('./virtual-memory.js').VirtualMemory | null;
  /** This thread's id (1 … MAX_GUEST_THREADS - 1; the main thread is 0). */
  readonly thread: number;
  /** `imports.data` as given to startThread (structured-cloned). */
  readonly data: unknown;
  /** Starts another guest thread from this one; returns its id (for WASI `thread-spawn`). */
  readonly spawn: (entry: string, args: readonly (number | bigint)[], withThreadId: boolean) => number;
}

export interface GuestThreadData extends SpawnContext {
  readonly thread: number;
  readonly entry: string;
  readonly args: readonly (number | bigint)[];
}

/** What a guest-thread worker posts when its export returned or threw. */
export type GuestThreadReport =
  | { readonly type: 'done'; readonly result: unknown; readonly counters: Partial<Counters> }
  | { readonly type: 'error'; readonly name: string; readonly message: string; readonly code?: string; readonly counters: Partial<Counters> };

export interface GuestThread {
  /** Thread id: 1 … MAX_GUEST_THREADS - 1. */
  readonly id: number;
  /** The export's result; rejects with a ThreadError (FM_ERR_THREAD_FAILED) if it trapped or threw. */
  readonly result: Promise<unknown>;
}

export class GuestSpawner {
  /** Counters of every thread that ended (the main thread's are the pager's own). */
  readonly counters = new Counters();
  private readonly workers = new Set<Worker>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly guests: GuestThreads;

  constructor(private readonly context: SpawnContext) {
    this.guests = new GuestThreads(context.guests);
  }

  /** Starts a thread calling `entry(...args)` (with its id first when `withThreadId`). */
  spawn(entry: string, args: readonly (number | bigint)[], withThreadId: boolean, imports = this.context.imports): GuestThread {
    // The new thread acknowledges generation 0 until it first faults: conservative, it holds nothing yet.
    const thread = this.guests.claim(0);
    if (thread < 0) throw new ThreadError('FM_ERR_THREADS', `cannot start another guest thread: all ${MAX_GUEST_THREADS - 1} are running`);
    const data: GuestThreadData = { ...this.context, imports, thread, entry, args: withThreadId ? [thread, ...args] : args };
    let worker: Worker;
    try {
      worker = new Worker(workerUrl('guest-thread-worker'), { workerData: data });
    } catch (err) {
      this.guests.release(thread);
      throw err;
    }
    this.workers.add(worker);
    const result = new Promise<unknown>((resolve, reject) => {
      let settled = false;
      worker.once('message', (report: GuestThreadReport) => {
        settled = true;
        this.counters.add(report.counters);
        if (report.type === 'done') resolve(report.result);
        else reject(threadFailed(thread, report));
      });
      worker.once('error', (err) => {
        if (settled) return;
        settled = true;
        reject(new ThreadError('FM_ERR_THREAD_FAILED', `guest thread ${thread} failed: ${err.message}`, { cause: err }));
      });
      worker.once('exit', (code) => {
        this.workers.delete(worker);
        // Only the spawner frees the slot (a worker freeing its own could race with a new claim);
        // until then the finished thread is QUIESCENT and holds up no reclaim.
        this.guests.release(thread);
        for (const wake of this.idleWaiters.splice(0)) wake();
        if (!settled) reject(new ThreadError('FM_ERR_THREAD_FAILED', `guest thread ${thread} exited (code ${code}) before its export returned`));
      });
    });
    result.catch(() => {}); // the caller may not await every thread; a failure still reaches it if it does
    return { id: thread, result };
  }

  /** Threads still running. */
  get running(): number {
    return this.workers.size;
  }

  /** Resolves when every thread this spawner started has exited. */
  async idle(): Promise<void> {
    while (this.workers.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Ends every thread still running (close() of the instance). */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.terminate()));
  }
}

function threadFailed(thread: number, report: Extract<GuestThreadReport, { type: 'error' }>): ThreadError {
  const cause = report.name === 'RuntimeError' ? new WebAssembly.RuntimeError(report.message) : Object.assign(new Error(report.message), { name: report.name, code: report.code });
  return new ThreadError('FM_ERR_THREAD_FAILED', `guest thread ${thread}: ${report.name}: ${report.message}`, { cause });
}
