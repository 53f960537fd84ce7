/**
 * @fileoverview Streams: the stdio entries a `Wasi` starts with (a host fd, in-process input bytes,
 * or an output sink), moving bytes to and from them (short writes and EAGAIN retried), and asking a
 * stream whether a read would block (for `poll_oneoff`).
 */

import { closeSync, constants as fsc, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { FILETYPE, RIGHTS, RIGHTS_STREAM_BASE } from './constants.js';
import { filetypeOfStats, sleepMs, textEncoder } from './context.js';
import { FdEntry, KIND_STREAM, type OutputSink } from './fd-table.js';
import type { StdinSpec, StdoutSpec } from './options.js';

/** Sleep between retries when a non-blocking host stdio fd says EAGAIN. */
const EAGAIN_SLEEP_MS = 1;
/** Most bytes a readiness check takes from a host pipe (kept in `FdEntry.peeked` for the next read). */
const PEEK_BYTES = 4096;

function isNodeCode(e: unknown, code: string): boolean {
  return (e as { code?: unknown } | null)?.code === code;
}

function hostStreamEntry(hostFd: number): FdEntry {
  let filetype: number = FILETYPE.UNKNOWN;
  let fifo = false;
  try {
    const st = fstatSync(hostFd);
    filetype = filetypeOfStats(st);
    fifo = st.isFIFO();
  } catch {
    // A closed stdio fd: calls on it fail with EBADF when they happen.
  }
  // wasi-libc's isatty() is "character device without SEEK/TELL rights": give a character device
  // that is not a terminal (/dev/null) those rights so it is not taken for one.
  const rights = filetype === FILETYPE.CHARACTER_DEVICE && !isatty(hostFd) ? RIGHTS_STREAM_BASE | RIGHTS.FD_SEEK | RIGHTS.FD_TELL : RIGHTS_STREAM_BASE;
  const e = new FdEntry(KIND_STREAM, hostFd, filetype, rights, 0n);
  e.ownsHostFd = false;
  e.fifo = fifo;
  return e;
}

/** The entry of fd 0 for a `stdin` option. */
export function stdinEntry(spec: StdinSpec | undefined): FdEntry {
  if (typeof spec === 'string' || spec instanceof Uint8Array) {
    const e = new FdEntry(KIND_STREAM, -1, FILETYPE.SOCKET_STREAM, RIGHTS_STREAM_BASE, 0n);
    e.source = typeof spec === 'string' ? textEncoder.encode(spec) : spec;
    return e;
  }
  return hostStreamEntry(spec === undefined ? 0 : typeof spec === 'number' ? spec : spec.fd);
}

/** The entry of fd 1 or 2 for a `stdout`/`stderr` option (`defaultFd` when it is not given). */
export function outputEntry(spec: StdoutSpec | undefined, defaultFd: number): FdEntry {
  if (spec === undefined) return hostStreamEntry(defaultFd);
  if (typeof spec === 'number') return hostStreamEntry(spec);
  if (typeof (spec as { fd?: unknown }).fd === 'number') return hostStreamEntry((spec as { fd: number }).fd);
  // In-process streams look like pipes (as node:wasi reports a piped stdio fd): not a tty.
  const e = new FdEntry(KIND_STREAM, -1, FILETYPE.SOCKET_STREAM, RIGHTS_STREAM_BASE, 0n);
  e.sink = typeof spec === 'function' ? { write: spec } : (spec as OutputSink);
  return e;
}

/** Writes `len` bytes of `buf` to a host fd, retrying short writes and EAGAIN. */
export function writeAllHost(fd: number, buf: Uint8Array, len: number, position: number | null): void {
  let done = 0;
  while (done < len) {
    let n: number;
    try {
      n = writeSync(fd, buf, done, len - done, position === null ? null : position + done);
    } catch (e) {
      if (isNodeCode(e, 'EAGAIN')) { sleepMs(EAGAIN_SLEEP_MS); continue; }
      throw e;
    }
    done += n;
  }
}

/** Reads up to `len` bytes into `buf`; 0 at end of input. Streams retry EAGAIN until data comes. */
export function readHost(entry: FdEntry, buf: Uint8Array, len: number, position: number | null): number {
  if (entry.source !== null) {
    const n = Math.min(len, entry.source.length - entry.sourcePos);
    buf.set(entry.source.subarray(entry.sourcePos, entry.sourcePos + n));
    entry.sourcePos += n;
    return n;
  }
  if (entry.sink !== null) throw Object.assign(new Error('read from an output stream'), { code: 'EBADF' });
  if (entry.peeked !== null) {
    const n = Math.min(len, entry.peeked.length);
    buf.set(entry.peeked.subarray(0, n));
    entry.peeked = n === entry.peeked.length ? null : entry.peeked.subarray(n);
    return n;
  }
  for (;;) {
    try {
      return readSync(entry.hostFd, buf, 0, len, position);
    } catch (e) {
      if (isNodeCode(e, 'EAGAIN')) { sleepMs(EAGAIN_SLEEP_MS); continue; }
      if (isNodeCode(e, 'EOF')) return 0; // Windows pipes
      throw e;
    }
  }
}

/** What a read on a stream would do now (`readReadiness`). */
export interface Readiness {
  /** A read would block: no data, and the writer is still there. */
  blocks: boolean;
  /** The writer has hung up: once `nbytes` are read, reads return end of input. */
  hangup: boolean;
  /** Bytes known to be readable at once (0 when ready but the amount is unknown, as on a terminal). */
  nbytes: number;
}

/**
 * What a read on stream `entry` would do now. In-process input is complete from the start (its
 * writer has hung up). A host pipe is asked without blocking through a second, non-blocking open
 * of the same pipe (`/proc/self/fd/N`), read until it would block or ends; the bytes it takes are
 * kept in `entry.peeked` and served first by `readHost`. Where that open is not possible (a socket,
 * such as Node's child-process stdio pairs; a terminal; not Linux) the stream counts as ready and a
 * read may then block.
 */
export function readReadiness(entry: FdEntry): Readiness {
  if (entry.source !== null) return { blocks: false, hangup: true, nbytes: entry.source.length - entry.sourcePos };
  const have = entry.peeked?.length ?? 0;
  if (!entry.fifo || entry.hostFd < 0 || have >= PEEK_BYTES) return { blocks: false, hangup: false, nbytes: have };
  let fd: number;
  try {
    fd = openSync(`/proc/self/fd/${entry.hostFd}`, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    return { blocks: false, hangup: false, nbytes: have };
  }
  const buf = new Uint8Array(PEEK_BYTES);
  if (have > 0) buf.set(entry.peeked!);
  let got = have;
  let hangup = false;
  let blocks = false;
  try {
    while (got < PEEK_BYTES) {
      const n = readSync(fd, buf, got, PEEK_BYTES - got, null);
      if (n === 0) { hangup = true; break; }
      got += n;
    }
  } catch (e) {
    // EAGAIN: the writer is there and has no more for now. Anything else: the read reports it.
    blocks = got === 0 && isNodeCode(e, 'EAGAIN');
  } finally {
    closeSync(fd);
  }
  entry.peeked = got > 0 ? buf.subarray(0, got) : null;
  return { blocks, hangup, nbytes: got };
}
