/**
 * @fileoverview `WasiContext`: the state every WASI call works on (fd table, argv/environ, guest
 * memory accessor, staging buffers) and the helpers the syscall families share (iovecs, paths,
 * filestat, clocks, rights). The calls themselves live in `syscalls/*.ts`, one file per family; each
 * is a function with `this: WasiContext`, bound to one context by `Wasi.imports()`.
 *
 * Rules every call follows:
 * - Guest memory is touched only through `getMemory()`, fetched on each call (memory may grow, and
 *   the embedder may install it after instantiation). Bulk data moves through one reusable scratch
 *   buffer; fixed-size structs are built in `small` and written once.
 * - A call returns an errno; it throws only `WasiExit`, farmem runtime failures and host errors,
 *   which `Wasi.imports()` maps to an errno (see `Wasi.fail`).
 */

import { type BigIntStats } from 'node:fs';
import { FarmemError } from '../errors.js';
import type { VirtualMemory } from '../runtime/virtual-memory.js';
import {
  CLOCKID, ERRNO, EVENT_SIZE, FDSTAT_SIZE, FILESTAT_SIZE, FILETYPE, FSTFLAGS, IOVEC_SIZE,
} from './constants.js';
import { FdEntry, FdTable, KIND_DIR } from './fd-table.js';
import { hostPathOf, resolveGuestPath, MAX_PATH_BYTES } from './sandbox.js';

/** Starting size of the data scratch buffer; it doubles on demand up to `SCRATCH_MAX`. */
const SCRATCH_MIN = 64 * 1024;
/** Largest single host read/write; bigger iovecs are moved in chunks of this size. */
export const SCRATCH_MAX = 1024 * 1024;
/** POSIX IOV_MAX: more iovecs in one call is EINVAL. */
const IOV_MAX = 1024;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
export const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
export const U64 = (v: bigint): bigint => BigInt.asUintN(64, v);

export const textEncoder = new TextEncoder();
const pathDecoder = new TextDecoder('utf-8', { fatal: true });

/** NUL-terminated strings back to back (`buf`) and where each starts (`offsets`). */
export interface CStrings {
  buf: Uint8Array;
  offsets: Uint32Array;
}

function encodeCStrings(strings: readonly string[]): CStrings {
  const encoded = strings.map((s) => textEncoder.encode(s));
  const offsets = new Uint32Array(strings.length);
  let size = 0;
  encoded.forEach((b, i) => { offsets[i] = size; size += b.length + 1; });
  const buf = new Uint8Array(size);
  encoded.forEach((b, i) => buf.set(b, offsets[i]!));
  return { buf, offsets };
}

type StatLike = { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean };

export function filetypeOfStats(st: StatLike): number {
  if (st.isFile()) return FILETYPE.REGULAR_FILE;
  if (st.isDirectory()) return FILETYPE.DIRECTORY;
  if (st.isSymbolicLink()) return FILETYPE.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return FILETYPE.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return FILETYPE.BLOCK_DEVICE;
  if (st.isFIFO() || st.isSocket()) return FILETYPE.SOCKET_STREAM;
  return FILETYPE.UNKNOWN;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` milliseconds (WASI calls are synchronous). */
export function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

/** A path resolved below a directory fd. */
export interface ResolvedPath {
  dir: FdEntry;
  rel: string[];
  host: string;
}

export class WasiContext {
  readonly fds = new FdTable();
  readonly args: CStrings;
  readonly env: CStrings;
  getMemory: () => VirtualMemory;
  private scratch: Uint8Array;
  /** Fixed-size struct staging area (filestat, fdstat, events are built here, then written once). */
  readonly small = new Uint8Array(Math.max(FILESTAT_SIZE, FDSTAT_SIZE, EVENT_SIZE, 16));
  readonly smallView = new DataView(this.small.buffer);
  /** iovec staging: the guest's array is copied in once per call; `iovWords` aliases it as u32s. */
  private readonly iovBytes = new Uint8Array(IOV_MAX * IOVEC_SIZE);
  private readonly iovWords = new Uint32Array(this.iovBytes.buffer);
  private readonly iovView = new DataView(this.iovBytes.buffer);
  private readonly realtimeBase: bigint;

  constructor(args: readonly string[], env: readonly string[]) {
    this.args = encodeCStrings(args);
    this.env = encodeCStrings(env);
    this.getMemory = () => {
      throw new FarmemError('FM_ERR_WASI_NO_MEMORY', 'Wasi.imports(getMemory) was not called before the guest ran');
    };
    this.scratch = new Uint8Array(SCRATCH_MIN);
    this.realtimeBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  /** The scratch buffer, grown (doubling, up to SCRATCH_MAX) to hold `n` bytes if it can. */
  scratchOf(n: number): Uint8Array {
    if (this.scratch.length < n) {
      let size = this.scratch.length;
      while (size < n && size < SCRATCH_MAX) size *= 2;
      this.scratch = new Uint8Array(size);
    }
    return this.scratch;
  }

  /**
   * Reads `count` iovecs at `ptr` with one memory access into a reusable array: `iov[2i]` is the
   * buffer address and `iov[2i + 1]` its length. Bounded by IOV_MAX.
   */
  readIovecs(mem: VirtualMemory, ptr: number, count: number): Uint32Array | number {
    if (count > IOV_MAX) return ERRNO.INVAL;
    const raw = this.iovBytes.subarray(0, count * IOVEC_SIZE);
    mem.readInto(ptr, raw);
    const iov = this.iovWords.subarray(0, count * 2);
    if (LITTLE_ENDIAN_HOST) return iov;
    for (let i = 0; i < count * 2; i++) iov[i] = this.iovView.getUint32(i * 4, true);
    return iov;
  }

  readPath(mem: VirtualMemory, ptr: number, len: number): string | number {
    if (len > MAX_PATH_BYTES) return ERRNO.NAMETOOLONG;
    const buf = this.scratchOf(len).subarray(0, len);
    mem.readInto(ptr, buf);
    try {
      return pathDecoder.decode(buf);
    } catch {
      return ERRNO.ILSEQ;
    }
  }

  /** Host path of `path` under directory fd `fd`, or an errno. */
  resolveAt(mem: VirtualMemory, fd: number, ptr: number, len: number, follow: boolean): ResolvedPath | number {
    const dir = this.fds.get(fd);
    if (dir === undefined) return ERRNO.BADF;
    if (dir.kind !== KIND_DIR) return ERRNO.NOTDIR;
    const path = this.readPath(mem, ptr, len);
    if (typeof path === 'number') return path;
    const rel = resolveGuestPath(dir, path, follow);
    if (typeof rel === 'number') return rel;
    return { dir, rel, host: hostPathOf(dir.root, rel) };
  }

  /** Resolves a path whose last component is created, removed or renamed (never the root itself). */
  resolveEntry(mem: VirtualMemory, fd: number, ptr: number, len: number): ResolvedPath | number {
    const r = this.resolveAt(mem, fd, ptr >>> 0, len >>> 0, false);
    if (typeof r === 'number') return r;
    // Creating, removing or renaming the preopened directory itself changes its parent, outside.
    if (r.rel.length === 0) return ERRNO.NOTCAPABLE;
    return r;
  }

  writeU32(mem: VirtualMemory, ptr: number, value: number): void {
    mem.setUint32(ptr, value >>> 0);
  }

  writeU64(mem: VirtualMemory, ptr: number, value: bigint): void {
    mem.setBigUint64(ptr, U64(value));
  }

  writeFilestat(mem: VirtualMemory, ptr: number, st: BigIntStats): void {
    const v = this.smallView;
    this.small.fill(0, 0, FILESTAT_SIZE);
    v.setBigUint64(0, U64(st.dev), true);
    v.setBigUint64(8, U64(st.ino), true);
    v.setUint8(16, filetypeOfStats(st));
    v.setBigUint64(24, U64(st.nlink), true);
    v.setBigUint64(32, U64(st.size), true);
    v.setBigUint64(40, U64(st.atimeNs), true);
    v.setBigUint64(48, U64(st.mtimeNs), true);
    v.setBigUint64(56, U64(st.ctimeNs), true);
    mem.write(ptr, this.small.subarray(0, FILESTAT_SIZE));
  }

  /** New (atime, mtime) in seconds for `*_set_times`, or an errno for contradictory flags. */
  newTimes(current: BigIntStats | null, atim: bigint, mtim: bigint, flags: number): [number, number] | number {
    if ((flags & FSTFLAGS.ATIM && flags & FSTFLAGS.ATIM_NOW) || (flags & FSTFLAGS.MTIM && flags & FSTFLAGS.MTIM_NOW)) return ERRNO.INVAL;
    const nowS = Date.now() / 1000;
    const toS = (ns: bigint): number => Number(ns) / 1e9;
    const a = flags & FSTFLAGS.ATIM ? toS(U64(atim)) : flags & FSTFLAGS.ATIM_NOW ? nowS : toS(current!.atimeNs);
    const m = flags & FSTFLAGS.MTIM ? toS(U64(mtim)) : flags & FSTFLAGS.MTIM_NOW ? nowS : toS(current!.mtimeNs);
    return [a, m];
  }

  /** The time of clock `id` in ns, or EINVAL for an unknown clock. */
  now(id: number): bigint | number {
    switch (id) {
      case CLOCKID.REALTIME: return this.realtimeBase + process.hrtime.bigint();
      case CLOCKID.MONOTONIC: return process.hrtime.bigint();
      case CLOCKID.PROCESS_CPUTIME_ID:
      case CLOCKID.THREAD_CPUTIME_ID: {
        const u = process.cpuUsage();
        return BigInt(u.user + u.system) * 1000n;
      }
      default: return ERRNO.INVAL;
    }
  }

  /** The entry of `fd` if it has `right`; else EBADF, EISDIR (a directory) or ENOTCAPABLE. */
  file(fd: number, right: bigint): FdEntry | number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if ((e.rightsBase & right) === 0n) return e.kind === KIND_DIR ? ERRNO.ISDIR : ERRNO.NOTCAPABLE;
    return e;
  }
}
