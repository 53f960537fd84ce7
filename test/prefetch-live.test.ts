/**
 * Prefetching in the live runtime: on sequential and strided workloads at 25% local memory, Leap
 * cuts demand major faults by at least 80% against no prefetching, with identical results; every
 * policy leaves every workload's result unchanged (random ones included); leap-stream's drop-behind
 * makes a looping scan fetch less with more local memory.
 */
import { describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { loadWorkload, WORKLOADS, type WorkloadExports } from '../host/workloads.js';

const SIZE = 2 << 20;
const SEED = 5;
const POLICIES = ['none', 'readahead', 'stride', 'leap', 'leap-stream'];

async function run(name: string, prefetch: string, pageSize = 4096, fraction = 0.25) {
  const fm = await instantiate(loadWorkload(name), {}, { pageSize, local: { fraction }, prefetch });
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

describe('leap-stream drop-behind on a loop over more than local memory', () => {
  it('seqscan fetches less with more local memory (CLOCK alone refetches every page each pass), same result, local memory kept', async () => {
    const leap = await run('seqscan', 'leap', 4096, 0.5);
    const half = await run('seqscan', 'leap-stream', 4096, 0.5);
    const quarter = await run('seqscan', 'leap-stream', 4096, 0.25);
    expect(half.result).toBe(leap.result);
    expect(quarter.result).toBe(leap.result);
    expect(half.stats.prefetch.dropped).toBeGreaterThan(0);
    expect(half.stats.bytesIn).toBeLessThan(0.75 * leap.stats.bytesIn);
    expect(half.stats.bytesIn).toBeLessThan(0.9 * quarter.stats.bytesIn);
    expect(leap.stats.prefetch.dropped).toBe(0);
    for (const s of [half.stats, quarter.stats]) expect(s.residentPeak).toBeLessThanOrEqual(s.localBytes / s.pageSize);
  });
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
