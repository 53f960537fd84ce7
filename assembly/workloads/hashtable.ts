/**
 * @fileoverview hashtable: random access through an open-addressing hash table.
 *
 * Working set: one table of `sizeBytes / 12` packed 12-byte entries. Linear probing, no
 * deletes, key 0 marks an empty slot. The 8-byte value sits 4 bytes into its entry, so values
 * are only 4-byte aligned and some of them straddle every page boundary, as in a packed C struct.
 *
 *    0       4                      12
 *    ┌───────┬──────────────────────┐
 *    │ key   │ value (u64)          │   entry i at table + 12 * i
 *    └───────┴──────────────────────┘
 *
 *   1. clear the table with memory.fill
 *   2. insert 0.7 × capacity random keys (value = a second random number; a repeated key
 *      adds to its value)
 *   3. look up every inserted key again (replaying the key stream) interleaved with as many
 *      random keys that are mostly absent; a hit increments the stored value
 *   4. scan the table: the number of occupied slots must equal the number of distinct keys
 *      inserted, and the value sum must match what the inserts and hits added (traps if not)
 */
import { checkSize, reserve } from '../lib/heap';
import { randomAt, streamSeed } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

const ENTRY: usize = 12;
const VALUE_OFFSET: usize = 4;
/** Inserts per slot: linear probing stays short (≈2.2 probes per miss) below 0.7 load. */
const LOAD_NUM: u32 = 7;
const LOAD_DEN: u32 = 10;

/** A nonzero key from a random number (0 means "empty slot"). */
// @ts-ignore: decorator
@inline
function keyOf(r: u64): u32 {
  const k = <u32>r;
  return k == 0 ? 1 : k;
}

/** Home slot of `key`: Fibonacci hashing, then the high half of hash × capacity. */
// @ts-ignore: decorator
@inline
function homeSlot(key: u32, capacity: u32): u32 {
  const hash = key * 0x9e3779b1;
  return <u32>((<u64>hash * <u64>capacity) >> 32);
}

/**
 * Address of the entry holding `key`, or of the empty entry where it belongs. The table is
 * never full (load ≤ 0.7), so the probe ends.
 */
function probe(table: usize, capacity: u32, key: u32): usize {
  let slot = homeSlot(key, capacity);
  while (true) {
    const e = table + <usize>slot * ENTRY;
    const k = load<u32>(e);
    if (k == key || k == 0) return e;
    slot = slot + 1 == capacity ? 0 : slot + 1;
  }
  return 0;
}

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const capacity = <u32>(<usize>sizeBytes / ENTRY);
  const table = reserve(<usize>capacity * ENTRY);
  const inserts = <u32>((<u64>capacity * LOAD_NUM) / LOAD_DEN);
  const keys = streamSeed(seed, 0);
  const values = streamSeed(seed, 1);
  const misses = streamSeed(seed, 2);

  // 1. Clear.
  memory.fill(table, 0, <usize>capacity * ENTRY);

  // 2. Insert.
  let distinct: u32 = 0;
  let valueSum: u64 = 0;
  for (let i: u32 = 0; i < inserts; i++) {
    const key = keyOf(randomAt(keys, i));
    const v = randomAt(values, i);
    const e = probe(table, capacity, key);
    if (load<u32>(e) == 0) {
      store<u32>(e, key);
      store<u64>(e + VALUE_OFFSET, v);
      distinct++;
    } else {
      store<u64>(e + VALUE_OFFSET, load<u64>(e + VALUE_OFFSET) + v);
    }
    valueSum += v;
  }

  // 3. Look up: every inserted key (a hit) and a random key (mostly a miss) per step.
  let hits: u32 = 0;
  let hitSum: u64 = 0;
  let h = fold(CHECKSUM_BASIS, <u64>capacity);
  for (let i: u32 = 0; i < inserts; i++) {
    for (let which = 0; which < 2; which++) {
      const key = keyOf(which == 0 ? randomAt(keys, i) : randomAt(misses, i));
      const e = probe(table, capacity, key);
      if (load<u32>(e) == 0) continue;
      const v = load<u64>(e + VALUE_OFFSET);
      store<u64>(e + VALUE_OFFSET, v + 1);
      hits++;
      hitSum += v;
    }
  }
  if (hits < inserts) unreachable(); // an inserted key was not found
  h = fold(h, <u64>hits);
  h = fold(h, hitSum);

  // 4. Scan and check.
  let occupied: u32 = 0;
  let tableSum: u64 = 0;
  const end = table + <usize>capacity * ENTRY;
  for (let e = table; e < end; e += ENTRY) {
    if (load<u32>(e) == 0) continue;
    occupied++;
    tableSum += load<u64>(e + VALUE_OFFSET);
    h = fold(h, load<u64>(e)); // key and low half of the value: the table's layout
  }
  if (occupied != distinct) unreachable();
  if (tableSum != valueSum + <u64>hits) unreachable();
  h = fold(h, <u64>distinct);
  return <i64>h;
}
