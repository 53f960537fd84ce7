/**
 * @fileoverview Linking one guest instance, on whichever guest thread runs it: the `farmem.*`
 * imports bound to that thread's pager (each instance has its own data-segment drop state, as in
 * the original), then instantiation. A shared-memory module also gets the thread-aware wrappers of
 * shared-link.ts. Used by instantiate() (thread 0) and by guest-thread-worker.ts (the others).
 */
import { ABI_MODULE, DATA_SECTION, type GuestMeta } from '../abi.js';
import { assertImportsProvided, type ImportObject } from '../wasi/link.js';
import { memory64Imports, type Memories } from './memory64-imports.js';
import type { Pager } from './pager.js';
import { sharedImports, wrapExports, wrapHostImports } from './shared-link.js';

const EMPTY = new Uint8Array(0);

/** The bytes of each data segment, from the instrumented module's "farmem.data" section. */
export function readSegments(module: WebAssembly.Module, meta: GuestMeta): Uint8Array[] {
  const section = WebAssembly.Module.customSections(module, DATA_SECTION)[0];
  const data = section ? new Uint8Array(section) : EMPTY;
  return meta.segments.map((s) => data.subarray(s.start, s.start + s.length));
}

/** The `farmem.*` imports for one instance on `pager`'s thread (`memories`: memory64 / several memories). */
export function abiImports(pager: Pager, meta: GuestMeta, segments: readonly Uint8Array[], memories: Memories | null): Record<string, WebAssembly.ImportValue> {
  const dropped = new Uint8Array(meta.segments.length);
  meta.segments.forEach((s, i) => { if (s.offset) dropped[i] = 1; }); // active segments are dropped after instantiation

  /** memory.init with exact, non-negative numbers; `limit`: end of the destination memory in the page space. */
  const initSegment = (segment: number, dst: number, src: number, n: number, limit = pager.virtualBytes) => {
    pager.flushBounce();
    const data = dropped[segment] ? EMPTY : segments[segment]!;
    if (src + n > data.length || dst + n > limit) throw new WebAssembly.RuntimeError('memory access out of bounds');
    pager.host.writeVirtual(dst, data, src, n);
  };
  return {
    memory: pager.memory,
    fault: (addr: number, offset: number, info: number) => pager.fault(addr, offset, info),
    grow: (delta: number) => pager.grow(delta >>> 0),
    copy: (dst: number, src: number, n: number) => pager.host.copy(dst >>> 0, src >>> 0, n >>> 0),
    fill: (dst: number, value: number, n: number) => pager.host.fill(dst >>> 0, value, n >>> 0),
    init: (segment: number, dst: number, src: number, n: number) => initSegment(segment, dst >>> 0, src >>> 0, n >>> 0),
    ...(memories ? memory64Imports(pager, memories, initSegment) : {}),
    drop: (segment: number) => { dropped[segment] = 1; },
    wait: () => { throw new WebAssembly.RuntimeError('Atomics.wait cannot be called in this context'); }, // V8's message
    // The optional guest-facing hint API (assembly/farmem.ts): madvise-like advice.
    hint: (addr: number, length: number, advice: number) => pager.host.hint(addr, length, advice),
    ...(meta.sharedMemory ? sharedImports(pager) : {}),
  };
}

/** Instantiates `module` on `pager`'s thread; `exports` are wrapped for shared memory. */
export async function instantiateGuest(
  module: WebAssembly.Module, meta: GuestMeta, imports: WebAssembly.Imports, pager: Pager, segments: readonly Uint8Array[],
  memories: Memories | null,
): Promise<{ instance: WebAssembly.Instance; exports: WebAssembly.Exports }> {
  const shared = meta.sharedMemory === true;
  if (shared) pager.trackGuest();
  const linked = { ...(shared ? wrapHostImports(module, imports, pager) : imports), [ABI_MODULE]: abiImports(pager, meta, segments, memories) };
  assertImportsProvided(module, linked as ImportObject);
  if (shared) pager.enterGuest(); // the start function
  let instance: WebAssembly.Instance;
  try {
    instance = await WebAssembly.instantiate(module, linked);
  } finally {
    if (shared) pager.leaveGuest();
  }
  return { instance, exports: shared ? wrapExports(instance.exports, pager) : instance.exports };
}
