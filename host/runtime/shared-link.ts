/**
 * @fileoverview Linking a shared-memory (threaded) module, on any guest thread: the `farmem.*`
 * imports only such modules call (wait32/wait64/notify/flush), and the wrappers that tell the pager
 * when guest code runs. A thread is QUIESCENT for the eviction protocol (guest-threads.ts) whenever
 * it is outside guest code: before an export is called, after it returns, and inside every host
 * import (a WASI call blocked on a pipe must not hold up the reclaimer of the other threads).
 *
 *   export e:  (...a) => { enterGuest(); try { return e(...a) } finally { leaveGuest() } }
 *   import f:  (...a) => { leaveGuest(); try { return f(...a) } finally { enterGuest() } }
 */
import type { Pager } from './pager.js';

/** The shared-memory-only `farmem.*` imports (see abi.ts). */
export function sharedImports(pager: Pager): Record<string, WebAssembly.ImportValue> {
  return {
    wait32: (ea: number, expected: number, timeout: bigint) => pager.atomics.wait(ea, expected, timeout, 4),
    wait64: (ea: number, expected: bigint, timeout: bigint) => pager.atomics.wait(ea, expected, timeout, 8),
    notify: (ea: number, count: number) => pager.atomics.notify(ea, count),
    flush: () => pager.flushBounce(),
  };
}

type Fn = (...args: unknown[]) => unknown;

/** The caller's function imports that `module` uses, each wrapped as a host call; the rest unchanged. */
export function wrapHostImports(module: WebAssembly.Module, imports: WebAssembly.Imports, pager: Pager): WebAssembly.Imports {
  const out: Record<string, Record<string, WebAssembly.ImportValue>> = {};
  for (const [name, ns] of Object.entries(imports)) out[name] = { ...(ns as Record<string, WebAssembly.ImportValue>) };
  for (const imp of WebAssembly.Module.imports(module)) {
    const ns = out[imp.module];
    const fn = ns?.[imp.name];
    if (imp.kind !== 'function' || typeof fn !== 'function') continue;
    ns![imp.name] = (...args: unknown[]) => {
      pager.leaveGuest();
      try {
        return (fn as Fn)(...args);
      } finally {
        pager.enterGuest();
      }
    };
  }
  return out;
}

/** The instance's exports, functions wrapped as guest entries. */
export function wrapExports(exports: WebAssembly.Exports, pager: Pager): WebAssembly.Exports {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(exports)) {
    out[name] = typeof value !== 'function' ? value : (...args: unknown[]) => {
      pager.enterGuest();
      try {
        return (value as Fn)(...args);
      } finally {
        pager.leaveGuest();
      }
    };
  }
  return Object.freeze(out) as WebAssembly.Exports;
}
