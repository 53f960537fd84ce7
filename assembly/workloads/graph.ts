/**
 * @fileoverview graph: BFS and PageRank over a generated graph in CSR form.
 *
 * Working set ≈ 60 bytes per node, N = (sizeBytes - 4) / 60 nodes (even), AVG_DEGREE = 8
 * out-edges per node on average:
 *
 *   offsets  (N+1) × i32   edges of node u: targets[offsets[u] .. offsets[u+1])
 *   targets  8N × i32      half are near u (within ±64 nodes), half anywhere
 *   level    N × i32       BFS level, -1 = unreached
 *   queue    N × i32       BFS queue
 *   rank     N × f64       PageRank, read…
 *   next     N × f64       …and pushed along out-edges (scattered read-modify-write)
 *
 * The arrays are packed with no padding, so rank and next start 4 bytes off an 8-byte
 * boundary (offsets has an odd count of i32): their 8-byte accesses straddle page boundaries.
 * Degrees come in pairs that sum to 2 × AVG_DEGREE, so targets holds exactly 8N entries;
 * every node has at least MIN_DEGREE out-edges, so PageRank has no dangling nodes.
 *
 *   1. generate the graph
 *   2. BFS from node 0; check every edge u→v between reached nodes has level[v] ≤ level[u] + 1
 *   3. PAGERANK_ITERATIONS push-style PageRank steps (damping 0.85); check Σ rank ≈ 1
 *   checksum: reached count, Σ levels, max level, and the bits of Σ rank and of a few ranks
 */
import { checkSize, reserve } from '../lib/heap';
import { nextBelow, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

const AVG_DEGREE: u32 = 8;
const MIN_DEGREE: u32 = 4;
/** Near edges go to u + d, d in [-NEAR, NEAR] (wrapping): the graph's locality. */
const NEAR: u32 = 64;
const BYTES_PER_NODE: i32 = 4 + 4 * AVG_DEGREE + 4 + 4 + 8 + 8;
const PAGERANK_ITERATIONS: i32 = 5;
const DAMPING: f64 = 0.85;

// @ts-ignore: decorator
@inline
function i32At(array: usize, i: u32): i32 {
  return load<i32>(array + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline
function setI32(array: usize, i: u32, v: i32): void {
  store<i32>(array + (<usize>i << 2), v);
}

// @ts-ignore: decorator
@inline
function f64At(array: usize, i: u32): f64 {
  return load<f64>(array + (<usize>i << 3));
}

// @ts-ignore: decorator
@inline
function setF64(array: usize, i: u32, v: f64): void {
  store<f64>(array + (<usize>i << 3), v);
}

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const n = <u32>((sizeBytes - 4) / BYTES_PER_NODE) & ~1;
  const m = n * AVG_DEGREE;
  const offsets = reserve(<usize>n * BYTES_PER_NODE + 4);
  const targets = offsets + ((<usize>n + 1) << 2);
  const level = targets + (<usize>m << 2);
  const queue = level + (<usize>n << 2);
  const rank = queue + (<usize>n << 2);
  const next = rank + (<usize>n << 3);

  // 1. Generate: node u gets degree d(u), pairs (u, u+1) sum to 2 × AVG_DEGREE.
  seedRandom(seed, 0);
  let e: u32 = 0;
  let pairDegree: u32 = 0;
  for (let u: u32 = 0; u < n; u++) {
    let degree: u32;
    if ((u & 1) == 0) {
      pairDegree = MIN_DEGREE + nextBelow(2 * (AVG_DEGREE - MIN_DEGREE) + 1);
      degree = pairDegree;
    } else {
      degree = 2 * AVG_DEGREE - pairDegree;
    }
    setI32(offsets, u, <i32>e);
    for (let k: u32 = 0; k < degree; k++, e++) {
      let v: u32;
      if (k & 1) {
        v = nextBelow(n);
      } else {
        v = u + n + nextBelow(2 * NEAR + 1) - NEAR; // n + … keeps it non-negative for small u
        v %= n;
      }
      setI32(targets, e, <i32>v);
    }
  }
  setI32(offsets, n, <i32>e);
  if (e != m) unreachable();

  // 2. BFS from node 0.
  for (let u: u32 = 0; u < n; u++) setI32(level, u, -1);
  setI32(level, 0, 0);
  setI32(queue, 0, 0);
  let head: u32 = 0;
  let tail: u32 = 1;
  while (head < tail) {
    const u = <u32>i32At(queue, head++);
    const nextLevel = i32At(level, u) + 1;
    const last = <u32>i32At(offsets, u + 1);
    for (let k = <u32>i32At(offsets, u); k < last; k++) {
      const v = <u32>i32At(targets, k);
      if (i32At(level, v) < 0) {
        setI32(level, v, nextLevel);
        setI32(queue, tail++, <i32>v);
      }
    }
  }
  let levelSum: u64 = 0;
  let maxLevel: i32 = 0;
  for (let u: u32 = 0; u < n; u++) {
    const lu = i32At(level, u);
    if (lu < 0) continue;
    levelSum += <u64>lu;
    if (lu > maxLevel) maxLevel = lu;
    const last = <u32>i32At(offsets, u + 1);
    for (let k = <u32>i32At(offsets, u); k < last; k++) {
      const lv = i32At(level, <u32>i32At(targets, k));
      if (lv < 0 || lv > lu + 1) unreachable(); // BFS levels are inconsistent
    }
  }

  // 3. PageRank, pushing rank[u] / degree(u) along each out-edge of u.
  const invN = 1.0 / <f64>n;
  for (let u: u32 = 0; u < n; u++) setF64(rank, u, invN);
  for (let it = 0; it < PAGERANK_ITERATIONS; it++) {
    for (let u: u32 = 0; u < n; u++) setF64(next, u, 0);
    for (let u: u32 = 0; u < n; u++) {
      const first = <u32>i32At(offsets, u);
      const last = <u32>i32At(offsets, u + 1);
      const share = DAMPING * f64At(rank, u) / <f64>(last - first);
      for (let k = first; k < last; k++) {
        const v = <u32>i32At(targets, k);
        setF64(next, v, f64At(next, v) + share);
      }
    }
    for (let u: u32 = 0; u < n; u++) setF64(rank, u, (1 - DAMPING) * invN + f64At(next, u));
  }
  let rankSum: f64 = 0;
  for (let u: u32 = 0; u < n; u++) rankSum += f64At(rank, u);
  if (abs<f64>(rankSum - 1) > 1e-6) unreachable(); // rank was lost or created

  let h = fold(CHECKSUM_BASIS, <u64>n);
  h = fold(h, <u64>tail); // nodes reached
  h = fold(h, levelSum);
  h = fold(h, <u64>maxLevel);
  h = fold(h, reinterpret<u64>(rankSum));
  for (let u: u32 = 0; u < n; u += n >> 3) h = fold(h, reinterpret<u64>(f64At(rank, u)));
  return <i64>h;
}
