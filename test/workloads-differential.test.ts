/**
 * Differential tests of the workload suite: every workload, original on plain V8 vs instrumented
 * under farmem, with local memory at 100%, 10% and a couple of frames, at 256 B, 4 KiB and 64 KiB
 * pages. Checksums must be identical, and the stats must show that faults, evictions and
 * write-backs really happened where memory was short.
 */
import { describe, expect, it } from 'vitest';
import { WORKLOADS } from '../host/workloads.js';
import { runWorkloadFar, workloadReference } from './support/differential.js';

const SIZE = 512 * 1024;
/** matmul's work grows with n³ and its column walk thrashes tiny pools of 64 KiB pages: keep it smaller. */
const sizeOf = (name: string) => (name === 'matmul' ? 160 * 1024 : SIZE);
const SEED = 7;
const PAGE_SIZES = [256, 4096, 65536] as const;
const LOCALS = [
  { name: '100%', local: { fraction: 1 } },
  { name: '10%', local: { fraction: 0.1 } },
  { name: '2 frames', local: (pageSize: number) => ({ bytes: 2 * pageSize }) },
] as const;

describe.each(WORKLOADS.map((w) => w.name))('workload %s', (name) => {
  for (const pageSize of PAGE_SIZES) {
    for (const l of LOCALS) {
      it(`matches the original at ${pageSize} B pages, local ${l.name}`, async () => {
        const local = typeof l.local === 'function' ? l.local(pageSize) : l.local;
        const { result, stats } = await runWorkloadFar(name, sizeOf(name), SEED, { pageSize, local });
        expect(result).toBe(await workloadReference(name, sizeOf(name), SEED));
        expect(stats.majorFaults).toBeGreaterThan(0);
        if (l.name !== '100%') {
          expect(stats.evictions).toBeGreaterThan(0);
          expect(stats.writeBacks).toBeGreaterThan(0);
          expect(stats.localBytes).toBeLessThan(stats.virtualBytes);
        } else {
          expect(stats.evictions).toBe(0);
        }
      });
    }
  }
});
