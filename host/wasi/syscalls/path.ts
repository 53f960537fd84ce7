/**
 * @fileoverview WASI path calls: open, stat, set times, mkdir/rmdir/unlink, rename, link, readlink
 * and symlink. Every path is resolved inside the directory fd's preopen by `sandbox.ts` (through the
 * context's `resolveAt`/`resolveEntry`); the host then follows no symlink itself.
 */

import {
  closeSync, fstatSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readlinkSync, renameSync,
  rmdirSync, symlinkSync, unlinkSync, constants as fsc,
} from 'node:fs';
import {
  ERRNO, FDFLAGS, FILETYPE, LOOKUP_SYMLINK_FOLLOW, OFLAGS, RIGHTS_DIR_BASE, RIGHTS_FILE_BASE,
  RIGHTS_NEED_READ, RIGHTS_NEED_WRITE,
} from '../constants.js';
import { filetypeOfStats, U64, type WasiContext } from '../context.js';
import { FdEntry, KIND_DIR, KIND_FILE } from '../fd-table.js';
import type { SyscallFamily } from './table.js';

/** Resolves a path to create or remove (`resolveEntry`) and applies `op` to its host path. */
function atEntry(ctx: WasiContext, fd: number, pathPtr: number, pathLen: number, op: (host: string) => void): number {
  const r = ctx.resolveEntry(ctx.getMemory(), fd, pathPtr, pathLen);
  if (typeof r === 'number') return r;
  op(r.host);
  return ERRNO.SUCCESS;
}

export const path = {
  path_open(this: WasiContext, dirFd: number, dirflags: number, pathPtr: number, pathLen: number, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number, fdPtr: number): number {
    const mem = this.getMemory();
    const r = this.resolveAt(mem, dirFd, pathPtr >>> 0, pathLen >>> 0, (dirflags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof r === 'number') return r;
    const base = U64(rightsBase);
    const wantRead = (base & RIGHTS_NEED_READ) !== 0n;
    const wantWrite = (base & RIGHTS_NEED_WRITE) !== 0n || (oflags & OFLAGS.TRUNC) !== 0 || (fdflags & FDFLAGS.APPEND) !== 0;
    let flags = wantWrite ? (wantRead ? fsc.O_RDWR : fsc.O_WRONLY) : fsc.O_RDONLY;
    if (oflags & OFLAGS.CREAT) flags |= fsc.O_CREAT;
    if (oflags & OFLAGS.EXCL) flags |= fsc.O_EXCL;
    if (oflags & OFLAGS.TRUNC) flags |= fsc.O_TRUNC;
    if (oflags & OFLAGS.DIRECTORY) flags |= fsc.O_DIRECTORY;
    // The resolver already followed every symlink it was allowed to; the host must follow none.
    flags |= fsc.O_NOFOLLOW;
    if (r.rel.length === 0 && (oflags & (OFLAGS.CREAT | OFLAGS.TRUNC)) !== 0) return ERRNO.ISDIR;
    const hostFd = openSync(r.host, flags, 0o666);
    let entry: FdEntry;
    try {
      const filetype = filetypeOfStats(fstatSync(hostFd));
      const inheriting = U64(rightsInheriting) & r.dir.rightsInheriting;
      if (filetype === FILETYPE.DIRECTORY) {
        entry = new FdEntry(KIND_DIR, hostFd, filetype, base & RIGHTS_DIR_BASE & r.dir.rightsInheriting, inheriting);
        entry.rel = r.rel;
      } else {
        entry = new FdEntry(KIND_FILE, hostFd, filetype, base & RIGHTS_FILE_BASE & r.dir.rightsInheriting, inheriting);
      }
      entry.root = r.dir.root;
      entry.fdflags = fdflags & 0xffff;
    } catch (e) {
      closeSync(hostFd);
      throw e;
    }
    const fd = this.fds.allocate(entry);
    if (fd < 0) {
      closeSync(hostFd);
      return -fd;
    }
    try {
      this.writeU32(mem, fdPtr >>> 0, fd);
    } catch (e) {
      this.fds.remove(fd);
      closeSync(hostFd);
      throw e;
    }
    return ERRNO.SUCCESS;
  },

  path_filestat_get(this: WasiContext, fd: number, flags: number, pathPtr: number, pathLen: number, ptr: number): number {
    const mem = this.getMemory();
    const r = this.resolveAt(mem, fd, pathPtr >>> 0, pathLen >>> 0, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof r === 'number') return r;
    // lstat: with follow, the resolver has already replaced a final symlink by its target.
    this.writeFilestat(mem, ptr >>> 0, lstatSync(r.host, { bigint: true }));
    return ERRNO.SUCCESS;
  },

  path_filestat_set_times(this: WasiContext, fd: number, flags: number, pathPtr: number, pathLen: number, atim: bigint, mtim: bigint, fstFlags: number): number {
    const r = this.resolveAt(this.getMemory(), fd, pathPtr >>> 0, pathLen >>> 0, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof r === 'number') return r;
    const times = this.newTimes(lstatSync(r.host, { bigint: true }), atim, mtim, fstFlags);
    if (typeof times === 'number') return times;
    lutimesSync(r.host, times[0], times[1]);
    return ERRNO.SUCCESS;
  },

  path_create_directory(this: WasiContext, fd: number, pathPtr: number, pathLen: number): number {
    return atEntry(this, fd, pathPtr, pathLen, (host) => mkdirSync(host));
  },

  path_remove_directory(this: WasiContext, fd: number, pathPtr: number, pathLen: number): number {
    return atEntry(this, fd, pathPtr, pathLen, (host) => rmdirSync(host));
  },

  path_unlink_file(this: WasiContext, fd: number, pathPtr: number, pathLen: number): number {
    return atEntry(this, fd, pathPtr, pathLen, (host) => unlinkSync(host));
  },

  path_rename(this: WasiContext, fd: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): number {
    const mem = this.getMemory();
    const from = this.resolveEntry(mem, fd, oldPtr, oldLen);
    if (typeof from === 'number') return from;
    const to = this.resolveEntry(mem, newFd, newPtr, newLen);
    if (typeof to === 'number') return to;
    renameSync(from.host, to.host);
    return ERRNO.SUCCESS;
  },

  path_link(this: WasiContext, oldFd: number, oldFlags: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): number {
    const mem = this.getMemory();
    const from = this.resolveAt(mem, oldFd, oldPtr >>> 0, oldLen >>> 0, (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof from === 'number') return from;
    const to = this.resolveEntry(mem, newFd, newPtr, newLen);
    if (typeof to === 'number') return to;
    linkSync(from.host, to.host);
    return ERRNO.SUCCESS;
  },

  path_readlink(this: WasiContext, fd: number, pathPtr: number, pathLen: number, buf: number, bufLen: number, bufusedPtr: number): number {
    const mem = this.getMemory();
    const r = this.resolveAt(mem, fd, pathPtr >>> 0, pathLen >>> 0, false);
    if (typeof r === 'number') return r;
    const target = readlinkSync(r.host, { encoding: 'buffer' });
    const n = Math.min(target.length, bufLen >>> 0);
    mem.write(buf >>> 0, target.subarray(0, n));
    this.writeU32(mem, bufusedPtr >>> 0, n);
    return ERRNO.SUCCESS;
  },

  path_symlink(this: WasiContext, oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number): number {
    const mem = this.getMemory();
    const target = this.readPath(mem, oldPtr >>> 0, oldLen >>> 0);
    if (typeof target === 'number') return target;
    // An absolute target names a host path; the guest could never follow it, so do not create it.
    if (target.startsWith('/')) return ERRNO.NOTCAPABLE;
    if (target.includes('\0')) return ERRNO.ILSEQ;
    const r = this.resolveEntry(mem, fd, newPtr, newLen);
    if (typeof r === 'number') return r;
    symlinkSync(target, r.host);
    return ERRNO.SUCCESS;
  },
} satisfies SyscallFamily;
