// A prefetch policy of your own in a few lines: fetch the next two pages after every fault, and
// compare it with the built-in ones on a workload.
// Run (after npm ci):  node examples/custom-policy.mjs
import { instantiate, loadWorkload, registerPolicy } from '../dist/host/index.js';

registerPolicy('next2', () => ({
  name: 'next2',
  // Called on every demand fault and every first touch of a prefetched page. Write the pages to
  // fetch into `out` and return how many; no allocation here, it runs on the fault path.
  onFault(fault, out) {
    out[0] = fault.page + 1;
    out[1] = fault.page + 2;
    return 2;
  },
  reset() {},
}));

for (const prefetch of ['none', 'next2', 'leap']) {
  const fm = await instantiate(loadWorkload('seqscan'), {}, { local: { fraction: 0.25 }, prefetch });
  const checksum = fm.exports.run(8 << 20, 1);
  const { majorFaults, prefetch: p } = fm.stats();
  console.log(`${prefetch.padEnd(6)} checksum ${checksum}  major faults ${majorFaults}  prefetch hits ${p.hits}  accuracy ${(100 * p.accuracy).toFixed(1)}%`);
  await fm.close();
}
