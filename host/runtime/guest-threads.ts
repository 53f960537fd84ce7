/**
 * @fileoverview The guest-thread table: which guest threads share one physical memory, which
 * eviction generation each has acknowledged, and which of them sleep in `memory.atomic.wait` on
 * which virtual address. One SharedArrayBuffer, seen by every guest thread and by the reclaimer.
 *
 *   header  Int32[4]                     kWaitTicket | (unused)
 *   guest i Int32[8] at 4 + 8 i          ack | state | waitState | waitAddr | waitOrder | (unused ×3)
 *
 *   ack        newest generation the thread acknowledged, or QUIESCENT while it holds no
 *              translation at all (in the host, blocked in a fault, a wait, a host call)
 *   state      FREE | RUNNING
 *   waitState  NOT_WAITING | WAITING | WOKEN; the thread sleeps with Atomics.wait on this cell
 *   waitAddr   virtual address waited on (u32 bits); waitOrder: FIFO ticket among waiters
 *
 * N-guest eviction safety (docs/architecture.md): a frame unmapped in generation g is reused only
 * once every RUNNING thread's ack is ≥ g. A thread acknowledges the current generation at every
 * fault (it holds no translation there), and stores QUIESCENT while it blocks in the host without
 * one (waiting for others' acknowledgements, in memory.atomic.wait, in a host import, or outside
 * guest code altogether). The wait-table fields are changed only under the frame-table
 * lock (see Pager.wait/notify), so check-then-sleep and notify cannot interleave.
 */
import { MAX_GUEST_THREADS } from '../layout.js';

/** Any generation is acknowledged by a thread that holds no translation. */
export const QUIESCENT = 0x7fff_ffff;

// The table's layout in Int32 words: a header, then STRIDE words per thread (offsets below); a
// table of constants like every shared layout's, not repeated logic.
const kWaitTicket = 0;
const HEADER = 4;
const STRIDE = 8;
const ACK = 0;
const STATE = 1;
const WAIT_STATE = 2;
const WAIT_ADDR = 3;
const WAIT_ORDER = 4;

export const FREE = 0;
export const RUNNING = 1;
export const NOT_WAITING = 0;
export const WAITING = 1;
export const WOKEN = 2;

/** Spins on an acknowledgement before sleeping; then sleeps this long between looks (ms). */
const ACK_SPIN = 100;
const ACK_SLEEP_MS = 1;
/** Waiting this long (ms) for a running thread's acknowledgement forces it into the host (shootdown), and again as often. */
const SHOOTDOWN_AFTER_MS = 2;

export class GuestThreads {
  readonly buffer: SharedArrayBuffer;
  private readonly cells: Int32Array;

  constructor(buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer((HEADER + STRIDE * MAX_GUEST_THREADS) * 4);
    this.cells = new Int32Array(this.buffer);
  }

  /** Registers thread `index` as running, acknowledging `generation`. */
  register(index: number, generation: number): void {
    const at = HEADER + STRIDE * index;
    Atomics.store(this.cells, at + ACK, generation);
    Atomics.store(this.cells, at + STATE, RUNNING);
  }

  /** Takes a free index for a new thread (registered, acknowledging `generation`), or -1 if all are taken. */
  claim(generation: number): number {
    for (let i = 1; i < MAX_GUEST_THREADS; i++) {
      const at = HEADER + STRIDE * i;
      if (Atomics.compareExchange(this.cells, at + STATE, FREE, RUNNING) === FREE) {
        Atomics.store(this.cells, at + ACK, generation);
        return i;
      }
    }
    return -1;
  }

  /** The thread is gone: it acknowledges everything from now on and its index may be reused. */
  release(index: number): void {
    const at = HEADER + STRIDE * index;
    Atomics.store(this.cells, at + ACK, QUIESCENT);
    Atomics.store(this.cells, at + WAIT_STATE, NOT_WAITING);
    Atomics.store(this.cells, at + STATE, FREE);
    Atomics.notify(this.cells, at + ACK);
  }

  /** Running threads (the main thread included). */
  running(): number {
    let n = 0;
    for (let i = 0; i < MAX_GUEST_THREADS; i++) if (Atomics.load(this.cells, HEADER + STRIDE * i + STATE) === RUNNING) n++;
    return n;
  }

  /** The thread holds no translation (entered the host). */
  quiesce(index: number): void {
    const at = HEADER + STRIDE * index + ACK;
    Atomics.store(this.cells, at, QUIESCENT);
    Atomics.notify(this.cells, at);
  }

  /**
   * The thread may hold translations loaded after it read `generation`. Called on every fault
   * (pager.ts), mostly with the generation it already acknowledged: then nothing changes and no
   * waiter can be waiting for this value, so it skips the store and the notify.
   */
  resume(index: number, generation: number): void {
    const at = HEADER + STRIDE * index + ACK;
    if (Atomics.load(this.cells, at) === generation) return;
    Atomics.store(this.cells, at, generation);
    Atomics.notify(this.cells, at);
  }

  /** First running thread other than `except` that has not acknowledged `generation`, or -1. */
  private laggard(generation: number, except: number): number {
    for (let i = 0; i < MAX_GUEST_THREADS; i++) {
      if (i === except) continue;
      const at = HEADER + STRIDE * i;
      if (Atomics.load(this.cells, at + STATE) === RUNNING && Atomics.load(this.cells, at + ACK) < generation) return i;
    }
    return -1;
  }

  acknowledged(generation: number, except = -1): boolean {
    return this.laggard(generation, except) < 0;
  }

  /**
   * Blocks until every running thread but `except` acknowledged `generation`, or `stop()`. A thread
   * that keeps running guest code without entering the host is forced in by `shootdown()` (which
   * soft-unmaps every page, so its next access faults), every SHOOTDOWN_AFTER_MS while there are
   * other threads. Returns whether the generation was acknowledged.
   */
  awaitAcknowledged(generation: number, except: number, shootdown: () => void, stop: () => boolean = () => false, sleepMs = ACK_SLEEP_MS): boolean {
    for (let i = 0; i < ACK_SPIN; i++) if (this.laggard(generation, except) < 0) return true;
    let last = performance.now();
    for (;;) {
      const lag = this.laggard(generation, except);
      if (lag < 0) return true;
      if (stop()) return false;
      const now = performance.now();
      if (now - last > SHOOTDOWN_AFTER_MS && this.running() > 1) {
        last = now;
        shootdown();
        continue;
      }
      const at = HEADER + STRIDE * lag + ACK;
      const seen = Atomics.load(this.cells, at);
      if (seen < generation) Atomics.wait(this.cells, at, seen, sleepMs);
    }
  }

  // ── memory.atomic.wait / notify (callers hold the frame-table lock, except in sleep()) ──────────

  /** Enqueues thread `index` as waiting on virtual address `addr`. */
  enqueueWaiter(index: number, addr: number): void {
    const at = HEADER + STRIDE * index;
    this.cells[at + WAIT_ADDR] = addr | 0;
    this.cells[at + WAIT_ORDER] = ++this.cells[kWaitTicket]!;
    Atomics.store(this.cells, at + WAIT_STATE, WAITING);
  }

  /** Sleeps while thread `index` is WAITING, at most `timeoutMs` (Infinity: no limit). Lock not held. */
  sleep(index: number, timeoutMs: number): void {
    const at = HEADER + STRIDE * index + WAIT_STATE;
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(this.cells, at) === WAITING) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      Atomics.wait(this.cells, at, WAITING, left);
    }
  }

  /** Ends a wait under the lock: true if it was woken by notify, false if it timed out. */
  dequeueWaiter(index: number): boolean {
    const at = HEADER + STRIDE * index + WAIT_STATE;
    const woken = this.cells[at] === WOKEN;
    Atomics.store(this.cells, at, NOT_WAITING);
    return woken;
  }

  /** Wakes up to `count` waiters on `addr`, oldest first; returns how many. */
  wake(addr: number, count: number): number {
    let woken = 0;
    while (woken < count) {
      let best = -1;
      for (let i = 0; i < MAX_GUEST_THREADS; i++) {
        const at = HEADER + STRIDE * i;
        if (this.cells[at + WAIT_STATE] !== WAITING || this.cells[at + WAIT_ADDR] !== (addr | 0)) continue;
        if (best < 0 || this.cells[at + WAIT_ORDER]! - this.cells[HEADER + STRIDE * best + WAIT_ORDER]! < 0) best = i;
      }
      if (best < 0) break;
      const cell = HEADER + STRIDE * best + WAIT_STATE;
      Atomics.store(this.cells, cell, WOKEN);
      Atomics.notify(this.cells, cell);
      woken++;
    }
    return woken;
  }
}
