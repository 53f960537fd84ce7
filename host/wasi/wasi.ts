/**
 * @fileoverview `Wasi`: WASI preview1 for a guest whose memory the host reaches only through a
 * `VirtualMemory` (farmem's far memory, or `PlainMemory` for an ordinary module). Files are real host
 * files through synchronous `node:fs` calls; every path is resolved inside a preopened directory.
 *
 *   const wasi = new Wasi({ args: ['prog', 'x'], preopens: { '/data': './data' } });
 *   const instance = new WebAssembly.Instance(module, wasi.imports(() => memory));
 *   const exitCode = wasi.start(instance.exports);
 *
 * This file is the front: the options, the stdio and preopen fds, the import object and how a failure
 * inside a call becomes an errno. The calls are in `syscalls/` by family (fd I/O, fd metadata, paths,
 * poll, process); the state they share is `WasiContext` (context.ts).
 *
 * Nothing but `WasiExit` (from `proc_exit`) and farmem's own runtime failures (`FarmemError`, e.g. a
 * page store that is gone) crosses the boundary: a guest pointer outside memory (`RangeError`) is
 * `EFAULT`, a host error is its errno, anything unexpected is `EIO` and is logged under
 * `NODE_DEBUG=farmem`.
 */

import { openSync, constants as fsc } from 'node:fs';
import { debuglog } from 'node:util';
import { FarmemError } from '../errors.js';
import type { VirtualMemory } from '../runtime/virtual-memory.js';
import {
  ERRNO, errnoFromNodeCode, FILETYPE, RIGHTS_ALL, RIGHTS_DIR_BASE, WASI_FUNCTIONS, WASI_MODULE,
  type WasiFunctionName,
} from './constants.js';
import { textEncoder, WasiContext } from './context.js';
import { WasiExit } from './exit.js';
import { FdEntry, KIND_DIR } from './fd-table.js';
import { resolveWasiOptions, type ResolvedWasiOptions, type WasiOptions } from './options.js';
import { outputEntry, stdinEntry } from './stdio.js';
import { fdIo } from './syscalls/fd-io.js';
import { fdMeta } from './syscalls/fd-meta.js';
import { path } from './syscalls/path.js';
import { poll } from './syscalls/poll.js';
import { proc } from './syscalls/proc.js';
import type { Syscall } from './syscalls/table.js';

const debug = debuglog('farmem');

/** Every preview1 function, from its family (the type makes a missing one a compile error). */
const SYSCALLS: Record<WasiFunctionName, Syscall> = { ...fdIo, ...fdMeta, ...path, ...poll, ...proc };

/** The `wasi_snapshot_preview1` import namespace. */
export type WasiImportNamespace = Record<WasiFunctionName, (...args: never[]) => number | void>;

export class Wasi {
  private readonly options: ResolvedWasiOptions;
  private readonly ctx: WasiContext;
  private started = false;
  /** Unexpected (non-errno) host failures turned into EIO, for tests and diagnostics. */
  internalErrors = 0;

  constructor(options: WasiOptions = {}) {
    this.options = resolveWasiOptions(options);
    this.ctx = new WasiContext(this.options.args, this.options.env.map(([k, v]) => `${k}=${v}`));
    const fds = this.ctx.fds;
    fds.set(0, stdinEntry(this.options.stdin));
    fds.set(1, outputEntry(this.options.stdout, 1));
    fds.set(2, outputEntry(this.options.stderr, 2));
    let fd = 3;
    for (const p of this.options.preopens) {
      const hostFd = openSync(p.host, fsc.O_RDONLY | fsc.O_DIRECTORY);
      const entry = new FdEntry(KIND_DIR, hostFd, FILETYPE.DIRECTORY, RIGHTS_DIR_BASE, RIGHTS_ALL);
      entry.root = p.host;
      entry.preopenName = textEncoder.encode(p.guest);
      fds.set(fd++, entry);
    }
  }

  /**
   * The import object for `WebAssembly.instantiate`: `{ wasi_snapshot_preview1: { …every function
   * in WASI_FUNCTIONS } }`. `getMemory` is called on each WASI call, so it may be bound to an
   * instance that does not exist yet.
   */
  imports(getMemory: () => VirtualMemory): { [WASI_MODULE]: WasiImportNamespace } {
    this.ctx.getMemory = getMemory;
    const ns = {} as Record<string, unknown>;
    for (const name of WASI_FUNCTIONS) {
      const impl = (SYSCALLS[name] as (...a: unknown[]) => number).bind(this.ctx);
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
    const fds = this.ctx.fds;
    for (const [fd, entry] of fds.entries()) {
      try { entry.closeHost(); } catch { /* already gone */ }
      fds.remove(fd);
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
}
