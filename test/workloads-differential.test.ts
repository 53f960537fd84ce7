/**
 * Differential tests of the workload suite: every workload, original on plain V8 vs instrumented
 * under farmem, with local memory at 100%, 10% and a couple of frames, at 256 B, 4 KiB and 64 KiB
 * pages. Checksums must be identical, and the stats must show that faults, evictions and
 * write-backs really happened where memory was short.
 */
import { describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { loadWorkload, WORKLOADS, type WorkloadExports } from '../host/workloads.js';

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

const expected = new Map<string, bigint>();
async function original(name: string): Promise<bigint> {
  if (!expected.has(name)) {
    const { instance } = await WebAssembly.instantiate(loadWorkload(name));
    expected.set(name, (instance.exports as unknown as WorkloadExports).run(sizeOf(name), SEED));
  }
  return expected.get(name)!;
}

describe.each(WORKLOADS.map((w) => w.name))('workload %s', (name) => {
  for (const pageSize of PAGE_SIZES) {
    for (const l of LOCALS) {
      it(`matches the original at ${pageSize} B pages, local ${l.name}`, async () => {
        const local = typeof l.local === 'function' ? l.local(pageSize) : l.local;
        const fm = await instantiate(loadWorkload(name), {}, { pageSize, local });
        try {
          const got = (fm.exports as unknown as WorkloadExports).run(sizeOf(name), SEED);
          expect(got).toBe(await original(name));
          const stats = fm.stats();
          expect(stats.majorFaults).toBeGreaterThan(0);
          if (l.name !== '100%') {
            expect(stats.evictions).toBeGreaterThan(0);
            expect(stats.writeBacks).toBeGreaterThan(0);
            expect(stats.localBytes).toBeLessThan(stats.virtualBytes);
          } else {
            expect(stats.evictions).toBe(0);
          }
        } finally {
          await fm.close();
        }
      });
    }
  }
});
