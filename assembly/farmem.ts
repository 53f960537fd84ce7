/**
 * AssemblyScript bindings for farmem's optional hint API: madvise-like advice about how the program
 * will use a range of its memory. Unmodified programs never need it; under plain V8 (no farmem) the
 * import must be provided by the host, e.g. as a no-op.
 *
 *   import { hint, Advice } from "../../assembly/farmem";
 *   hint(ptr, bytes, Advice.Sequential);   // about to scan [ptr, ptr + bytes) front to back
 */

export const enum Advice {
  /** Undo earlier Sequential/Random advice for the range. */
  Normal = 0,
  /** The range will be needed soon: start fetching it now. */
  WillNeed = 1,
  /** The range is not needed for a while: page it out (dirty pages are written back, never lost). */
  DontNeed = 2,
  /** The range will be read front to back: prefetch aggressively. */
  Sequential = 3,
  /** The range will be accessed randomly: do not prefetch. */
  Random = 4,
}

@external("farmem", "hint")
export declare function hint(addr: usize, length: usize, advice: i32): void;
