/**
 * @fileoverview matmul: dense f64 matrix multiply C = A × B.
 *
 * Working set: three n × n row-major f64 matrices, n = ⌊√(sizeBytes / 24)⌋ (so n = 52 at
 * 64 KiB, 4729 at 512 MiB; the work grows as n³, so big sizes take long). Loop order i-k-j:
 * the inner loop streams a row of B and a row of C (read-modify-write of C), while A[i][k]
 * stays in a register.
 *
 *    A (n×n) │ B (n×n) │ C (n×n)        C[i][j] += A[i][k] * B[k][j]
 *
 * Entries of A and B are small integers (-8..8), so every product and partial sum is an
 * exact integer in f64 and the result does not depend on the summation order: a host test
 * can recompute it. The checksum folds in Σ (index + 1) × C[index] over all entries.
 */
import { checkSize, reserve } from '../lib/heap';
import { nextBelow, seedRandom } from '../lib/random';
import { CHECKSUM_BASIS, fold } from '../lib/checksum';

export function run(sizeBytes: i32, seed: i32): i64 {
  checkSize(sizeBytes);
  const n = <usize>sqrt<f64>(<f64>sizeBytes / 24);
  const matrixBytes = n * n * 8;
  const rowBytes = n * 8;
  const a = reserve(3 * matrixBytes);
  const b = a + matrixBytes;
  const c = b + matrixBytes;

  seedRandom(seed, 0);
  for (let p = a; p < c; p += 8) store<f64>(p, <f64>(<i32>nextBelow(17) - 8));
  memory.fill(c, 0, matrixBytes);

  for (let i: usize = 0; i < n; i++) {
    const cRow = c + i * rowBytes;
    for (let k: usize = 0; k < n; k++) {
      const aik = load<f64>(a + i * rowBytes + k * 8);
      const bRow = b + k * rowBytes;
      for (let j: usize = 0; j < rowBytes; j += 8) {
        store<f64>(cRow + j, load<f64>(cRow + j) + aik * load<f64>(bRow + j));
      }
    }
  }

  let weighted: u64 = 0;
  let index: u64 = 1;
  for (let p = c; p < c + matrixBytes; p += 8, index++) {
    weighted += index * <u64><i64>load<f64>(p);
  }
  let h = fold(CHECKSUM_BASIS, <u64>n);
  h = fold(h, weighted);
  h = fold(h, reinterpret<u64>(load<f64>(c + matrixBytes - 8))); // C[n-1][n-1], as bits
  return <i64>h;
}
