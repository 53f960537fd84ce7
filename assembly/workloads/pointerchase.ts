/**
 * @fileoverview pointerchase: a linked-list walk over a random single-cycle permutation.
 *
 * Working set: N = sizeBytes / 12 packed 12-byte nodes. Each node holds the index of the
 * next node and a u64 payload 4 bytes in, so payloads are only 4-byte aligned and some of
 * them straddle every page boundary:
 *
 *    0        4                      12
 *    ┌────────┬──────────────────────┐
 *    │ next   │ payload (u64)        │   node i at nodes + 12 * i
 *    └────────┴──────────────────────┘
 *
 *   1. next[i] = i, payload[i] = random; then Sattolo's shuffle of the next fields, which
 *      makes i → next[i] one cycle through all N nodes (random swaps: random access)
 *   2. chase the list from node 0 for CHASE_LAPS × N steps; every step depends on the load
 *      before it, folds the payload into the checksum and rewrites it (dirtying the page)
 *   3. check the walk returned to node 0 after exactly every N steps (traps if not)
 */
import { checkSize, reserve } from '../lib/heap';
import { nextBelow, nextU64, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

const NODE: usize = 12;
const PAYLOAD_OFFSET: usize = 4;
const CHASE_LAPS: u32 = 2;

// @ts-ignore: decorator
@inline
function node(nodes: usize, i: u32): usize {
  return nodes + <usize>i * NODE;
}

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const n = <u32>(<usize>sizeBytes / NODE);
  const nodes = reserve(<usize>n * NODE);

  // 1. Build: identity, payloads, then Sattolo (swap i with a random j < i, i from the top).
  seedRandom(seed, 0);
  for (let i: u32 = 0; i < n; i++) {
    store<u32>(node(nodes, i), i);
    store<u64>(node(nodes, i) + PAYLOAD_OFFSET, nextU64());
  }
  for (let i: u32 = n - 1; i > 0; i--) {
    const j = nextBelow(i);
    const ni = node(nodes, i);
    const nj = node(nodes, j);
    const t = load<u32>(ni);
    store<u32>(ni, load<u32>(nj));
    store<u32>(nj, t);
  }

  // 2. Chase.
  let h = fold(CHECKSUM_BASIS, <u64>n);
  let cur: u32 = 0;
  for (let lap: u32 = 0; lap < CHASE_LAPS; lap++) {
    for (let step: u32 = 0; step < n; step++) {
      const p = node(nodes, cur);
      const payload = load<u64>(p + PAYLOAD_OFFSET);
      h = fold(h, payload);
      store<u64>(p + PAYLOAD_OFFSET, payload + <u64>step);
      cur = load<u32>(p);
    }
    // 3. One lap of a single cycle ends where it started.
    if (cur != 0) unreachable();
  }
  return <i64>h;
}
