/**
 * @fileoverview WASI process-level calls: argv and environ, clocks, random bytes, exit, raise and
 * yield, and the socket calls (preview1 can only use sockets it was given, and farmem gives none).
 */

import { randomFillSync } from 'node:crypto';
import type { VirtualMemory } from '../../runtime/virtual-memory.js';
import { CLOCKID, ERRNO } from '../constants.js';
import { SCRATCH_MAX, type CStrings, type WasiContext } from '../context.js';
import { WasiExit } from '../exit.js';
import type { SyscallFamily } from './table.js';

function writeStrings(mem: VirtualMemory, ptrs: number, buf: number, data: CStrings): number {
  const table = new Uint8Array(data.offsets.length * 4);
  const view = new DataView(table.buffer);
  const base = buf >>> 0;
  data.offsets.forEach((off, i) => view.setUint32(i * 4, base + off, true));
  mem.write(ptrs >>> 0, table);
  mem.write(base, data.buf);
  return ERRNO.SUCCESS;
}

function writeSizes(ctx: WasiContext, data: CStrings, countPtr: number, sizePtr: number): number {
  const mem = ctx.getMemory();
  ctx.writeU32(mem, countPtr >>> 0, data.offsets.length);
  ctx.writeU32(mem, sizePtr >>> 0, data.buf.length);
  return ERRNO.SUCCESS;
}

function noSocket(this: WasiContext, fd: number): number {
  return this.fds.get(fd) === undefined ? ERRNO.BADF : ERRNO.NOTSOCK;
}

export const proc = {
  args_get(this: WasiContext, argv: number, argvBuf: number): number {
    return writeStrings(this.getMemory(), argv, argvBuf, this.args);
  },
  args_sizes_get(this: WasiContext, argcPtr: number, sizePtr: number): number {
    return writeSizes(this, this.args, argcPtr, sizePtr);
  },
  environ_get(this: WasiContext, environ: number, environBuf: number): number {
    return writeStrings(this.getMemory(), environ, environBuf, this.env);
  },
  environ_sizes_get(this: WasiContext, countPtr: number, sizePtr: number): number {
    return writeSizes(this, this.env, countPtr, sizePtr);
  },

  clock_res_get(this: WasiContext, id: number, resPtr: number): number {
    const res = id === CLOCKID.MONOTONIC ? 1n : id === CLOCKID.REALTIME ? 1000n : id === CLOCKID.PROCESS_CPUTIME_ID || id === CLOCKID.THREAD_CPUTIME_ID ? 1000n : -1n;
    if (res < 0n) return ERRNO.INVAL;
    this.writeU64(this.getMemory(), resPtr >>> 0, res);
    return ERRNO.SUCCESS;
  },
  clock_time_get(this: WasiContext, id: number, _precision: bigint, timePtr: number): number {
    const t = this.now(id);
    if (typeof t === 'number') return t;
    this.writeU64(this.getMemory(), timePtr >>> 0, t);
    return ERRNO.SUCCESS;
  },

  random_get(this: WasiContext, buf: number, len: number): number {
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
  },

  proc_exit(this: WasiContext, code: number): never {
    throw new WasiExit(code >>> 0);
  },
  proc_raise(this: WasiContext, _sig: number): number {
    return ERRNO.NOSYS;
  },
  sched_yield(this: WasiContext): number {
    return ERRNO.SUCCESS;
  },

  sock_accept: noSocket,
  sock_recv: noSocket,
  sock_send: noSocket,
  sock_shutdown: noSocket,
} satisfies SyscallFamily;
