/**
 * @fileoverview A request ring between one producer thread (the guest, or the reclaimer) and the
 * I/O worker, and `ChannelIo`, the producer's side of it. No postMessage on the fault path: requests
 * go into a shared ring, the producer rings a doorbell shared by all channels (`Atomics.add` +
 * `Atomics.notify`), and the worker (sleeping in `Atomics.waitAsync` on it) drains everything
 * submitted on every channel since it last looked. Each slot completes on its own: the worker
 * stores the slot's sequence number into `done[slot]` and notifies it; the guest spins briefly, then
 * `Atomics.wait`s on that cell.
 *
 *   control Int32[16]   kSubmitted | kShutdown | kError | kReady
 *   ring    Int32[R×4]  per slot: op | page | offset | sequence       (R = power of two)
 *   done    Int32[R]    sequence of the last completed request in the slot
 *   status  Int32[R]    0 = ok, else an error code for that request
 *   staging u8[R×page]  write-back data: a write copies its frame here, so the frame is free at once
 *   message u8[1024]    the last error: "<Class> <code>\n<message>" in UTF-8 (writeError/readError)
 *
 * Read requests carry a physical-memory offset (the worker writes the page straight into the frame);
 * write requests carry their staging slot. A read of a page whose write-back is still in flight is
 * served from the staging copy by the worker, so it never sees stale data.
 */
import { RedisStoreError, StoreError } from '../errors.js';
import type { PageIo } from './page-io.js';

/** Where the producer finds physical memory's current bytes (re-derived when memory grows). */
export interface PhysicalBytes {
  readonly bytes: Uint8Array;
}

export const kSubmitted = 0;
export const kShutdown = 1;
export const kError = 2;
export const kReady = 3;
const CONTROL_SLOTS = 16;
const MESSAGE_BYTES = 1024;

export const OP_READ = 1;
export const OP_WRITE = 2;

/** Spins this many times checking for completion before sleeping in Atomics.wait. */
const SPIN = 2000;

export interface ChannelBuffers {
  readonly control: Int32Array;
  readonly ring: Int32Array;
  readonly done: Int32Array;
  readonly status: Int32Array;
  readonly staging: Uint8Array;
  readonly message: Uint8Array;
  readonly slots: number;
  readonly pageSize: number;
}

/** Ring slots: enough staging for ~4 MiB of write-back, between 16 and 1024 requests. */
export function ringSlots(pageSize: number): number {
  const want = Math.min(1024, Math.max(16, (4 << 20) / pageSize));
  return 2 ** Math.floor(Math.log2(want));
}

export function createChannel(pageSize: number): SharedArrayBuffer {
  const slots = ringSlots(pageSize);
  const ints = CONTROL_SLOTS + slots * 4 + slots + slots;
  return new SharedArrayBuffer(ints * 4 + slots * pageSize + MESSAGE_BYTES);
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
  const staging = new Uint8Array(sab, at, slots * pageSize);
  at += slots * pageSize;
  const message = new Uint8Array(sab, at, MESSAGE_BYTES);
  return { control, ring, done, status, staging, message, slots, pageSize };
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

/** Store errors rebuilt on the producer's side by class name (others become a `StoreError`). */
const ERROR_CLASSES: Record<string, new (code: string, message: string) => StoreError> = { StoreError, RedisStoreError };

/** Records an error for the producer with its class and code, so a typed error crosses the thread boundary. */
export function writeError(buffers: ChannelBuffers, err: unknown): void {
  const e = err as { name?: unknown; code?: unknown } | null;
  const code = typeof e?.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(e.code) ? e.code : 'FM_ERR_STORE';
  const cls = typeof e?.name === 'string' && e.name in ERROR_CLASSES ? e.name : 'StoreError';
  writeMessage(buffers, `${cls} ${code}\n${err instanceof Error ? err.message : String(err)}`);
}

/** The error recorded by `writeError`, as its class (or `StoreError`), with `prefix` before its message. */
export function readError(buffers: ChannelBuffers, fallbackCode: string, prefix = ''): StoreError {
  const text = readMessage(buffers);
  const m = /^(\w+) ([A-Z][A-Z0-9_]*)\n/.exec(text);
  if (!m) return new StoreError(fallbackCode, prefix + text);
  return rebuildError(m[1]!, m[2]!, prefix + text.slice(m[0].length));
}

/** A store error of class `name` (if known, else `StoreError`) made from another thread's report. */
export function rebuildError(name: string | undefined, code: string, message: string): StoreError {
  return new (ERROR_CLASSES[name ?? ''] ?? StoreError)(code, message);
}

/** Guest side of the channel. Single producer: only the guest thread calls it. */
export class ChannelIo implements PageIo {
  private readonly b: ChannelBuffers;
  private readonly mask: number;
  private seq = 0;

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
  }

  read(page: number, offset: number): number {
    return this.submit(OP_READ, page, offset);
  }

  write(page: number, offset: number): void {
    const seq = this.reserve();
    const slot = seq & this.mask;
    const ps = this.b.pageSize;
    this.b.staging.set(this.phys.bytes.subarray(offset, offset + ps), slot * ps);
    this.publish(seq, OP_WRITE, page, slot);
  }

  wait(ticket: number): void {
    if (ticket === 0) return;
    const slot = ticket & this.mask;
    const done = this.b.done;
    // done[slot] only grows (a slot is reused only after its request completed), so >= means landed.
    for (let i = 0; i < SPIN; i++) {
      if (Atomics.load(done, slot) >= ticket) return this.check(slot);
    }
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const seen = Atomics.load(done, slot);
      if (seen >= ticket) return this.check(slot);
      const left = deadline - performance.now();
      if (left <= 0) throw new StoreError('FM_ERR_TIMEOUT', `the page store did not answer within ${this.timeoutMs} ms; is the memory server running?`);
      Atomics.wait(done, slot, seen, left);
    }
  }

  landed(ticket: number): boolean {
    return ticket === 0 || Atomics.load(this.b.done, ticket & this.mask) >= ticket;
  }

  drain(): void {
    // Every slot's latest request must have completed.
    for (let s = Math.max(1, this.seq - this.b.slots + 1); s <= this.seq; s++) this.wait(s);
    this.checkGlobal();
  }

  async close(): Promise<void> {
    Atomics.store(this.b.control, kShutdown, 1);
    this.ring();
    await this.onClose();
  }

  private submit(op: number, page: number, offset: number): number {
    const seq = this.reserve();
    this.publish(seq, op, page, offset);
    return seq;
  }

  /** Next sequence number; waits until its slot's previous request completed. */
  private reserve(): number {
    this.checkGlobal();
    const seq = ++this.seq;
    if (seq > this.b.slots) this.wait(seq - this.b.slots);
    return seq;
  }

  private publish(seq: number, op: number, page: number, arg: number): void {
    const at = (seq & this.mask) * 4;
    const ring = this.b.ring;
    ring[at] = op;
    ring[at + 1] = page;
    ring[at + 2] = arg;
    Atomics.store(ring, at + 3, seq);
    Atomics.store(this.b.control, kSubmitted, seq);
    this.ring();
  }

  private ring(): void {
    Atomics.add(this.doorbell, 0, 1);
    Atomics.notify(this.doorbell, 0);
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
