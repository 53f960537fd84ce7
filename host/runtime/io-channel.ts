/**
 * @fileoverview A request ring between one producer thread (the guest, or the reclaimer) and the
 * I/O worker, and `ChannelIo`, the producer's side of it. No postMessage on the fault path: requests
 * go into a shared ring, the producer rings a doorbell shared by all channels (`Atomics.add` +
 * `Atomics.notify`), and the worker (sleeping in `Atomics.waitAsync` on it) issues everything
 * submitted on every channel since it last looked (`issue` in io-worker.ts; `ChannelIo.drain` is the
 * producer's wait for all of its own requests). Each slot completes on its own: the worker
 * stores the slot's sequence number into `done[slot]` and, if a thread is parked on that cell
 * (`parked`), notifies it (`completeRequests`); the guest spins briefly, then `Atomics.wait`s on
 * the cell, or spins through the read where that measured faster (wait-chooser.ts).
 *
 *   control Int32[16]   kSubmitted | kShutdown | kError | kReady | kReserved | … | kRepair … (re-replication counters)
 *   ring    Int32[R×4]  per slot: op | page | offset | sequence       (R = power of two)
 *   done    Int32[R]    sequence of the last completed request in the slot
 *   status  Int32[R]    0 = ok, else an error code for that request
 *   parked  Int32[R]    threads parked in Atomics.wait on done[slot] (only those are notified)
 *   times   Float64[R×2] with kTiming set: when the worker took the slot's request from the ring, and
 *                       when it completed it (ms on the guest's performance.now() clock; handoffClock)
 *   staging u8[R×page]  write-back data: a write copies its frame here, so the frame is free at once
 *   message u8[1024]    the last error: "<Class> <code>[ <wire status>]\n<message>" in UTF-8 (writeError/readError)
 *
 * Read requests carry a physical-memory offset (the worker writes the page straight into the frame);
 * write requests carry their staging slot. A read of a page whose write-back is still in flight is
 * served from the staging copy by the worker, so it never sees stale data.
 */
import { fromErrorRecord, StoreError, toErrorRecord, type FarmemError } from '../errors.js';
import type { FaultLatency } from '../stats/latency.js';
import type { PageIo } from './page-io.js';
import { WaitChooser } from './wait-chooser.js';

/** Where the producer finds physical memory's current bytes (re-derived when memory grows). */
export interface PhysicalBytes {
  readonly bytes: Uint8Array;
}

/** The doorbell's counter cell (`createDoorbell`): producers add 1 and notify (unless WATCHING); the worker waits on it. */
export const DOORBELL = 0;
/**
 * Non-zero while the I/O worker is watching the rings itself (spinning after a read landed), so a
 * producer rings without Atomics.notify: waking a worker parked in Atomics.waitAsync queues a task
 * on its event loop, which cost the faulting guest 7 µs p50 and 27 µs p90 per ring (64 KiB pages,
 * seqscan at 25% through a loopback server, 2026-12-03), and the watching worker needs no wake-up.
 * The worker clears it before it looks at the rings one last time and sleeps, so a submission is
 * either seen by that look or notified (both sides use sequentially consistent atomics).
 */
export const WATCHING = 1;

/** The doorbell all channels of one I/O worker share. */
export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT * (WATCHING + 1));
}

export const kSubmitted = 0;
export const kShutdown = 1;
export const kError = 2;
export const kReady = 3;
/** Set by the guest when it records fault latency: the worker then stamps `times` per request. */
export const kTiming = 5;
/**
 * Re-replication counters of a remote store, published by the I/O worker into the guest channel's
 * control block (kRepair + i, i in REPAIR_FIELDS order) for `stats().replication`.
 */
export const kRepair = 8;
export const REPAIR_FIELDS = ['underReplicated', 'reReplicated', 'pagesCopied', 'failedCopies', 'serversLost', 'slabsMoved'] as const;
export type RepairCounters = Record<(typeof REPAIR_FIELDS)[number], number>;

/**
 * Last sequence number reserved by a producer. It lives in the channel, not in one ChannelIo, so
 * several guest threads can produce on the guest ring: each submits only under the frame-table
 * lock, which serialises them as if they were one producer.
 */
const kReserved = 4;
/**
 * Requests published on this ring since the doorbell last rang (ChannelIo.flush). In the channel,
 * not in one ChannelIo, so a guest thread waiting on a request another thread published (its slot
 * reused, or a prefetched page in flight) rings for it: that thread may be asleep in farmem.wait.
 */
const kUnrung = 6;
const CONTROL_SLOTS = 16;
const MESSAGE_BYTES = 1024;

export const OP_READ = 1;
export const OP_WRITE = 2;
/** A read for a prefetch: the worker sends it after the demand reads it drained with it. */
export const OP_PREFETCH = 3;

/**
 * Spins this many times (~2–3 µs) checking for completion before sleeping in Atomics.wait. Short on
 * purpose: a read takes ~40 µs, and on 2 cores a guest spinning through it (2000 loads, ~30 µs, as
 * before) holds the core the I/O worker needs to wake up and send the request (its wake-up took
 * 16–17 µs p50 then, 3–4 µs now; measured in docs/architecture.md).
 */
const SPIN = 200;

/**
 * How long a guest that spins through its waits (`WaitChooser`) spins before it parks anyway. Long
 * against a read (~40 µs at 4 KiB, ~90 µs at 64 KiB over loopback) on purpose: with 0.2 ms, a
 * guest whose spin kept from its core a thread the read needed (the server, with the worker polling
 * its socket on the other core) parked after 0.2 ms, slept through the reply and, having slept, won
 * its core back at the next wait; runs of such waits (~350 µs each, logged one by one) made spinning
 * lose the chooser's probes. Spinning on, the guest uses up its share and the scheduler runs the
 * server. 2026-12-01, hashtable at 25% through a loopback server: fault p50 36–48 µs (6 runs)
 * against 67–78 µs with 0.2 ms, 95–96% of the waits spun against 38–69% (docs/architecture.md,
 * "A ws client that streams"); 0.5 ms was worse, 2 ms no better. With a CPU hog on one core the
 * chooser parks as before.
 */
const SPIN_THROUGH_MS = 1;

export interface ChannelBuffers {
  readonly control: Int32Array;
  readonly ring: Int32Array;
  readonly done: Int32Array;
  readonly status: Int32Array;
  readonly parked: Int32Array;
  readonly times: Float64Array;
  readonly staging: Uint8Array;
  readonly message: Uint8Array;
  readonly slots: number;
  readonly pageSize: number;
}

/**
 * This thread's `performance.now()` origin (ms). The worker adds (its origin − the guest's) to its
 * `performance.now()`, so its `times` stamps are on the guest's clock. On Node 20 and 24 workers
 * share the process's origin (measured: the shift is 0, and a spin ping-pong between two threads
 * finds their clocks within 0.04 µs); calibrating against `process.hrtime` instead was off by up to
 * 1.5 ms, the two clocks drifting apart by ~50 ppm.
 */
export function handoffClockOrigin(): number {
  return performance.timeOrigin;
}

/** Ring slots: enough staging for ~4 MiB of write-back, between 16 and 1024 requests. */
export function ringSlots(pageSize: number): number {
  const want = Math.min(1024, Math.max(16, (4 << 20) / pageSize));
  return 2 ** Math.floor(Math.log2(want));
}

export function createChannel(pageSize: number): SharedArrayBuffer {
  const slots = ringSlots(pageSize);
  const ints = CONTROL_SLOTS + slots * 4 + slots * 3;
  return new SharedArrayBuffer(ints * 4 + slots * 16 + slots * pageSize + MESSAGE_BYTES);
}

export function channelViews(sab: SharedArrayBuffer, pageSize: number): ChannelBuffers {
  const slots = ringSlots(pageSize);
  let at = 0;
  const ints = (n: number) => {
    const view = new Int32Array(sab, at, n);
    at += n * 4;
    return view;
  };
  const control = ints(CONTROL_SLOTS);
  const ring = ints(slots * 4);
  const done = ints(slots);
  const status = ints(slots);
  const parked = ints(slots);
  const times = new Float64Array(sab, at, slots * 2); // at is a multiple of 8: slots is a power of two ≥ 16
  at += slots * 16;
  const staging = new Uint8Array(sab, at, slots * pageSize);
  at += slots * pageSize;
  const message = new Uint8Array(sab, at, MESSAGE_BYTES);
  return { control, ring, done, status, parked, times, staging, message, slots, pageSize };
}

export function writeMessage(buffers: ChannelBuffers, text: string): void {
  const bytes = new TextEncoder().encode(text).subarray(0, MESSAGE_BYTES - 4);
  new DataView(buffers.message.buffer, buffers.message.byteOffset).setUint32(0, bytes.length, true);
  buffers.message.set(bytes, 4);
}

export function readMessage(buffers: ChannelBuffers): string {
  const length = new DataView(buffers.message.buffer, buffers.message.byteOffset).getUint32(0, true);
  return new TextDecoder().decode(buffers.message.slice(4, 4 + length));
}

/**
 * Records an error for the producer with its class, code and wire status, so a typed error
 * (AuthError, ServerOutOfMemoryError, DataLostError, RedisStoreError, ...) crosses the thread boundary.
 */
export function writeError(buffers: ChannelBuffers, err: unknown): void {
  const r = toErrorRecord(err);
  const code = /^[A-Z][A-Z0-9_]*$/.test(r.code) ? r.code : 'FM_ERR_STORE';
  writeMessage(buffers, `${r.name} ${code}${r.wireStatus !== undefined ? ` ${r.wireStatus}` : ''}\n${r.message}`);
}

/** The error recorded by `writeError`, as its class, with `prefix` before its message. */
export function readError(buffers: ChannelBuffers, fallbackCode: string, prefix = ''): FarmemError {
  const text = readMessage(buffers);
  const m = /^(\w+) ([A-Z][A-Z0-9_]*)(?: (\d+))?\n/.exec(text);
  if (!m) return new StoreError(fallbackCode, prefix + text);
  return rebuildError(m[1]!, m[2]!, prefix + text.slice(m[0].length), m[3] === undefined ? undefined : Number(m[3]));
}

/** An error of class `name` (if known, else `StoreError`) made from another thread's report. */
export function rebuildError(name: string | undefined, code: string, message: string, wireStatus?: number): FarmemError {
  return fromErrorRecord({ name: name ?? 'StoreError', code, message, ...(wireStatus !== undefined ? { wireStatus } : {}) });
}

/**
 * Consumer side (the I/O worker): completes requests `seqs` of one batch, ok or `failed` (the
 * worker records the error with writeError first). `clockShift` puts the hand-off stamps on the
 * guest's clock (handoffClockOrigin). Every request lands first (status, stamp, then done), then
 * the threads parked on them are woken. Completing one at a time made a guest streaming through a
 * batch's pages wake on page k, find page k+1 not landed yet, park again and wait for the next wake:
 * a futex round trip of ~20 µs per 4 KiB page, where the guest needs ~3 µs to use one (timeline of
 * seqscan at 25% through a loopback server, 2026-12-02). A slot nobody is parked on is not
 * notified: an Atomics.notify without a waiter still takes V8's futex lock, and the completions
 * were 9% of the worker's CPU in a profile of the same run.
 */
export function completeRequests(b: ChannelBuffers, seqs: ArrayLike<number>, failed: boolean, clockShift: number): void {
  const mask = b.slots - 1;
  const stamp = b.control[kTiming] !== 0;
  for (let i = 0; i < seqs.length; i++) {
    const seq = seqs[i]!;
    const slot = seq & mask;
    Atomics.store(b.status, slot, failed ? 1 : 0);
    if (stamp) b.times[slot * 2 + 1] = performance.now() + clockShift;
    Atomics.store(b.done, slot, seq);
  }
  for (let i = 0; i < seqs.length; i++) {
    const slot = seqs[i]! & mask;
    if (Atomics.load(b.parked, slot) !== 0) Atomics.notify(b.done, slot);
  }
}

/**
 * Producer side of the channel. One producer at a time: the reclaimer, or the guest threads, which
 * submit under the frame-table lock (they share the ring; see kReserved).
 */
export class ChannelIo implements PageIo {
  private readonly b: ChannelBuffers;
  private readonly mask: number;
  /** Where hand-off times go (`timeHandoffs`), or null: then nothing is stamped. */
  private latency: FaultLatency | null = null;
  /** When each slot's request was published (guest clock), for the hand-off times. */
  private readonly sentAt: Float64Array;
  /** Whether `wait` spins through a read or parks (only `wait`: the reclaimer's `drain` parks). */
  readonly chooser = new WaitChooser();

  /** Last sequence number reserved (kept in the channel: guest threads share the guest ring). */
  private get seq(): number {
    return this.b.control[kReserved]!;
  }
  private set seq(value: number) {
    this.b.control[kReserved] = value;
  }

  constructor(
    sab: SharedArrayBuffer,
    pageSize: number,
    private readonly phys: PhysicalBytes,
    private readonly doorbell: Int32Array,
    private readonly timeoutMs: number,
    private readonly onClose: () => Promise<void>,
  ) {
    this.b = channelViews(sab, pageSize);
    this.mask = this.b.slots - 1;
    this.sentAt = new Float64Array(this.b.slots);
  }

  /**
   * Records, for every read waited on, the hand-offs around the store's round trip into `latency`:
   * published → worker took it → worker completed it → this thread resumed (the worker stamps its two).
   */
  timeHandoffs(latency: FaultLatency): void {
    this.latency = latency;
    Atomics.store(this.b.control, kTiming, 1);
  }

  /** A prefetch or a write-back waits for the next `flush` (or wait) to ring the doorbell; a demand read rings at once. */
  read(page: number, offset: number, prefetch = false): number {
    return this.submit(prefetch ? OP_PREFETCH : OP_READ, page, offset);
  }

  write(page: number, offset: number): void {
    const seq = this.reserve();
    const slot = seq & this.mask;
    const ps = this.b.pageSize;
    this.b.staging.set(this.phys.bytes.subarray(offset, offset + ps), slot * ps);
    this.publish(seq, OP_WRITE, page, slot);
  }

  /**
   * Prefetches and write-backs come in bursts (a prefetch window, a reclaimer's victims): one ring
   * per burst, not per page, since every Atomics.notify takes V8's futex lock and, with the worker
   * in waitAsync, queues a task on its loop.
   */
  flush(): void {
    if (Atomics.load(this.b.control, kUnrung) !== 0) this.ring();
  }

  /**
   * A late prefetch (`stream`) always parks after the short spin: the rest of its stream is in
   * flight, and landing it needs the I/O worker and the server, which on 2 cores share the core a
   * spinning guest would hold. Measured 2026-12-02, seqscan 32 MiB at 25% through a loopback server
   * with leap-stream, 5 alternating rounds: 0.84–0.89x the time of letting the chooser decide
   * (docs/architecture.md, "Streams that leave the cores to the stream"). Demand reads keep the
   * chooser: one read in flight, nothing else to run.
   */
  wait(ticket: number, stream = false): void {
    if (ticket === 0) return;
    const slot = ticket & this.mask;
    let spun = false;
    if (Atomics.load(this.b.done, slot) < ticket) {
      spun = !stream && this.chooser.spin;
      const started = performance.now();
      this.settle(ticket, spun ? SPIN_THROUGH_MS : 0);
      if (!stream) this.chooser.record(performance.now() - started);
    }
    if (this.latency !== null) this.latency.recordHandoff(this.sentAt[slot]!, this.b.times[slot * 2]!, this.b.times[slot * 2 + 1]!, performance.now(), spun);
    this.check(slot);
  }

  /**
   * Blocks until request `ticket` completed, ok or not (its error is for whoever waits on it):
   * spins SPIN loads, then up to `spinMs` more, then parks in Atomics.wait.
   */
  private settle(ticket: number, spinMs = 0): void {
    const slot = ticket & this.mask;
    const done = this.b.done;
    // done[slot] only grows (a slot is reused only after its request completed), so >= means landed.
    if (Atomics.load(done, slot) >= ticket) return; // reserve's slot, reused long after its request landed: no ring
    this.flush(); // what it waits for may still sit unrung
    for (let i = 0; i < SPIN; i++) {
      if (Atomics.load(done, slot) >= ticket) return;
    }
    if (spinMs > 0) {
      const until = performance.now() + spinMs;
      for (let i = 1; ; i++) {
        if (Atomics.load(done, slot) >= ticket) return;
        if ((i & 63) === 0 && performance.now() >= until) break;
      }
    }
    const deadline = performance.now() + this.timeoutMs;
    // Counted as parked before it waits: the worker stores done, then looks at parked
    // (completeRequests), so either the wait finds done changed and returns at once, or the worker
    // finds this thread counted and notifies it.
    Atomics.add(this.b.parked, slot, 1);
    try {
      for (;;) {
        const seen = Atomics.load(done, slot);
        if (seen >= ticket) return;
        const left = deadline - performance.now();
        if (left <= 0) throw new StoreError('FM_ERR_TIMEOUT', `the page store did not answer within ${this.timeoutMs} ms; is the memory server running?`);
        Atomics.wait(done, slot, seen, left);
      }
    } finally {
      Atomics.sub(this.b.parked, slot, 1);
    }
  }

  /** The re-replication counters the I/O worker last published. */
  repairCounters(): RepairCounters {
    const out = {} as RepairCounters;
    REPAIR_FIELDS.forEach((f, i) => { out[f] = Atomics.load(this.b.control, kRepair + i); });
    return out;
  }

  landed(ticket: number): boolean {
    return ticket === 0 || Atomics.load(this.b.done, ticket & this.mask) >= ticket;
  }

  drain(): void {
    // Every slot's latest request must have completed; a failed read was reported to its waiter,
    // a failed write-back is reported here.
    for (let s = Math.max(1, this.seq - this.b.slots + 1); s <= this.seq; s++) this.settle(s);
    this.checkGlobal();
  }

  async close(): Promise<void> {
    Atomics.store(this.b.control, kShutdown, 1);
    this.ring();
    await this.onClose();
  }

  private submit(op: number, page: number, offset: number): number {
    const seq = this.reserve();
    if (this.latency !== null) this.sentAt[seq & this.mask] = performance.now();
    this.publish(seq, op, page, offset);
    return seq;
  }

  /** Next sequence number; waits until its slot's previous request completed. */
  private reserve(): number {
    this.checkGlobal();
    this.awaitRoom();
    return ++this.seq;
  }

  /**
   * Waits until the next request's slot is free: its previous request completed (its outcome
   * belongs to its own waiter). A ring is used by one thread, so the next `reserve` then does not
   * wait; taking the number only afterwards means a throw here never leaves a number unpublished.
   */
  awaitRoom(): void {
    const seq = this.seq + 1;
    if (seq > this.b.slots) this.settle(seq - this.b.slots);
  }

  private publish(seq: number, op: number, page: number, arg: number): void {
    const at = (seq & this.mask) * 4;
    const ring = this.b.ring;
    ring[at] = op;
    ring[at + 1] = page;
    ring[at + 2] = arg;
    Atomics.store(ring, at + 3, seq);
    Atomics.store(this.b.control, kSubmitted, seq);
    if (op === OP_READ) this.ring();
    else Atomics.store(this.b.control, kUnrung, 1);
  }

  private ring(): void {
    Atomics.store(this.b.control, kUnrung, 0);
    Atomics.add(this.doorbell, DOORBELL, 1);
    if (Atomics.load(this.doorbell, WATCHING) === 0) Atomics.notify(this.doorbell, DOORBELL);
  }

  private check(slot: number): void {
    if (Atomics.load(this.b.status, slot) !== 0) throw readError(this.b, 'FM_ERR_STORE');
  }

  /** A background write-back failed: the page would be lost, so the run must stop. */
  private checkGlobal(): void {
    if (Atomics.load(this.b.control, kError) !== 0) {
      throw readError(this.b, 'FM_ERR_WRITE_BACK', 'write-back to the page store failed: ');
    }
  }
}
