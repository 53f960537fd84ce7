/**
 * @fileoverview Names and one-line descriptions of the benchmark suites, without loading them: the
 * CLI's help lists suites from here, so `farmem --help` does not pay for vega and the runtime.
 */
export const SUITE_DESCRIPTIONS = {
  overhead: 'instrumented vs original module, all pages resident (ratio of median times), each instrumenter optimization also off alone',
  programs: 'real WASI programs (the C test programs, Flite) under farmem at 100% local vs the original under the same WASI layer',
  sweep: 'workload × prefetcher × local memory: slowdown vs all-local, faults, prefetch accuracy/coverage',
  pagesize: 'page size 256 B … 64 KiB on random and sequential workloads: bytes moved, faults, time',
  faultpath: 'cost of a major fault: amortized (embedded), per stage and hand-off through a farmem serve over ws:// and tcp:// vs raw ws and raw tcp round trips, same run',
  peer: 'native C programs under plain Linux swap (cgroup cap + zram) vs farmem at the same local memory',
  redis: 'Redis store: major fault vs a raw GET of one page, and sequential-scan throughput vs farmem serve, same run',
  remote: 'local-memory sweep through a real farmem serve beside the embedded store: slowdown, MB/s vs raw pipelined ws',
} as const;

export type SuiteName = keyof typeof SUITE_DESCRIPTIONS;
export const SUITE_NAMES = Object.keys(SUITE_DESCRIPTIONS) as SuiteName[];
