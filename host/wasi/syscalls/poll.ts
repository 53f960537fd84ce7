/**
 * @fileoverview WASI `poll_oneoff`: clock subscriptions sleep; an fd subscription is ready when a
 * read or write would not block. Regular files and output streams are always ready (as POSIX poll
 * says); a read on a stream is asked with `readReadiness` (stdio.ts). A stream whose writer has hung
 * up (stdin that is a closed pipe, or in-process input) is reported ready with the HANGUP flag, as
 * node:wasi does, so wasi-libc's poll() returns `POLLIN | POLLHUP`.
 */

import { fstatSync } from 'node:fs';
import {
  ERRNO, EVENT_SIZE, EVENTRWFLAGS_FD_READWRITE_HANGUP, EVENTTYPE, SUBCLOCK_ABSTIME, SUBSCRIPTION_SIZE,
} from '../constants.js';
import { sleepMs, type WasiContext } from '../context.js';
import { KIND_FILE, KIND_STREAM, type FdEntry } from '../fd-table.js';
import { readReadiness } from '../stdio.js';
import type { SyscallFamily } from './table.js';

/** Largest poll_oneoff batch accepted (each subscription is 48 bytes of guest memory). */
const MAX_SUBSCRIPTIONS = 4096;
/** How often a stream that would block is asked again while the call waits. */
const POLL_RETRY_MS = 1;

/** One call's subscriptions and the events it has produced so far. */
class PollBatch {
  readonly sv: DataView;
  readonly events: Uint8Array;
  private readonly ev: DataView;
  count = 0;

  constructor(subs: Uint8Array, n: number) {
    this.sv = new DataView(subs.buffer, subs.byteOffset, subs.byteLength);
    this.events = new Uint8Array(n * EVENT_SIZE);
    this.ev = new DataView(this.events.buffer);
  }

  userdata(i: number): bigint { return this.sv.getBigUint64(i * SUBSCRIPTION_SIZE, true); }
  tag(i: number): number { return this.sv.getUint8(i * SUBSCRIPTION_SIZE + 8); }
  fd(i: number): number { return this.sv.getUint32(i * SUBSCRIPTION_SIZE + 16, true); }

  emit(i: number, error: number, nbytes: bigint, flags: number): void {
    const o = this.count++ * EVENT_SIZE;
    this.ev.setBigUint64(o, this.userdata(i), true);
    this.ev.setUint16(o + 8, error, true);
    this.ev.setUint8(o + 10, this.tag(i));
    this.ev.setBigUint64(o + 16, nbytes, true);
    this.ev.setUint16(o + 24, flags, true);
  }
}

/**
 * Emits the event of fd subscription `i` if it is ready and returns true; false if a read would block.
 */
function pollFd(batch: PollBatch, i: number, e: FdEntry | undefined): boolean {
  if (e === undefined) { batch.emit(i, ERRNO.BADF, 0n, 0); return true; }
  if (batch.tag(i) === EVENTTYPE.FD_READ) {
    if (e.kind === KIND_FILE) {
      const size = fstatSync(e.hostFd, { bigint: true }).size;
      batch.emit(i, ERRNO.SUCCESS, size > BigInt(e.position) ? size - BigInt(e.position) : 0n, 0);
      return true;
    }
    if (e.kind === KIND_STREAM) {
      const r = readReadiness(e);
      if (r.blocks) return false;
      batch.emit(i, ERRNO.SUCCESS, BigInt(r.nbytes), r.hangup ? EVENTRWFLAGS_FD_READWRITE_HANGUP : 0);
      return true;
    }
  }
  batch.emit(i, ERRNO.SUCCESS, 0n, 0); // writes, and reads of a directory, never block
  return true;
}

export const poll = {
  poll_oneoff(this: WasiContext, inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
    const count = nsubs >>> 0;
    if (count === 0 || count > MAX_SUBSCRIPTIONS) return ERRNO.INVAL;
    const mem = this.getMemory();
    const batch = new PollBatch(mem.read(inPtr >>> 0, count * SUBSCRIPTION_SIZE), count);
    const sv = batch.sv;
    // Deadlines on the monotonic clock, in ns; -1n for fd subscriptions.
    const deadlines = new BigInt64Array(count).fill(-1n);
    // Fd subscriptions whose read would block, asked again while the call waits.
    const blocked: number[] = [];
    let earliest = -1n;
    let now = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const o = i * SUBSCRIPTION_SIZE;
      const tag = batch.tag(i);
      if (tag === EVENTTYPE.CLOCK) {
        const t = this.now(sv.getUint32(o + 16, true));
        if (typeof t === 'number') { batch.emit(i, t, 0n, 0); continue; }
        const timeout = sv.getBigUint64(o + 24, true);
        const rel = sv.getUint16(o + 40, true) & SUBCLOCK_ABSTIME ? timeout - t : timeout;
        const d = now + (rel > 0n ? rel : 0n);
        deadlines[i] = d;
        if (earliest < 0n || d < earliest) earliest = d;
      } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
        if (!pollFd(batch, i, this.fds.get(batch.fd(i)))) blocked.push(i);
      } else {
        batch.emit(i, ERRNO.INVAL, 0n, 0);
      }
    }
    // Nothing ready: wait for the first clock, asking the blocked streams again meanwhile.
    while (batch.count === 0 && (earliest < 0n || now < earliest)) {
      const leftMs = earliest < 0n ? Infinity : Number(earliest - now) / 1e6;
      sleepMs(blocked.length > 0 ? Math.min(POLL_RETRY_MS, leftMs) : leftMs);
      for (let k = 0; k < blocked.length; k++) {
        if (pollFd(batch, blocked[k]!, this.fds.get(batch.fd(blocked[k]!)))) blocked.splice(k--, 1);
      }
      now = process.hrtime.bigint();
    }
    for (let i = 0; i < count; i++) {
      const d = deadlines[i]!;
      if (d >= 0n && d <= now) batch.emit(i, ERRNO.SUCCESS, 0n, 0);
    }
    mem.write(outPtr >>> 0, batch.events.subarray(0, batch.count * EVENT_SIZE));
    this.writeU32(mem, neventsPtr >>> 0, batch.count);
    return ERRNO.SUCCESS;
  },
} satisfies SyscallFamily;
