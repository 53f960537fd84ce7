/**
 * @fileoverview shared-hashtable: several guest threads insert into and look up one open-addressing
 * hash table in shared memory, with atomics only (no locks), and meet at a barrier built on
 * `atomic.wait` / `atomic.notify` (memory.atomic.wait32 / notify). Built with `--sharedMemory --importMemory` (every thread's
 * instance imports the one memory), see scripts/build-assembly.mjs.
 *
 *    0       4       8                16
 *    ┌───────┬───────┬────────────────┐
 *    │ key   │ (pad) │ value (u64)    │   entry i at table + 16 * i (aligned for 64-bit atomics)
 *    └───────┴───────┴────────────────┘
 *
 *   setup(capacity)                      thread 0: grow memory, clear the table and the barrier
 *   work(tid, threads, ops, seed)        each thread: `ops` inserts of keys drawn from a key space
 *                                        shared by all threads (so they race for the same slots:
 *                                        a slot is claimed with cmpxchg, a value grows by atomic
 *                                        add), the barrier, then `ops` lookups that add 1 to every
 *                                        key found; returns how many it found
 *   checksum()                           thread 0, after all: an order-independent checksum of
 *                                        the (key, value) pairs plus the occupied count, so it is
 *                                        the same whatever the interleaving; traps if the values do
 *                                        not add up to what the threads inserted
 */
import { mix64, randomAt, streamSeed } from '../lib/random';

const ENTRY: usize = 16;
const VALUE_OFFSET: usize = 8;

/** Shared header (in memory: every thread's instance has its own globals). */
const HEADER: usize = (__heap_base + 255) & ~(<usize>255);
const H_TABLE: usize = HEADER; // u32 table address
const H_CAPACITY: usize = HEADER + 4; // u32 slots
const H_ARRIVED: usize = HEADER + 8; // i32 threads at the barrier
const H_RELEASED: usize = HEADER + 12; // i32 barrier generation
const H_INSERTED: usize = HEADER + 16; // u64 sum of every inserted value
const H_FOUND: usize = HEADER + 24; // u64 lookups that found their key
const TABLE: usize = HEADER + 256;

/** Key space: a quarter of the capacity, so the table stays under 1/4 full and threads collide. */
function keyOf(r: u64, capacity: u32): u32 {
  return 1 + <u32>((r >>> 32) * <u64>(capacity >>> 2) >>> 32);
}

function home(key: u32, capacity: u32): u32 {
  return <u32>((<u64>(key * 0x9e3779b1) * <u64>capacity) >> 32);
}

/** The entry of `key`, claiming an empty one with cmpxchg if the key is not there yet. */
function findOrClaim(table: usize, capacity: u32, key: u32): usize {
  let slot = home(key, capacity);
  while (true) {
    const e = table + <usize>slot * ENTRY;
    const k = atomic.load<u32>(e);
    if (k == key) return e;
    if (k == 0) {
      const seen = atomic.cmpxchg<u32>(e, 0, key);
      if (seen == 0 || seen == key) return e;
    }
    slot = slot + 1 == capacity ? 0 : slot + 1;
  }
  return 0;
}

function find(table: usize, capacity: u32, key: u32): usize {
  let slot = home(key, capacity);
  while (true) {
    const e = table + <usize>slot * ENTRY;
    const k = atomic.load<u32>(e);
    if (k == key) return e;
    if (k == 0) return 0;
    slot = slot + 1 == capacity ? 0 : slot + 1;
  }
  return 0;
}

export function setup(capacity: u32): void {
  const end = <u64>TABLE + <u64>capacity * ENTRY;
  const have = <u64>memory.size() << 16;
  if (end > have && memory.grow(<i32>((end - have + 65535) >> 16)) < 0) unreachable();
  memory.fill(HEADER, 0, <usize>(end - <u64>HEADER));
  atomic.store<u32>(H_TABLE, <u32>TABLE);
  atomic.store<u32>(H_CAPACITY, capacity);
}

/** All `threads` threads meet here; the last one to arrive wakes the others. */
function barrier(threads: i32): void {
  const generation = atomic.load<i32>(H_RELEASED);
  if (atomic.add<i32>(H_ARRIVED, 1) + 1 == threads) {
    atomic.store<i32>(H_ARRIVED, 0);
    atomic.add<i32>(H_RELEASED, 1);
    atomic.notify(H_RELEASED, <u32>threads);
    return;
  }
  while (atomic.load<i32>(H_RELEASED) == generation) atomic.wait<i32>(H_RELEASED, generation, -1);
}

export function work(tid: i32, threads: i32, ops: u32, seed: i32): u32 {
  const table = <usize>atomic.load<u32>(H_TABLE);
  const capacity = atomic.load<u32>(H_CAPACITY);
  const keys = streamSeed(seed, <u32>tid);
  let inserted: u64 = 0;
  for (let i: u32 = 0; i < ops; i++) {
    const r = randomAt(keys, i);
    const e = findOrClaim(table, capacity, keyOf(r, capacity));
    const v = (r & 0xffff) + 1;
    atomic.add<u64>(e + VALUE_OFFSET, v);
    inserted += v;
  }
  atomic.add<u64>(H_INSERTED, inserted);
  barrier(threads);
  const probes = streamSeed(seed, <u32>(tid + 1000));
  let found: u32 = 0;
  for (let i: u32 = 0; i < ops; i++) {
    const e = find(table, capacity, keyOf(randomAt(probes, i), capacity << 1)); // half of these keys were never inserted
    if (e == 0) continue;
    atomic.add<u64>(e + VALUE_OFFSET, 1);
    found++;
  }
  atomic.add<u64>(H_FOUND, <u64>found);
  return found;
}

export function checksum(): i64 {
  const table = <usize>atomic.load<u32>(H_TABLE);
  const capacity = atomic.load<u32>(H_CAPACITY);
  let occupied: u64 = 0;
  let total: u64 = 0;
  let h: u64 = 0;
  for (let i: u32 = 0; i < capacity; i++) {
    const e = table + <usize>i * ENTRY;
    const k = load<u32>(e);
    if (k == 0) continue;
    const v = load<u64>(e + VALUE_OFFSET);
    occupied++;
    total += v;
    h += mix64((<u64>k << 40) ^ v); // a sum: independent of which slot each key landed in
  }
  if (total != load<u64>(H_INSERTED) + load<u64>(H_FOUND)) unreachable();
  return <i64>(h ^ mix64(occupied));
}
