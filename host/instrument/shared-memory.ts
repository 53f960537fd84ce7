/**
 * @fileoverview What the memory pass emits differently when the module's memory is shared
 * (threads): `memory.atomic.wait32/64` and `memory.atomic.notify` become host calls on the
 * *virtual* address, so a notify reaches a waiter whatever frame the page sits in; and a plain
 * store that may straddle two pages tells the host right after it wrote into the bounce buffer.
 *
 * Wait and notify, before and after (translation as in memory-pass.ts):
 *
 *   (memory.atomic.wait32 offset=8 (local.get $p) (local.get $v) (local.get $t))
 *   ⇒
 *   (block (result i32)
 *     (drop (i32.atomic.load (<phys of $p + 8, 4 bytes>)))      ;; bounds + alignment trap, as V8
 *     (call $farmem.wait32 (i32.add (local.get $p) (i32.const 8)) (local.get $v) (local.get $t)))
 *
 *   (memory.atomic.notify (local.get $p) (local.get $n))
 *   ⇒ (block (result i32) (drop (i32.atomic.load (<phys of $p>))) (call $farmem.notify (local.get $p) (local.get $n)))
 *
 * The atomic load traps exactly like the original's checks (an out-of-bounds address translates
 * past physical memory; physical and virtual addresses agree modulo 64, so misalignment is kept).
 * Once it passed, `addr + offset` did not wrap, so the i32 sum is the exact effective address.
 *
 * A store of more than one byte that is not atomic (atomics never straddle: a misaligned one traps):
 *
 *   (i64.store (<phys>) (local.get $v))
 *   ⇒
 *   (local.set $q (<phys>))
 *   (i64.store (local.get $q) (local.get $v))
 *   (if (i32.lt_u (local.get $q) (i32.const 4096)) (call $farmem.flush))   ;; went to the bounce buffer
 *
 * With one thread, the host copies a straddling store's bounce buffer back lazily at its next entry;
 * with several, another thread may touch those pages first, so the store is flushed at once. The
 * bounce buffers are the only physical addresses below the read table (layout.ts).
 */
import { ABI_MODULE, AbiImport } from '../abi.js';
import { READ_TABLE_ADDRESS } from '../layout.js';
import { binaryen, type ExpressionRef, type Module } from './binaryen.js';

export const SHARED_IMPORT_NAMES = {
  wait32: '$farmem.wait32', wait64: '$farmem.wait64', notify: '$farmem.notify', flush: '$farmem.flush',
} as const;

/** Adds the imports only a shared-memory module calls. */
export function addSharedImports(module: Module): void {
  const { i32, i64, none } = binaryen;
  const t = binaryen.createType;
  module.addFunctionImport(SHARED_IMPORT_NAMES.wait32, ABI_MODULE, AbiImport.Wait32, t([i32, i32, i64]), i32);
  module.addFunctionImport(SHARED_IMPORT_NAMES.wait64, ABI_MODULE, AbiImport.Wait64, t([i32, i64, i64]), i32);
  module.addFunctionImport(SHARED_IMPORT_NAMES.notify, ABI_MODULE, AbiImport.Notify, t([i32, i32]), i32);
  module.addFunctionImport(SHARED_IMPORT_NAMES.flush, ABI_MODULE, AbiImport.Flush, none, none);
}

/**
 * `memory.atomic.wait32/64` (bytes 4/8) or `notify` (bytes 0 marks notify) on shared memory: the
 * original's trap checks on the physical address, then the host call on the virtual one.
 */
export function sharedWaitNotify(
  m: Module, memory: string, notify: boolean, bytes: number, physical: ExpressionRef, ea: ExpressionRef, operands: readonly ExpressionRef[],
): ExpressionRef {
  const check = !notify && bytes === 8 ? m.i64.atomic.load(0, physical, memory) : m.i32.atomic.load(0, physical, memory);
  const name = notify ? SHARED_IMPORT_NAMES.notify : bytes === 8 ? SHARED_IMPORT_NAMES.wait64 : SHARED_IMPORT_NAMES.wait32;
  return m.block(null, [m.drop(check), m.call(name, [ea, ...operands], binaryen.i32)], binaryen.i32);
}

/** Wraps a plain store whose address is `getPtr(store)` so a bounce-buffer store is flushed at once. */
export function flushAfterStore(
  m: Module, store: ExpressionRef, getPtr: (e: ExpressionRef) => ExpressionRef, setPtr: (e: ExpressionRef, v: ExpressionRef) => void, local: number,
): ExpressionRef {
  const { i32, none } = binaryen;
  const physical = getPtr(store);
  setPtr(store, m.local.get(local, i32));
  return m.block(null, [
    m.local.set(local, physical),
    store,
    m.if(m.i32.lt_u(m.local.get(local, i32), m.i32.const(READ_TABLE_ADDRESS)), m.call(SHARED_IMPORT_NAMES.flush, [], none)),
  ], none);
}
