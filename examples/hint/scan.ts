// A program that helps farmem: it tells the runtime which memory it will scan next.
// Build:  npx asc examples/hint/scan.ts --runtime stub --use abort= -O3 -o build/examples/scan.wasm
// Run:    npx farmem run build/examples/scan.wasm --invoke run 33554432 1 --local 25%
import { hint, Advice } from "../../assembly/farmem";

/** Fills `bytes` of memory, then sums it in two passes; advises each pass before it starts. */
export function run(bytes: u32, seed: u32): u64 {
  const base = (u32(memory.size()) << 16);
  const pages = (bytes + 0xffff) >>> 16;
  if (memory.grow(pages) < 0) unreachable();
  let x = u64(seed) | 1;
  for (let p = base; p < base + bytes; p += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    store<u64>(p, x);
  }
  let sum: u64 = 0;
  for (let pass = 0; pass < 2; pass++) {
    hint(base, bytes, Advice.Sequential);
    for (let p = base; p < base + bytes; p += 8) sum += load<u64>(p);
  }
  hint(base, bytes, Advice.DontNeed); // done with it: let farmem page it out
  return sum;
}
