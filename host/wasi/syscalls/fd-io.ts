/**
 * @fileoverview WASI fd I/O: read/write (sequential and positional), seek/tell, close/renumber,
 * sync, advise and allocate. Data moves through the context's scratch buffer; a regular file's
 * offset is farmem's own (`FdEntry.position`), so every host read/write is positional.
 */

import { fdatasyncSync, fstatSync, fsyncSync, ftruncateSync } from 'node:fs';
import type { VirtualMemory } from '../../runtime/virtual-memory.js';
import { ADVICE_MAX, ERRNO, FDFLAGS, FILETYPE, RIGHTS, WHENCE } from '../constants.js';
import { MAX_SAFE, SCRATCH_MAX, U64, type WasiContext } from '../context.js';
import { KIND_DIR, KIND_FILE, KIND_STREAM, type FdEntry } from '../fd-table.js';
import { readHost, writeAllHost } from '../stdio.js';
import type { SyscallFamily } from './table.js';

/**
 * The part read and write share: the offset (`null` for the fd's own position), the fd's rights and
 * kind, the iovecs; then `move` and the count written to `resultPtr`.
 */
function transfer(ctx: WasiContext, write: boolean, fd: number, iovsPtr: number, iovsLen: number, offset: bigint | null, resultPtr: number): number {
  let at: number | null = null;
  if (offset !== null) {
    const off = U64(offset);
    if (off > MAX_SAFE) return ERRNO.INVAL;
    at = Number(off);
  }
  const e = ctx.file(fd, write ? RIGHTS.FD_WRITE : RIGHTS.FD_READ);
  if (typeof e === 'number') return e;
  if (e.kind === KIND_DIR) return ERRNO.ISDIR;
  if (at !== null && e.kind !== KIND_FILE) return ERRNO.SPIPE;
  const mem = ctx.getMemory();
  const iov = ctx.readIovecs(mem, iovsPtr >>> 0, iovsLen >>> 0);
  if (typeof iov === 'number') return iov;
  const total = write ? gatherWrite(ctx, e, mem, iov, at) : scatterRead(ctx, e, mem, iov, at);
  ctx.writeU32(mem, resultPtr >>> 0, total);
  return ERRNO.SUCCESS;
}

/** Reads into the iovecs until they are full or the host has no more for now; returns the count. */
function scatterRead(ctx: WasiContext, e: FdEntry, mem: VirtualMemory, iov: Uint32Array, at: number | null): number {
  let total = 0;
  let pos = at ?? e.position;
  const positional = e.kind === KIND_FILE;
  outer: for (let i = 0; i < iov.length; i += 2) {
    let addr = iov[i]!;
    let left = iov[i + 1]!;
    while (left > 0) {
      const want = Math.min(left, SCRATCH_MAX);
      const buf = ctx.scratchOf(want);
      const n = readHost(e, buf, want, positional ? pos : null);
      if (n > 0) mem.write(addr, buf.subarray(0, n));
      total += n;
      pos += n;
      addr += n;
      left -= n;
      if (n < want) break outer; // end of file, or a stream had no more for now
    }
  }
  if (at === null && positional) e.position = pos;
  return total;
}

/**
 * Gathers the iovecs into the scratch buffer and writes it whenever it is full: one host write for
 * the usual case of a few small iovecs (stdio's buffer + the new data). Returns the count.
 */
function gatherWrite(ctx: WasiContext, e: FdEntry, mem: VirtualMemory, iov: Uint32Array, at: number | null): number {
  let bytes = 0;
  for (let i = 1; i < iov.length; i += 2) bytes += iov[i]!;
  let pos: number | null = null;
  if (e.kind === KIND_FILE) {
    pos = at ?? (e.fdflags & FDFLAGS.APPEND ? Number(fstatSync(e.hostFd, { bigint: true }).size) : e.position);
  }
  const buf = ctx.scratchOf(Math.min(bytes, SCRATCH_MAX));
  let fill = 0;
  let total = 0;
  const flush = (): void => {
    if (fill === 0) return;
    if (e.sink !== null) e.sink.write(buf.slice(0, fill));
    else if (e.hostFd < 0) throw Object.assign(new Error('write to an input stream'), { code: 'EBADF' });
    else writeAllHost(e.hostFd, buf, fill, pos === null ? null : pos + total);
    total += fill;
    fill = 0;
  };
  for (let i = 0; i < iov.length; i += 2) {
    let addr = iov[i]!;
    let left = iov[i + 1]!;
    while (left > 0) {
      const n = Math.min(left, buf.length - fill);
      mem.readInto(addr, buf.subarray(fill, fill + n));
      fill += n;
      addr += n;
      left -= n;
      if (fill === buf.length) flush();
    }
  }
  flush();
  if (e.kind === KIND_FILE) {
    if (at === null) e.position = pos! + total;
    if (e.fdflags & (FDFLAGS.SYNC | FDFLAGS.DSYNC)) fdatasyncSync(e.hostFd);
  }
  return total;
}

function syncFd(ctx: WasiContext, fd: number, data: boolean): number {
  const e = ctx.fds.get(fd);
  if (e === undefined) return ERRNO.BADF;
  if (e.hostFd < 0) return ERRNO.SUCCESS;
  if (e.kind === KIND_STREAM && e.filetype !== FILETYPE.REGULAR_FILE) return ERRNO.INVAL;
  if (data) fdatasyncSync(e.hostFd); else fsyncSync(e.hostFd);
  return ERRNO.SUCCESS;
}

export const fdIo = {
  fd_read(this: WasiContext, fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
    return transfer(this, false, fd, iovs, iovsLen, null, nreadPtr);
  },
  fd_pread(this: WasiContext, fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
    return transfer(this, false, fd, iovs, iovsLen, offset, nreadPtr);
  },
  fd_write(this: WasiContext, fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
    return transfer(this, true, fd, iovs, iovsLen, null, nwrittenPtr);
  },
  fd_pwrite(this: WasiContext, fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): number {
    return transfer(this, true, fd, iovs, iovsLen, offset, nwrittenPtr);
  },

  fd_seek(this: WasiContext, fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.kind === KIND_STREAM) return ERRNO.SPIPE;
    if (e.kind === KIND_DIR) return ERRNO.BADF;
    let base: bigint;
    switch (whence) {
      case WHENCE.SET: base = 0n; break;
      case WHENCE.CUR: base = BigInt(e.position); break;
      case WHENCE.END: base = fstatSync(e.hostFd, { bigint: true }).size; break;
      default: return ERRNO.INVAL;
    }
    const next = base + BigInt.asIntN(64, offset);
    if (next < 0n) return ERRNO.INVAL;
    if (next > MAX_SAFE) return ERRNO.OVERFLOW;
    this.writeU64(this.getMemory(), newOffsetPtr >>> 0, next);
    e.position = Number(next);
    return ERRNO.SUCCESS;
  },

  fd_tell(this: WasiContext, fd: number, offsetPtr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.kind !== KIND_FILE) return e.kind === KIND_STREAM ? ERRNO.SPIPE : ERRNO.BADF;
    this.writeU64(this.getMemory(), offsetPtr >>> 0, BigInt(e.position));
    return ERRNO.SUCCESS;
  },

  fd_close(this: WasiContext, fd: number): number {
    const e = this.fds.remove(fd);
    if (e === undefined) return ERRNO.BADF;
    e.closeHost();
    return ERRNO.SUCCESS;
  },

  fd_renumber(this: WasiContext, from: number, to: number): number {
    const src = this.fds.get(from);
    const dst = this.fds.get(to);
    if (src === undefined || dst === undefined) return ERRNO.BADF;
    if (from === to) return ERRNO.SUCCESS;
    dst.closeHost();
    this.fds.remove(from);
    this.fds.set(to, src);
    return ERRNO.SUCCESS;
  },

  fd_sync(this: WasiContext, fd: number): number { return syncFd(this, fd, false); },
  fd_datasync(this: WasiContext, fd: number): number { return syncFd(this, fd, true); },

  fd_advise(this: WasiContext, fd: number, _offset: bigint, _len: bigint, advice: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (advice < 0 || advice > ADVICE_MAX) return ERRNO.INVAL;
    return e.kind === KIND_FILE ? ERRNO.SUCCESS : e.kind === KIND_DIR ? ERRNO.BADF : ERRNO.SPIPE;
  },

  fd_allocate(this: WasiContext, fd: number, offset: bigint, len: bigint): number {
    const e = this.file(fd, RIGHTS.FD_ALLOCATE);
    if (typeof e === 'number') return e;
    if (e.kind !== KIND_FILE) return e.kind === KIND_DIR ? ERRNO.BADF : ERRNO.SPIPE;
    const end = U64(offset) + U64(len);
    if (end > MAX_SAFE) return ERRNO.FBIG;
    if (fstatSync(e.hostFd, { bigint: true }).size < end) ftruncateSync(e.hostFd, Number(end));
    return ERRNO.SUCCESS;
  },
} satisfies SyscallFamily;
