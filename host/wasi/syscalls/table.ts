/**
 * @fileoverview The shape of a syscall family: WASI preview1 functions by name, each called with
 * `this` bound to the `WasiContext` of one `Wasi` instance.
 */

import type { WasiFunctionName } from '../constants.js';
import type { WasiContext } from '../context.js';

/** One WASI function: its arguments as the guest passes them (i32 → number, i64 → bigint), an errno back. */
export type Syscall = (this: WasiContext, ...args: never[]) => number;

/** Part of preview1, implemented in one file; `Wasi` checks that the families cover every function. */
export type SyscallFamily = Partial<Record<WasiFunctionName, Syscall>>;
