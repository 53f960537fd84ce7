/**
 * @fileoverview The guest memory's initial image, before the guest runs: the contents of an
 * imported memory (if the module imports its memory), then the active data segments, written
 * into the backing store by virtual address.
 *
 * An imported memory is replaced by farmem's virtual memory: the instrumented module no longer
 * imports it, so V8 would not check it. `importedMemory` has V8 check it instead, by instantiating
 * a module that imports only a memory with the same limits, so a wrong import fails with V8's own
 * error. The virtual memory then starts at the imported memory's current size with its bytes;
 * afterwards the guest's memory is the virtual one (`fm.memory`), and the host's
 * `WebAssembly.Memory` object no longer sees the guest's writes.
 *
 * With several memories a segment initializes its own memory, at that memory's part of the page
 * space. Segment offsets are constants, or globals (`(data (global.get $__memory_base) ...)`): an imported
 * global's value comes from the caller's imports, as V8 would take it.
 */
import type { GuestMeta } from '../abi.js';
import { encodeUleb } from '../leb128.js';
import { WASM_PAGE } from '../layout.js';
import type { Memories } from './memory64-imports.js';
import type { Pager } from './pager.js';

export interface ImportedMemory {
  /** Current size of the caller's memory, in wasm pages: the virtual memory's initial size. */
  readonly pages: number;
  readonly bytes: Uint8Array;
}

const uleb = (n: number): number[] => [...encodeUleb(n)];

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)];
  return [...uleb(bytes.length), ...bytes];
}

/** The limits a memory import is checked against. */
interface Limits {
  readonly initialPages: number;
  readonly maximumPages: number;
  readonly hasMaximum: boolean;
  readonly memory64?: boolean;
  readonly sharedMemory?: boolean;
}

/** `(module (import "m" "n" (memory min max?)))` as bytes. */
function memoryImportModule(module: string, field: string, limits: Limits): Uint8Array {
  const flags = (limits.hasMaximum ? 1 : 0) | (limits.sharedMemory ? 2 : 0) | (limits.memory64 ? 4 : 0);
  const bytes = [flags, ...uleb(limits.initialPages), ...(limits.hasMaximum ? uleb(limits.maximumPages) : [])];
  const entry = [...name(module), ...name(field), 2, ...bytes];
  const section = [1, ...entry];
  return Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 2, ...uleb(section.length), ...section]);
}

/**
 * Checks the caller's memory imports like V8 does (throwing V8's error) and returns each memory's
 * (index k; several with multi-memory), null for a memory the module defines.
 */
export function importedMemories(meta: GuestMeta, imports: WebAssembly.Imports): (ImportedMemory | null)[] {
  const list: { imp: { module: string; name: string } | null | undefined; limits: Limits }[] = meta.memories
    ? meta.memories.map((m) => ({ imp: m.import, limits: m }))
    : [{ imp: meta.memoryImport, limits: meta }];
  return list.map(({ imp, limits }) => {
    if (!imp) return null;
    new WebAssembly.Instance(new WebAssembly.Module(memoryImportModule(imp.module, imp.name, limits) as BufferSource), imports);
    const memory = (imports[imp.module] as Record<string, WebAssembly.Memory>)[imp.name]!;
    const bytes = new Uint8Array(memory.buffer);
    return { pages: bytes.length / WASM_PAGE, bytes };
  });
}

function globalValue(imports: WebAssembly.Imports, module: string, field: string): number {
  const value = (imports[module] as Record<string, unknown> | undefined)?.[field];
  const v = value instanceof WebAssembly.Global ? value.value : value;
  return typeof v === 'bigint' ? Number(BigInt.asUintN(64, v)) : Number(v) >>> 0;
}

/** Writes the initial image; throws V8's `data segment is out of bounds` like the original would. */
export function writeInitialImage(pager: Pager, meta: GuestMeta, segments: Uint8Array[], imports: WebAssembly.Imports,
  imported: readonly (ImportedMemory | null)[], memories: Memories | null): void {
  imported.forEach((memory, k) => {
    if (!memory) return;
    // Only pages holding something: the rest of the virtual memory is demand-zero anyway.
    const ps = pager.layout.pageSize;
    const base = memories ? memories.at(k, 0) : 0;
    const words = new Int32Array(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.length >>> 2);
    for (let at = 0; at < memory.bytes.length; at += ps) {
      let w = at >>> 2;
      const end = (at + ps) >>> 2;
      while (w < end && words[w] === 0) w++;
      if (w < end) pager.host.writeInitialImage(base + at, memory.bytes.subarray(at, at + ps));
    }
  });
  meta.segments.forEach((segment, i) => {
    const offset = segment.offset;
    if (!offset) return;
    const k = segment.memory ?? 0;
    const start = offset.kind === 'global' ? globalValue(imports, offset.module, offset.name) : offset.value;
    const size = memories ? memories.bytes(k) : pager.virtualBytes;
    if (start + segment.length > size) throw new WebAssembly.RuntimeError('data segment is out of bounds'); // V8's message
    if (segment.length > 0) pager.host.writeInitialImage(memories ? memories.at(k, start) : start, segments[i]!);
  });
}
