/**
 * @fileoverview The memories of a multi-memory module, as the instrumenter plans them: each one's
 * limits and its part of the page space (layout.ts), and the interned name pointers the pass uses
 * to tell accesses apart (hidden-children.ts).
 *
 *   (memory $a 1 2) (memory $b i64 1 8)   at 4 KiB pages
 *   → memory 0: basePage 0,  spanPages 32   (2 wasm pages = 32 pages, a power of two)
 *     memory 1: basePage 32, spanPages 128  (8 wasm pages = 128 pages)
 *
 * binaryen.js cannot list a module's memories, so their names come from the module's text (only
 * for modules with several memories, where the cost of printing is acceptable).
 */
import type { MemoryMeta } from '../abi.js';
import { MAX_MEMORIES, MAX_WASM64_PAGES, MAX_WASM_PAGES, memory64TablePages } from '../layout.js';
import { binaryen, type Module } from './binaryen.js';
import { diagnostic } from './diagnostics.js';
import { memoryNameOf, memoryNamesKnown } from './hidden-children.js';
import type { Region } from './memory64-pass.js';

export interface MemoryPlan {
  readonly memories: MemoryMeta[];
  /** For the pass: index, address type, span, interned name pointer. */
  readonly regions: Region[];
  /** Internal names, in index order. */
  readonly names: string[];
}

/** Interned pointer of a memory's name, read from a `memory.size` naming it. */
export function memoryNamePointer(module: Module, name: string): number {
  return memoryNameOf(module.memory.size(name), binaryen.MemorySizeId);
}

function memoryNames(module: Module): string[] {
  const names: string[] = [];
  for (const line of module.emitText().split('\n')) {
    const m = /^ \((?:import "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*" )?\(?memory \$(?:"((?:[^"\\]|\\.)*)"|(\S+))/.exec(line);
    if (m) names.push(m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2]!);
  }
  return names;
}

export function planMemories(module: Module, pageSize: number, count: number): MemoryPlan {
  if (count > MAX_MEMORIES) throw diagnostic('FM1011', count);
  if (!memoryNamesKnown()) throw diagnostic('FM1018', 'memory names of expressions cannot be read with this binaryen');
  const names = memoryNames(module);
  if (names.length !== count) throw diagnostic('FM1018', `found ${names.length} memories in the module's text, expected ${count}`);
  const memories: MemoryMeta[] = [];
  const regions: Region[] = [];
  let basePage = 0;
  names.forEach((name, index) => {
    const info = module.getMemoryInfo(name);
    const memory64 = info.is64 === true;
    const cap = memory64 ? MAX_WASM64_PAGES : MAX_WASM_PAGES;
    const hasMaximum = info.max !== undefined && info.max !== null;
    const maximumPages = hasMaximum ? Math.min(info.max!, cap) : cap;
    const spanPages = memory64TablePages(pageSize, maximumPages, memory64);
    const imported = info.module ? { import: { module: info.module, name: info.base ?? '' } } : {};
    memories.push({ initialPages: info.initial, maximumPages, hasMaximum, memory64, basePage, spanPages, ...imported });
    regions.push({ index, memory64, basePage, spanPages, name: memoryNamePointer(module, name) });
    basePage += spanPages;
  });
  return { memories, regions, names };
}
