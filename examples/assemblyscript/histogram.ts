// Byte histogram over a generated buffer: a plain AssemblyScript program, no farmem-specific code.
// Build:  npx asc examples/assemblyscript/histogram.ts --runtime stub --use abort= -O3 -o build/examples/histogram.wasm
// Run:    npx farmem run build/examples/histogram.wasm --invoke run 16777216 --local 10% --prefetch leap

/** Fills `bytes` bytes from a PRNG, counts each byte value, returns a checksum of the counts. */
export function run(bytes: u32): u64 {
  const counts = heap.alloc(256 * 4);
  memory.fill(counts, 0, 256 * 4);
  const data = heap.alloc(bytes);
  let x: u32 = 2463534242;
  for (let i: u32 = 0; i < bytes; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    store<u8>(data + i, u8(x));
  }
  for (let i: u32 = 0; i < bytes; i++) {
    const slot = counts + (usize(load<u8>(data + i)) << 2);
    store<u32>(slot, load<u32>(slot) + 1);
  }
  let sum: u64 = 0;
  for (let b = 0; b < 256; b++) sum = sum * 31 + u64(load<u32>(counts + (b << 2)));
  return sum;
}
