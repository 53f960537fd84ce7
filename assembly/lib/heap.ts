/**
 * @fileoverview The workloads' memory: one region starting at the heap base, grown with
 * `memory.grow` and addressed with raw `load<T>`/`store<T>`. There is no allocator and no
 * runtime: a workload lays out its arrays by hand inside the region `reserve()` hands out.
 *
 * ```
 *  0          __heap_base   heapStart()                          heapStart() + bytes
 *  ├──────────┼─────────────┼─────────────────────────────────────┤
 *  │ (unused) │ pad to 256 B│ the workload's arrays               │ ← memory.size() * 64 KiB
 * ```
 *
 * Every run starts from the same heap start, so a second `run()` in one instance reuses the
 * memory of the first: workloads must write everything before reading it, never rely on
 * fresh memory being zero. Failures trap (`unreachable`), since the modules import nothing,
 * not even `env.abort`.
 */

/** 64 KiB, the wasm page size. */
export const WASM_PAGE: u32 = 65536;

/** Smallest `sizeBytes` a workload accepts; smaller sizes trap. */
export const MIN_SIZE: i32 = 65536;

/**
 * First byte a workload may use: `__heap_base` rounded up to 256 bytes, farmem's smallest
 * page size, so a layout meets page boundaries at the same offsets for every page size.
 */
// @ts-ignore: decorator
@inline
export function heapStart(): usize {
  return (__heap_base + 255) & ~(<usize>255);
}

/**
 * Returns the start of a region of `bytes` bytes, growing memory so that all of it is
 * addressable. Traps if `sizeBytes` is below MIN_SIZE or memory cannot grow that far.
 */
export function reserve(bytes: usize): usize {
  const start = heapStart();
  const end = <u64>start + <u64>bytes;
  if (end > 0x1_0000_0000) unreachable(); // beyond the 4 GiB of wasm32
  const needPages = <i32>((end + (WASM_PAGE - 1)) >> 16);
  const havePages = memory.size();
  if (needPages > havePages && memory.grow(needPages - havePages) < 0) unreachable();
  return start;
}

/** Traps unless `sizeBytes` is at least MIN_SIZE. */
export function checkSize(sizeBytes: i32): void {
  if (sizeBytes < MIN_SIZE) unreachable();
}
