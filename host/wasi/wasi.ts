/**
 * @fileoverview `Wasi`: WASI preview1 for a guest whose memory the host reaches only through a
 * `VirtualMemory` (farmem's far memory, or `PlainMemory` for an ordinary module). Files are real host
 * files through synchronous `node:fs` calls; every path is resolved inside a preopened directory.
 *
 *   const wasi = new Wasi({ args: ['prog', 'x'], preopens: { '/data': './data' } });
 *   const instance = new WebAssembly.Instance(module, wasi.imports(() => memory));
 *   const exitCode = wasi.start(instance.exports);
 *
 * Rules every import follows:
 * - Guest memory is touched only through `getMemory()`, fetched on each call (memory may grow, and
 *   the embedder may install it after instantiation). Bulk data moves through one reusable scratch
 *   buffer: `fd_read` reads from the host into it and `mem.write`s it; `fd_write` gathers iovecs into
 *   it and writes once.
 * - Nothing but `WasiExit` (from `proc_exit`) and farmem's own runtime failures (`FarmemError`, e.g.
 *   a page store that is gone) crosses the boundary: a guest pointer outside memory (`RangeError`) is
 *   `EFAULT`, a host error is its errno, anything unexpected is `EIO` and is logged under
 *   `NODE_DEBUG=farmem`.
 */

import {
  closeSync, fdatasyncSync, fstatSync, fsyncSync, ftruncateSync, futimesSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, renameSync, rmdirSync,
  symlinkSync, unlinkSync, writeSync, constants as fsc, type BigIntStats,
} from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { isatty } from 'node:tty';
import { debuglog } from 'node:util';
import { FarmemError } from '../errors.js';
import type { VirtualMemory } from '../runtime/virtual-memory.js';
import {
  ADVICE_MAX, CLOCKID, DIRENT_HEADER_SIZE, ERRNO, errnoFromNodeCode, EVENT_SIZE, EVENTTYPE, FDFLAGS,
  FDSTAT_SIZE, FILESTAT_SIZE, FILETYPE, FSTFLAGS, IOVEC_SIZE, LOOKUP_SYMLINK_FOLLOW, OFLAGS,
  PREOPENTYPE_DIR, PRESTAT_SIZE, RIGHTS, RIGHTS_ALL, RIGHTS_DIR_BASE, RIGHTS_FILE_BASE,
  RIGHTS_NEED_READ, RIGHTS_NEED_WRITE, RIGHTS_STREAM_BASE, SUBCLOCK_ABSTIME, SUBSCRIPTION_SIZE,
  WASI_FUNCTIONS, WASI_MODULE, WHENCE, type WasiFunctionName,
} from './constants.js';
import { WasiExit } from './exit.js';
import { FdEntry, FdTable, KIND_DIR, KIND_FILE, KIND_STREAM, type DirListing, type OutputSink } from './fd-table.js';
import { resolveWasiOptions, type ResolvedWasiOptions, type StdinSpec, type StdoutSpec, type WasiOptions } from './options.js';
import { hostPathOf, resolveGuestPath, MAX_PATH_BYTES } from './sandbox.js';

const debug = debuglog('farmem');

/** Starting size of the data scratch buffer; it doubles on demand up to `SCRATCH_MAX`. */
const SCRATCH_MIN = 64 * 1024;
/** Largest single host read/write; bigger iovecs are moved in chunks of this size. */
const SCRATCH_MAX = 1024 * 1024;
/** POSIX IOV_MAX: more iovecs in one call is EINVAL. */
const IOV_MAX = 1024;
/** Largest poll_oneoff batch accepted (each subscription is 48 bytes of guest memory). */
const MAX_SUBSCRIPTIONS = 4096;
/** Sleep between retries when a non-blocking host stdio fd says EAGAIN. */
const EAGAIN_SLEEP_MS = 1;
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const U64 = (v: bigint): bigint => BigInt.asUintN(64, v);

/** The `wasi_snapshot_preview1` import namespace. */
export type WasiImportNamespace = Record<WasiFunctionName, (...args: never[]) => number | void>;

const textEncoder = new TextEncoder();
const pathDecoder = new TextDecoder('utf-8', { fatal: true });

function encodeCStrings(strings: readonly string[]): { buf: Uint8Array; offsets: Uint32Array } {
  const encoded = strings.map((s) => textEncoder.encode(s));
  const offsets = new Uint32Array(strings.length);
  let size = 0;
  encoded.forEach((b, i) => { offsets[i] = size; size += b.length + 1; });
  const buf = new Uint8Array(size);
  encoded.forEach((b, i) => buf.set(b, offsets[i]!));
  return { buf, offsets };
}

function filetypeOfStats(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): number {
  if (st.isFile()) return FILETYPE.REGULAR_FILE;
  if (st.isDirectory()) return FILETYPE.DIRECTORY;
  if (st.isSymbolicLink()) return FILETYPE.SYMBOLIC_LINK;
  if (st.isCharacterDevice()) return FILETYPE.CHARACTER_DEVICE;
  if (st.isBlockDevice()) return FILETYPE.BLOCK_DEVICE;
  if (st.isFIFO() || st.isSocket()) return FILETYPE.SOCKET_STREAM;
  return FILETYPE.UNKNOWN;
}

function isNodeCode(e: unknown, code: string): boolean {
  return (e as { code?: unknown } | null)?.code === code;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleepCell, 0, 0, ms);
}

export class Wasi {
  private readonly options: ResolvedWasiOptions;
  private readonly fds = new FdTable();
  private readonly args: { buf: Uint8Array; offsets: Uint32Array };
  private readonly env: { buf: Uint8Array; offsets: Uint32Array };
  private getMemory: () => VirtualMemory;
  private scratch: Uint8Array;
  /** Fixed-size struct staging area (filestat, fdstat, events are built here, then written once). */
  private readonly small = new Uint8Array(Math.max(FILESTAT_SIZE, FDSTAT_SIZE, EVENT_SIZE, 16));
  private readonly smallView = new DataView(this.small.buffer);
  /** iovec staging: the guest's array is copied in once per call; `iovWords` aliases it as u32s. */
  private readonly iovBytes = new Uint8Array(IOV_MAX * IOVEC_SIZE);
  private readonly iovWords = new Uint32Array(this.iovBytes.buffer);
  private readonly iovView = new DataView(this.iovBytes.buffer);
  private readonly realtimeBase: bigint;
  private started = false;
  /** Unexpected (non-errno) host failures turned into EIO, for tests and diagnostics. */
  internalErrors = 0;

  constructor(options: WasiOptions = {}) {
    this.options = resolveWasiOptions(options);
    this.args = encodeCStrings(this.options.args);
    this.env = encodeCStrings(this.options.env.map(([k, v]) => `${k}=${v}`));
    this.getMemory = () => {
      throw new FarmemError('FM_ERR_WASI_NO_MEMORY', 'Wasi.imports(getMemory) was not called before the guest ran');
    };
    this.scratch = new Uint8Array(SCRATCH_MIN);
    this.realtimeBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    this.fds.set(0, this.stdinEntry(this.options.stdin));
    this.fds.set(1, this.outputEntry(this.options.stdout, 1));
    this.fds.set(2, this.outputEntry(this.options.stderr, 2));
    let fd = 3;
    for (const p of this.options.preopens) {
      const hostFd = openSync(p.host, fsc.O_RDONLY | fsc.O_DIRECTORY);
      const entry = new FdEntry(KIND_DIR, hostFd, FILETYPE.DIRECTORY, RIGHTS_DIR_BASE, RIGHTS_ALL);
      entry.root = p.host;
      entry.preopenName = textEncoder.encode(p.guest);
      this.fds.set(fd++, entry);
    }
  }

  private stdinEntry(spec: StdinSpec | undefined): FdEntry {
    if (typeof spec === 'string' || spec instanceof Uint8Array) {
      const e = new FdEntry(KIND_STREAM, -1, FILETYPE.SOCKET_STREAM, RIGHTS_STREAM_BASE, 0n);
      e.source = typeof spec === 'string' ? textEncoder.encode(spec) : spec;
      return e;
    }
    return this.hostStreamEntry(spec === undefined ? 0 : typeof spec === 'number' ? spec : spec.fd);
  }

  private outputEntry(spec: StdoutSpec | undefined, defaultFd: number): FdEntry {
    if (spec === undefined) return this.hostStreamEntry(defaultFd);
    if (typeof spec === 'number') return this.hostStreamEntry(spec);
    if (typeof (spec as { fd?: unknown }).fd === 'number') return this.hostStreamEntry((spec as { fd: number }).fd);
    // In-process streams look like pipes (as node:wasi reports a piped stdio fd): not a tty.
    const e = new FdEntry(KIND_STREAM, -1, FILETYPE.SOCKET_STREAM, RIGHTS_STREAM_BASE, 0n);
    e.sink = typeof spec === 'function' ? { write: spec } : (spec as OutputSink);
    return e;
  }

  private hostStreamEntry(hostFd: number): FdEntry {
    let filetype: number = FILETYPE.UNKNOWN;
    try {
      filetype = filetypeOfStats(fstatSync(hostFd));
    } catch {
      // A closed stdio fd: calls on it fail with EBADF when they happen.
    }
    // wasi-libc's isatty() is "character device without SEEK/TELL rights": give a character device
    // that is not a terminal (/dev/null) those rights so it is not taken for one.
    const rights = filetype === FILETYPE.CHARACTER_DEVICE && !isatty(hostFd) ? RIGHTS_STREAM_BASE | RIGHTS.FD_SEEK | RIGHTS.FD_TELL : RIGHTS_STREAM_BASE;
    const e = new FdEntry(KIND_STREAM, hostFd, filetype, rights, 0n);
    e.ownsHostFd = false;
    return e;
  }

  /**
   * The import object for `WebAssembly.instantiate`: `{ wasi_snapshot_preview1: { …every function
   * in WASI_FUNCTIONS } }`. `getMemory` is called on each WASI call, so it may be bound to an
   * instance that does not exist yet.
   */
  imports(getMemory: () => VirtualMemory): { [WASI_MODULE]: WasiImportNamespace } {
    this.getMemory = getMemory;
    const ns = {} as Record<string, unknown>;
    for (const name of WASI_FUNCTIONS) {
      const impl = (this as unknown as Record<string, (...a: unknown[]) => number>)[`_${name}`]!.bind(this);
      // Fixed arity (preview1's widest call, path_open, has 9 parameters): no rest-array per call.
      ns[name] = (a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown, g: unknown, h: unknown, i: unknown): number => {
        try {
          return impl(a, b, c, d, e, f, g, h, i);
        } catch (err) {
          return this.fail(name, err);
        }
      };
    }
    return { [WASI_MODULE]: ns as WasiImportNamespace };
  }

  /**
   * Runs a command's `_start` and returns its exit code (0 if `_start` returns). Closes every fd the
   * guest opened afterwards. With `returnOnExit: false`, ends the process with the code instead.
   */
  start(exports: WebAssembly.Exports): number {
    if (this.started) throw new FarmemError('FM_ERR_WASI_STARTED', 'Wasi.start() may be called only once per Wasi instance');
    this.started = true;
    const entry = exports['_start'];
    if (typeof entry !== 'function') {
      throw new FarmemError('FM_ERR_NOT_A_COMMAND', 'module exports no _start function: it is not a WASI command (for a library module, call its exports directly)');
    }
    let code = 0;
    try {
      (entry as () => void)();
    } catch (e) {
      if (!(e instanceof WasiExit)) throw e;
      code = e.code;
    } finally {
      this.closeAll();
    }
    if (!this.options.returnOnExit) process.exit(code);
    return code;
  }

  /** Closes every host fd this instance opened (preopens and files the guest left open). */
  closeAll(): void {
    for (const [fd, entry] of this.fds.entries()) {
      if (entry.ownsHostFd && entry.hostFd >= 0) {
        try { closeSync(entry.hostFd); } catch { /* already gone */ }
      }
      this.fds.remove(fd);
    }
  }

  private fail(name: string, err: unknown): number {
    if (err instanceof WasiExit || err instanceof FarmemError) throw err;
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string') {
      if (/^E[A-Z0-9]+$/.test(code)) return errnoFromNodeCode(code);
      if (code.startsWith('ERR_')) return ERRNO.INVAL; // Node rejected an argument (e.g. an offset out of range)
    }
    if (err instanceof RangeError) return ERRNO.FAULT; // VirtualMemory: guest pointer outside memory
    this.internalErrors++;
    debug('wasi %s: unexpected %o', name, err);
    return ERRNO.IO;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private scratchOf(n: number): Uint8Array {
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
  private readIovecs(mem: VirtualMemory, ptr: number, count: number): Uint32Array | number {
    if (count > IOV_MAX) return ERRNO.INVAL;
    const raw = this.iovBytes.subarray(0, count * IOVEC_SIZE);
    mem.readInto(ptr, raw);
    const iov = this.iovWords.subarray(0, count * 2);
    if (LITTLE_ENDIAN_HOST) return iov;
    for (let i = 0; i < count * 2; i++) iov[i] = this.iovView.getUint32(i * 4, true);
    return iov;
  }

  private readPath(mem: VirtualMemory, ptr: number, len: number): string | number {
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
  private resolveAt(mem: VirtualMemory, fd: number, ptr: number, len: number, follow: boolean): { dir: FdEntry; rel: string[]; host: string } | number {
    const dir = this.fds.get(fd);
    if (dir === undefined) return ERRNO.BADF;
    if (dir.kind !== KIND_DIR) return ERRNO.NOTDIR;
    const path = this.readPath(mem, ptr, len);
    if (typeof path === 'number') return path;
    const rel = resolveGuestPath(dir, path, follow);
    if (typeof rel === 'number') return rel;
    return { dir, rel, host: hostPathOf(dir.root, rel) };
  }

  private writeU32(mem: VirtualMemory, ptr: number, value: number): void {
    mem.setUint32(ptr, value >>> 0);
  }

  private writeU64(mem: VirtualMemory, ptr: number, value: bigint): void {
    mem.setBigUint64(ptr, U64(value));
  }

  /** Writes `len` bytes of `buf` to a host fd, retrying short writes and EAGAIN. */
  private writeAllHost(fd: number, buf: Uint8Array, len: number, position: number | null): void {
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
  private readHost(entry: FdEntry, buf: Uint8Array, len: number, position: number | null): number {
    if (entry.source !== null) {
      const n = Math.min(len, entry.source.length - entry.sourcePos);
      buf.set(entry.source.subarray(entry.sourcePos, entry.sourcePos + n));
      entry.sourcePos += n;
      return n;
    }
    if (entry.sink !== null) throw Object.assign(new Error('read from an output stream'), { code: 'EBADF' });
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

  private writeFilestat(mem: VirtualMemory, ptr: number, st: BigIntStats): void {
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
  private newTimes(current: BigIntStats | null, atim: bigint, mtim: bigint, flags: number): [number, number] | number {
    if ((flags & FSTFLAGS.ATIM && flags & FSTFLAGS.ATIM_NOW) || (flags & FSTFLAGS.MTIM && flags & FSTFLAGS.MTIM_NOW)) return ERRNO.INVAL;
    const nowS = Date.now() / 1000;
    const toS = (ns: bigint): number => Number(ns) / 1e9;
    const a = flags & FSTFLAGS.ATIM ? toS(U64(atim)) : flags & FSTFLAGS.ATIM_NOW ? nowS : toS(current!.atimeNs);
    const m = flags & FSTFLAGS.MTIM ? toS(U64(mtim)) : flags & FSTFLAGS.MTIM_NOW ? nowS : toS(current!.mtimeNs);
    return [a, m];
  }

  private now(id: number): bigint | number {
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

  private file(fd: number, right: bigint): FdEntry | number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if ((e.rightsBase & right) === 0n) return e.kind === KIND_DIR ? ERRNO.ISDIR : ERRNO.NOTCAPABLE;
    return e;
  }

  // ---- args, environ, clocks, random, process ----------------------------------------------------

  private writeStrings(mem: VirtualMemory, ptrs: number, buf: number, data: { buf: Uint8Array; offsets: Uint32Array }): number {
    const table = new Uint8Array(data.offsets.length * 4);
    const view = new DataView(table.buffer);
    const base = buf >>> 0;
    data.offsets.forEach((off, i) => view.setUint32(i * 4, base + off, true));
    mem.write(ptrs >>> 0, table);
    mem.write(base, data.buf);
    return ERRNO.SUCCESS;
  }

  protected _args_get(argv: number, argvBuf: number): number {
    return this.writeStrings(this.getMemory(), argv, argvBuf, this.args);
  }
  protected _args_sizes_get(argcPtr: number, sizePtr: number): number {
    const mem = this.getMemory();
    this.writeU32(mem, argcPtr >>> 0, this.args.offsets.length);
    this.writeU32(mem, sizePtr >>> 0, this.args.buf.length);
    return ERRNO.SUCCESS;
  }
  protected _environ_get(environ: number, environBuf: number): number {
    return this.writeStrings(this.getMemory(), environ, environBuf, this.env);
  }
  protected _environ_sizes_get(countPtr: number, sizePtr: number): number {
    const mem = this.getMemory();
    this.writeU32(mem, countPtr >>> 0, this.env.offsets.length);
    this.writeU32(mem, sizePtr >>> 0, this.env.buf.length);
    return ERRNO.SUCCESS;
  }

  protected _clock_res_get(id: number, resPtr: number): number {
    const res = id === CLOCKID.MONOTONIC ? 1n : id === CLOCKID.REALTIME ? 1000n : id === CLOCKID.PROCESS_CPUTIME_ID || id === CLOCKID.THREAD_CPUTIME_ID ? 1000n : -1n;
    if (res < 0n) return ERRNO.INVAL;
    this.writeU64(this.getMemory(), resPtr >>> 0, res);
    return ERRNO.SUCCESS;
  }
  protected _clock_time_get(id: number, _precision: bigint, timePtr: number): number {
    const t = this.now(id);
    if (typeof t === 'number') return t;
    this.writeU64(this.getMemory(), timePtr >>> 0, t);
    return ERRNO.SUCCESS;
  }

  protected _random_get(buf: number, len: number): number {
    const mem = this.getMemory();
    let addr = buf >>> 0;
    let left = len >>> 0;
    const chunk = this.scratchOf(Math.min(left, SCRATCH_MAX));
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      const part = chunk.subarray(0, n);
      randomFillSync(part);
      mem.write(addr, part);
      addr += n;
      left -= n;
    }
    return ERRNO.SUCCESS;
  }

  protected _proc_exit(code: number): never {
    throw new WasiExit(code >>> 0);
  }
  protected _proc_raise(_sig: number): number {
    return ERRNO.NOSYS;
  }
  protected _sched_yield(): number {
    return ERRNO.SUCCESS;
  }

  // ---- fd I/O ------------------------------------------------------------------------------------

  protected _fd_read(fd: number, iovs: number, iovsLen: number, nreadPtr: number): number {
    return this.doRead(fd, iovs, iovsLen, null, nreadPtr);
  }
  protected _fd_pread(fd: number, iovs: number, iovsLen: number, offset: bigint, nreadPtr: number): number {
    const off = U64(offset);
    if (off > MAX_SAFE) return ERRNO.INVAL;
    return this.doRead(fd, iovs, iovsLen, Number(off), nreadPtr);
  }

  private doRead(fd: number, iovsPtr: number, iovsLen: number, at: number | null, nreadPtr: number): number {
    const e = this.file(fd, RIGHTS.FD_READ);
    if (typeof e === 'number') return e;
    if (e.kind === KIND_DIR) return ERRNO.ISDIR;
    if (at !== null && e.kind !== KIND_FILE) return ERRNO.SPIPE;
    const mem = this.getMemory();
    const iov = this.readIovecs(mem, iovsPtr >>> 0, iovsLen >>> 0);
    if (typeof iov === 'number') return iov;
    let total = 0;
    let pos = at ?? e.position;
    const positional = e.kind === KIND_FILE;
    outer: for (let i = 0; i < iov.length; i += 2) {
      let addr = iov[i]!;
      let left = iov[i + 1]!;
      while (left > 0) {
        const want = Math.min(left, SCRATCH_MAX);
        const buf = this.scratchOf(want);
        const n = this.readHost(e, buf, want, positional ? pos : null);
        if (n > 0) mem.write(addr, buf.subarray(0, n));
        total += n;
        pos += n;
        addr += n;
        left -= n;
        if (n < want) break outer; // end of file, or a stream had no more for now
      }
    }
    if (at === null && positional) e.position = pos;
    this.writeU32(mem, nreadPtr >>> 0, total);
    return ERRNO.SUCCESS;
  }

  protected _fd_write(fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number {
    return this.doWrite(fd, iovs, iovsLen, null, nwrittenPtr);
  }
  protected _fd_pwrite(fd: number, iovs: number, iovsLen: number, offset: bigint, nwrittenPtr: number): number {
    const off = U64(offset);
    if (off > MAX_SAFE) return ERRNO.INVAL;
    return this.doWrite(fd, iovs, iovsLen, Number(off), nwrittenPtr);
  }

  private doWrite(fd: number, iovsPtr: number, iovsLen: number, at: number | null, nwrittenPtr: number): number {
    const e = this.file(fd, RIGHTS.FD_WRITE);
    if (typeof e === 'number') return e;
    if (e.kind === KIND_DIR) return ERRNO.ISDIR;
    if (at !== null && e.kind !== KIND_FILE) return ERRNO.SPIPE;
    const mem = this.getMemory();
    const iov = this.readIovecs(mem, iovsPtr >>> 0, iovsLen >>> 0);
    if (typeof iov === 'number') return iov;
    let bytes = 0;
    for (let i = 1; i < iov.length; i += 2) bytes += iov[i]!;
    let pos: number | null = null;
    if (e.kind === KIND_FILE) {
      pos = at ?? (e.fdflags & FDFLAGS.APPEND ? Number(fstatSync(e.hostFd, { bigint: true }).size) : e.position);
    }
    // Gather iovecs into the scratch buffer and write it whenever it is full: one host write for
    // the usual case of a few small iovecs (stdio's buffer + the new data).
    const buf = this.scratchOf(Math.min(bytes, SCRATCH_MAX));
    let fill = 0;
    let total = 0;
    const flush = (): void => {
      if (fill === 0) return;
      if (e.sink !== null) e.sink.write(buf.slice(0, fill));
      else if (e.hostFd < 0) throw Object.assign(new Error('write to an input stream'), { code: 'EBADF' });
      else this.writeAllHost(e.hostFd, buf, fill, pos === null ? null : pos + total);
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
    this.writeU32(mem, nwrittenPtr >>> 0, total);
    return ERRNO.SUCCESS;
  }

  protected _fd_seek(fd: number, offset: bigint, whence: number, newOffsetPtr: number): number {
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
  }

  protected _fd_tell(fd: number, offsetPtr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.kind !== KIND_FILE) return e.kind === KIND_STREAM ? ERRNO.SPIPE : ERRNO.BADF;
    this.writeU64(this.getMemory(), offsetPtr >>> 0, BigInt(e.position));
    return ERRNO.SUCCESS;
  }

  protected _fd_close(fd: number): number {
    const e = this.fds.remove(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.ownsHostFd && e.hostFd >= 0) closeSync(e.hostFd);
    return ERRNO.SUCCESS;
  }

  protected _fd_renumber(from: number, to: number): number {
    const src = this.fds.get(from);
    const dst = this.fds.get(to);
    if (src === undefined || dst === undefined) return ERRNO.BADF;
    if (from === to) return ERRNO.SUCCESS;
    if (dst.ownsHostFd && dst.hostFd >= 0) closeSync(dst.hostFd);
    this.fds.remove(from);
    this.fds.set(to, src);
    return ERRNO.SUCCESS;
  }

  private syncFd(fd: number, data: boolean): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.hostFd < 0) return ERRNO.SUCCESS;
    if (e.kind === KIND_STREAM && e.filetype !== FILETYPE.REGULAR_FILE) return ERRNO.INVAL;
    if (data) fdatasyncSync(e.hostFd); else fsyncSync(e.hostFd);
    return ERRNO.SUCCESS;
  }
  protected _fd_sync(fd: number): number { return this.syncFd(fd, false); }
  protected _fd_datasync(fd: number): number { return this.syncFd(fd, true); }

  protected _fd_advise(fd: number, _offset: bigint, _len: bigint, advice: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (advice < 0 || advice > ADVICE_MAX) return ERRNO.INVAL;
    return e.kind === KIND_FILE ? ERRNO.SUCCESS : e.kind === KIND_DIR ? ERRNO.BADF : ERRNO.SPIPE;
  }

  protected _fd_allocate(fd: number, offset: bigint, len: bigint): number {
    const e = this.file(fd, RIGHTS.FD_ALLOCATE);
    if (typeof e === 'number') return e;
    if (e.kind !== KIND_FILE) return e.kind === KIND_DIR ? ERRNO.BADF : ERRNO.SPIPE;
    const end = U64(offset) + U64(len);
    if (end > MAX_SAFE) return ERRNO.FBIG;
    if (fstatSync(e.hostFd, { bigint: true }).size < end) ftruncateSync(e.hostFd, Number(end));
    return ERRNO.SUCCESS;
  }

  // ---- fd metadata -------------------------------------------------------------------------------

  protected _fd_fdstat_get(fd: number, ptr: number): number {
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
  }

  protected _fd_fdstat_set_flags(fd: number, flags: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (flags & ~(FDFLAGS.APPEND | FDFLAGS.DSYNC | FDFLAGS.NONBLOCK | FDFLAGS.RSYNC | FDFLAGS.SYNC)) return ERRNO.INVAL;
    e.fdflags = flags & 0xffff;
    return ERRNO.SUCCESS;
  }

  protected _fd_fdstat_set_rights(fd: number, base: bigint, inheriting: bigint): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    const b = U64(base);
    const i = U64(inheriting);
    if ((b & ~e.rightsBase) !== 0n || (i & ~e.rightsInheriting) !== 0n) return ERRNO.NOTCAPABLE;
    e.rightsBase = b;
    e.rightsInheriting = i;
    return ERRNO.SUCCESS;
  }

  protected _fd_filestat_get(fd: number, ptr: number): number {
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
  }

  protected _fd_filestat_set_size(fd: number, size: bigint): number {
    const e = this.file(fd, RIGHTS.FD_FILESTAT_SET_SIZE);
    if (typeof e === 'number') return e;
    if (e.kind !== KIND_FILE) return ERRNO.INVAL;
    const s = U64(size);
    if (s > MAX_SAFE) return ERRNO.FBIG;
    ftruncateSync(e.hostFd, Number(s));
    return ERRNO.SUCCESS;
  }

  protected _fd_filestat_set_times(fd: number, atim: bigint, mtim: bigint, flags: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.hostFd < 0) return ERRNO.BADF;
    const times = this.newTimes(fstatSync(e.hostFd, { bigint: true }), atim, mtim, flags);
    if (typeof times === 'number') return times;
    futimesSync(e.hostFd, times[0], times[1]);
    return ERRNO.SUCCESS;
  }

  protected _fd_prestat_get(fd: number, ptr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined || e.preopenName === null) return ERRNO.BADF;
    const v = this.smallView;
    this.small.fill(0, 0, PRESTAT_SIZE);
    v.setUint8(0, PREOPENTYPE_DIR);
    v.setUint32(4, e.preopenName.length, true);
    this.getMemory().write(ptr >>> 0, this.small.subarray(0, PRESTAT_SIZE));
    return ERRNO.SUCCESS;
  }

  protected _fd_prestat_dir_name(fd: number, ptr: number, len: number): number {
    const e = this.fds.get(fd);
    if (e === undefined || e.preopenName === null) return ERRNO.BADF;
    if ((len >>> 0) < e.preopenName.length) return ERRNO.NAMETOOLONG;
    this.getMemory().write(ptr >>> 0, e.preopenName);
    return ERRNO.SUCCESS;
  }

  protected _fd_readdir(fd: number, buf: number, bufLen: number, cookie: bigint, bufusedPtr: number): number {
    const e = this.fds.get(fd);
    if (e === undefined) return ERRNO.BADF;
    if (e.kind !== KIND_DIR) return ERRNO.NOTDIR;
    const c = U64(cookie);
    if (c === 0n || e.listing === null) e.listing = this.list(hostPathOf(e.root, e.rel));
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
        view.setBigUint64(used, BigInt(i + 1), true);
        view.setBigUint64(used + 8, listing.inos[i]!, true);
        view.setUint32(used + 16, name.length, true);
        view.setUint8(used + 20, listing.types[i]!);
        out.set(name.subarray(0, out.length - used - DIRENT_HEADER_SIZE), used + DIRENT_HEADER_SIZE);
      } else {
        const header = new Uint8Array(DIRENT_HEADER_SIZE);
        const hv = new DataView(header.buffer);
        hv.setBigUint64(0, BigInt(i + 1), true);
        hv.setBigUint64(8, listing.inos[i]!, true);
        hv.setUint32(16, name.length, true);
        hv.setUint8(20, listing.types[i]!);
        out.set(header.subarray(0, out.length - used), used);
      }
      used = Math.min(out.length, used + DIRENT_HEADER_SIZE + name.length);
    }
    const mem = this.getMemory();
    if (used > 0) mem.write(buf >>> 0, out.subarray(0, used));
    this.writeU32(mem, bufusedPtr >>> 0, used);
    return ERRNO.SUCCESS;
  }

  private list(dir: string): DirListing {
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

  // ---- paths -------------------------------------------------------------------------------------

  protected _path_open(dirFd: number, dirflags: number, pathPtr: number, pathLen: number, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number, fdPtr: number): number {
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
  }

  protected _path_filestat_get(fd: number, flags: number, pathPtr: number, pathLen: number, ptr: number): number {
    const mem = this.getMemory();
    const r = this.resolveAt(mem, fd, pathPtr >>> 0, pathLen >>> 0, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof r === 'number') return r;
    // lstat: with follow, the resolver has already replaced a final symlink by its target.
    this.writeFilestat(mem, ptr >>> 0, lstatSync(r.host, { bigint: true }));
    return ERRNO.SUCCESS;
  }

  protected _path_filestat_set_times(fd: number, flags: number, pathPtr: number, pathLen: number, atim: bigint, mtim: bigint, fstFlags: number): number {
    const r = this.resolveAt(this.getMemory(), fd, pathPtr >>> 0, pathLen >>> 0, (flags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof r === 'number') return r;
    const times = this.newTimes(lstatSync(r.host, { bigint: true }), atim, mtim, fstFlags);
    if (typeof times === 'number') return times;
    lutimesSync(r.host, times[0], times[1]);
    return ERRNO.SUCCESS;
  }

  /** Resolves a path whose last component is created, removed or renamed (never the root itself). */
  private resolveEntry(mem: VirtualMemory, fd: number, ptr: number, len: number): { dir: FdEntry; rel: string[]; host: string } | number {
    const r = this.resolveAt(mem, fd, ptr >>> 0, len >>> 0, false);
    if (typeof r === 'number') return r;
    // Creating, removing or renaming the preopened directory itself changes its parent, outside.
    if (r.rel.length === 0) return ERRNO.NOTCAPABLE;
    return r;
  }

  protected _path_create_directory(fd: number, pathPtr: number, pathLen: number): number {
    const r = this.resolveEntry(this.getMemory(), fd, pathPtr, pathLen);
    if (typeof r === 'number') return r;
    mkdirSync(r.host);
    return ERRNO.SUCCESS;
  }

  protected _path_remove_directory(fd: number, pathPtr: number, pathLen: number): number {
    const r = this.resolveEntry(this.getMemory(), fd, pathPtr, pathLen);
    if (typeof r === 'number') return r;
    rmdirSync(r.host);
    return ERRNO.SUCCESS;
  }

  protected _path_unlink_file(fd: number, pathPtr: number, pathLen: number): number {
    const r = this.resolveEntry(this.getMemory(), fd, pathPtr, pathLen);
    if (typeof r === 'number') return r;
    unlinkSync(r.host);
    return ERRNO.SUCCESS;
  }

  protected _path_rename(fd: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): number {
    const mem = this.getMemory();
    const from = this.resolveEntry(mem, fd, oldPtr, oldLen);
    if (typeof from === 'number') return from;
    const to = this.resolveEntry(mem, newFd, newPtr, newLen);
    if (typeof to === 'number') return to;
    renameSync(from.host, to.host);
    return ERRNO.SUCCESS;
  }

  protected _path_link(oldFd: number, oldFlags: number, oldPtr: number, oldLen: number, newFd: number, newPtr: number, newLen: number): number {
    const mem = this.getMemory();
    const from = this.resolveAt(mem, oldFd, oldPtr >>> 0, oldLen >>> 0, (oldFlags & LOOKUP_SYMLINK_FOLLOW) !== 0);
    if (typeof from === 'number') return from;
    const to = this.resolveEntry(mem, newFd, newPtr, newLen);
    if (typeof to === 'number') return to;
    linkSync(from.host, to.host);
    return ERRNO.SUCCESS;
  }

  protected _path_readlink(fd: number, pathPtr: number, pathLen: number, buf: number, bufLen: number, bufusedPtr: number): number {
    const mem = this.getMemory();
    const r = this.resolveAt(mem, fd, pathPtr >>> 0, pathLen >>> 0, false);
    if (typeof r === 'number') return r;
    const target = readlinkSync(r.host, { encoding: 'buffer' });
    const n = Math.min(target.length, bufLen >>> 0);
    mem.write(buf >>> 0, target.subarray(0, n));
    this.writeU32(mem, bufusedPtr >>> 0, n);
    return ERRNO.SUCCESS;
  }

  protected _path_symlink(oldPtr: number, oldLen: number, fd: number, newPtr: number, newLen: number): number {
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
  }

  // ---- poll --------------------------------------------------------------------------------------

  protected _poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
    const count = nsubs >>> 0;
    if (count === 0 || count > MAX_SUBSCRIPTIONS) return ERRNO.INVAL;
    const mem = this.getMemory();
    const subs = mem.read(inPtr >>> 0, count * SUBSCRIPTION_SIZE);
    const sv = new DataView(subs.buffer, subs.byteOffset, subs.byteLength);
    const events = new Uint8Array(count * EVENT_SIZE);
    const ev = new DataView(events.buffer);
    let nevents = 0;
    const emit = (userdata: bigint, error: number, type: number, nbytes: bigint): void => {
      const o = nevents++ * EVENT_SIZE;
      ev.setBigUint64(o, userdata, true);
      ev.setUint16(o + 8, error, true);
      ev.setUint8(o + 10, type);
      ev.setBigUint64(o + 16, nbytes, true);
    };
    // Deadlines on the monotonic clock, in ns; -1n for fd subscriptions.
    const deadlines = new BigInt64Array(count);
    let earliest = -1n;
    const mono = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const o = i * SUBSCRIPTION_SIZE;
      const userdata = sv.getBigUint64(o, true);
      const tag = sv.getUint8(o + 8);
      deadlines[i] = -1n;
      if (tag === EVENTTYPE.CLOCK) {
        const id = sv.getUint32(o + 16, true);
        const timeout = sv.getBigUint64(o + 24, true);
        const flags = sv.getUint16(o + 40, true);
        const now = this.now(id);
        if (typeof now === 'number') { emit(userdata, now, tag, 0n); continue; }
        const rel = flags & SUBCLOCK_ABSTIME ? timeout - now : timeout;
        const d = mono + (rel > 0n ? rel : 0n);
        deadlines[i] = d;
        if (earliest < 0n || d < earliest) earliest = d;
      } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
        const e = this.fds.get(sv.getUint32(o + 16, true));
        if (e === undefined) { emit(userdata, ERRNO.BADF, tag, 0n); continue; }
        let nbytes = 0n;
        if (tag === EVENTTYPE.FD_READ && e.kind === KIND_FILE) {
          const size = fstatSync(e.hostFd, { bigint: true }).size;
          nbytes = size > BigInt(e.position) ? size - BigInt(e.position) : 0n;
        }
        emit(userdata, ERRNO.SUCCESS, tag, nbytes); // files and streams are always ready
      } else {
        emit(userdata, ERRNO.INVAL, tag, 0n);
      }
    }
    if (nevents === 0 && earliest >= 0n) {
      // Only clocks: sleep until the first one fires, then report every clock that is due.
      const waitNs = earliest - process.hrtime.bigint();
      if (waitNs > 0n) sleepMs(Number(waitNs) / 1e6);
      while (process.hrtime.bigint() < earliest) { /* sub-millisecond remainder */ }
      const now = process.hrtime.bigint();
      for (let i = 0; i < count; i++) {
        const d = deadlines[i]!;
        if (d >= 0n && d <= now) emit(sv.getBigUint64(i * SUBSCRIPTION_SIZE, true), ERRNO.SUCCESS, EVENTTYPE.CLOCK, 0n);
      }
    }
    mem.write(outPtr >>> 0, events.subarray(0, nevents * EVENT_SIZE));
    this.writeU32(mem, neventsPtr >>> 0, nevents);
    return ERRNO.SUCCESS;
  }

  // ---- sockets: preview1 can only use sockets it was given, and farmem gives none ------------------

  protected _sock_accept(fd: number): number { return this.fds.get(fd) === undefined ? ERRNO.BADF : ERRNO.NOTSOCK; }
  protected _sock_recv(fd: number): number { return this.fds.get(fd) === undefined ? ERRNO.BADF : ERRNO.NOTSOCK; }
  protected _sock_send(fd: number): number { return this.fds.get(fd) === undefined ? ERRNO.BADF : ERRNO.NOTSOCK; }
  protected _sock_shutdown(fd: number): number { return this.fds.get(fd) === undefined ? ERRNO.BADF : ERRNO.NOTSOCK; }
}
