/**
 * @fileoverview WASI fd metadata: fdstat (type, flags, rights), filestat of an open fd, the preopen
 * names (`fd_prestat_*`), and directory listings (`fd_readdir`, paged by cookie).
 */

import { fstatSync, ftruncateSync, futimesSync, lstatSync, readdirSync } from 'node:fs';
import {
  DIRENT_HEADER_SIZE, ERRNO, FDFLAGS, FDSTAT_SIZE, FILESTAT_SIZE, PREOPENTYPE_DIR, PRESTAT_SIZE, RIGHTS,
} from '../constants.js';
import { filetypeOfStats, MAX_SAFE, textEncoder, U64, type WasiContext } from '../context.js';
import { KIND_DIR, KIND_FILE, type DirListing } from '../fd-table.js';
import { hostPathOf } from '../sandbox.js';
import type { SyscallFamily } from './table.js';

function list(dir: string): DirListing {
  const dirents = readdirSync(dir, { withFileTypes: true });
  const names = dirents.map((d) => textEncoder.encode(d.name));
  const types = new Uint8Array(dirents.length);
  const inos = new BigUint64Array(dirents.length);
  dirents.forEach((d, i) => {
    types[i] = filetypeOfStats(d);
    inos[i] = lstatSync(`${dir}/${d.name}`, { bigint: true, throwIfNoEntry: false })?.ino ?? 0n;
  });
  return { names, types, inos };
}

/** Writes the 24-byte dirent header of entry `i` of `listing` at `at` in `view`. */
function writeDirentHeader(view: DataView, at: number, listing: DirListing, i: number): void {
  view.setBigUint64(at, BigInt(i + 1), true);
  view.setBigUint64(at + 8, listing.inos[i]!, true);
  view.setUint32(at + 16, listing.names[i]!.length, true);
  view.setUint8(at + 20, listing.types[i]!);
}

export const fdMeta = {
  fd_fdstat_get(this: WasiContext, fd: number, ptr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    const v = this.smallView;
    this.small.fill(0, 0, FDSTAT_SIZE);
    v.setUint8(0, e.filetype);
    v.setUint16(2, e.fdflags, true);
    v.setBigUint64(8, e.rightsBase, true);
    v.setBigUint64(16, e.rightsInheriting, true);
    this.getMemory().write(ptr >>> 0, this.small.subarray(0, FDSTAT_SIZE));
    return ERRNO.SUCCESS;
  },

  fd_fdstat_set_flags(this: WasiContext, fd: number, flags: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (flags & ~(FDFLAGS.APPEND | FDFLAGS.DSYNC | FDFLAGS.NONBLOCK | FDFLAGS.RSYNC | FDFLAGS.SYNC)) return ERRNO.INVAL;
    e.fdflags = flags & 0xffff;
    return ERRNO.SUCCESS;
  },

  fd_fdstat_set_rights(this: WasiContext, fd: number, base: bigint, inheriting: bigint): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    const b = U64(base);
    const i = U64(inheriting);
    if ((b & ~e.rightsBase) !== 0n || (i & ~e.rightsInheriting) !== 0n) return ERRNO.NOTCAPABLE;
    e.rightsBase = b;
    e.rightsInheriting = i;
    return ERRNO.SUCCESS;
  },

  fd_filestat_get(this: WasiContext, fd: number, ptr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    const mem = this.getMemory();
    if (e.hostFd < 0) {
      // An in-process stream: a pipe-like stream with no identity and no size.
      this.small.fill(0, 0, FILESTAT_SIZE);
      this.small[16] = e.filetype;
      mem.write(ptr >>> 0, this.small.subarray(0, FILESTAT_SIZE));
      return ERRNO.SUCCESS;
    }
    this.writeFilestat(mem, ptr >>> 0, fstatSync(e.hostFd, { bigint: true }));
    return ERRNO.SUCCESS;
  },

  fd_filestat_set_size(this: WasiContext, fd: number, size: bigint): number {
    const e = this.file(fd, RIGHTS.FD_FILESTAT_SET_SIZE);
    if (typeof e === 'number') return e;
    if (e.kind !== KIND_FILE) return ERRNO.INVAL;
    const s = U64(size);
    if (s > MAX_SAFE) return ERRNO.FBIG;
    ftruncateSync(e.hostFd, Number(s));
    return ERRNO.SUCCESS;
  },

  fd_filestat_set_times(this: WasiContext, fd: number, atim: bigint, mtim: bigint, flags: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.hostFd < 0) return ERRNO.BADF;
    const times = this.newTimes(fstatSync(e.hostFd, { bigint: true }), atim, mtim, flags);
    if (typeof times === 'number') return times;
    futimesSync(e.hostFd, times[0], times[1]);
    return ERRNO.SUCCESS;
  },

  fd_prestat_get(this: WasiContext, fd: number, ptr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined || e.preopenName === null) return ERRNO.BADF;
    const v = this.smallView;
    this.small.fill(0, 0, PRESTAT_SIZE);
    v.setUint8(0, PREOPENTYPE_DIR);
    v.setUint32(4, e.preopenName.length, true);
    this.getMemory().write(ptr >>> 0, this.small.subarray(0, PRESTAT_SIZE));
    return ERRNO.SUCCESS;
  },

  fd_prestat_dir_name(this: WasiContext, fd: number, ptr: number, len: number): number {
    const e = this.fds.get(fd);
    if (e === undefined || e.preopenName === null) return ERRNO.BADF;
    if ((len >>> 0) < e.preopenName.length) return ERRNO.NAMETOOLONG;
    this.getMemory().write(ptr >>> 0, e.preopenName);
    return ERRNO.SUCCESS;
  },

  fd_readdir(this: WasiContext, fd: number, buf: number, bufLen: number, cookie: bigint, bufusedPtr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.kind !== KIND_DIR) return ERRNO.NOTDIR;
    const c = U64(cookie);
    if (c === 0n || e.listing === null) e.listing = list(hostPathOf(e.root, e.rel));
    const listing = e.listing;
    const cap = bufLen >>> 0;
    const first = c > BigInt(listing.names.length) ? listing.names.length : Number(c);
    // Entries are serialised back to back; the last one is cut at `cap` (the guest then sees
    // bufused == buf_len and asks again from that entry's cookie with a bigger buffer).
    let need = 0;
    for (let i = first; i < listing.names.length && need < cap; i++) need += DIRENT_HEADER_SIZE + listing.names[i]!.length;
    const out = new Uint8Array(Math.min(need, cap));
    const view = new DataView(out.buffer);
    let used = 0;
    for (let i = first; i < listing.names.length && used < out.length; i++) {
      const name = listing.names[i]!;
      if (used + DIRENT_HEADER_SIZE <= out.length) {
        writeDirentHeader(view, used, listing, i);
        out.set(name.subarray(0, out.length - used - DIRENT_HEADER_SIZE), used + DIRENT_HEADER_SIZE);
      } else {
        const header = new Uint8Array(DIRENT_HEADER_SIZE);
        writeDirentHeader(new DataView(header.buffer), 0, listing, i);
        out.set(header.subarray(0, out.length - used), used);
      }
      used = Math.min(out.length, used + DIRENT_HEADER_SIZE + name.length);
    }
    const mem = this.getMemory();
    if (used > 0) mem.write(buf >>> 0, out.subarray(0, used));
    this.writeU32(mem, bufusedPtr >>> 0, used);
    return ERRNO.SUCCESS;
  },
} satisfies SyscallFamily;
