/**
 * Prefetching in the live runtime: on sequential and strided workloads at 25% local memory, Leap
 * cuts demand major faults by at least 80% against no prefetching, with identical results; every
 * policy leaves every workload's result unchanged (random ones included).
 */
import { describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { loadWorkload, WORKLOADS, type WorkloadExports } from '../host/workloads.js';

const SIZE = 2 << 20;
const SEED = 5;
const POLICIES = ['none', 'readahead', 'stride', 'leap', 'leap-stream'];

async function run(name: string, prefetch: string, pageSize = 4096) {
  const fm = await instantiate(loadWorkload(name), {}, { pageSize, local: { fraction: 0.25 }, prefetch });
  try {
    return { result: (fm.exports as unknown as WorkloadExports).run(SIZE, SEED), stats: fm.stats() };
  } finally {
    await fm.close();
  }
}

describe('leap against no prefetching at 25% local', () => {
  for (const name of ['seqscan', 'stride']) {
    it(`${name}: at least 80% fewer demand major faults, same result`, async () => {
      const none = await run(name, 'none');
      const leap = await run(name, 'leap');
      expect(leap.result).toBe(none.result);
      expect(leap.stats.majorFaults).toBeLessThanOrEqual(0.2 * none.stats.majorFaults);
      expect(leap.stats.prefetch.accuracy).toBeGreaterThan(0.5);
    });
  }
});

describe('every policy keeps every result', () => {
  for (const { name } of WORKLOADS) {
    it(name, async () => {
      const { instance } = await WebAssembly.instantiate(loadWorkload(name));
      const want = (instance.exports as unknown as WorkloadExports).run(SIZE, SEED);
      for (const policy of POLICIES) expect((await run(name, policy, 1024)).result).toBe(want);
    });
  }
});
