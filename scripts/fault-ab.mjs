#!/usr/bin/env node
/**
 * @fileoverview Interleaved A/B of the embedded major fault between builds: each checkout given
 * (built, with `dist/`) runs the faultpath suite's embedded measurement — hashtable 4 MiB, 25% local,
 * no prefetch — in its own process, the checkouts alternating for `rounds` rounds, so load changes on
 * a shared machine fall on every build alike. Per run (median of `reps` fresh instances):
 *
 *   amortizedUs     (time at 25% − all-local time) / major faults, latency recording off
 *   amortizedLatUs  the same with latency recording on (the figure `farmem bench faultpath` reports)
 *   p50Us           the runtime's major-fault p50 (stats().latency)
 *
 *   node --no-liftoff scripts/fault-ab.mjs [--rounds 3] [--reps 5] <checkout> [<checkout> ...]
 *   e.g. git worktree add /tmp/base <old commit> && (cd /tmp/base && npm ci && npm run build)
 *        node --no-liftoff scripts/fault-ab.mjs /tmp/base .
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SIZE = 4 << 20;
const WORKLOAD = 'hashtable';

/** One run in this process against the checkout at `root`; prints one JSON line. */
async function measure(root, reps) {
  const { loadFarmem, runFresh } = await import(pathToFileURL(path.join(root, 'dist/bench/lib/farmem.js')).href);
  const fm = await loadFarmem();
  const at = (fraction, latency = false) => runFresh(fm, WORKLOAD, { pageSize: 4096, local: { fraction }, prefetch: 'none', ...(latency ? { latency } : {}) }, SIZE, 1);
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  await at(1); // priming
  const base = [], low = [], lat = [], p50 = [];
  let major = 0;
  for (let r = 0; r < reps; r++) {
    base.push((await at(1)).ns);
    const l = await at(0.25);
    low.push(l.ns);
    major = l.stats.majorFaults;
    const t = await at(0.25, true);
    lat.push(t.ns);
    p50.push(t.stats.latency.major.p50);
  }
  const us = (ns) => +(ns / major / 1e3).toFixed(3);
  console.log(JSON.stringify({
    checkout: root, majorFaults: major, amortizedUs: us(median(low) - median(base)), amortizedLatUs: us(median(lat) - median(base)),
    p50Us: +(median(p50) / 1e3).toFixed(3),
  }));
}

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
if (args[0] === '--child') {
  await measure(args[1], Number(args[2]));
} else {
  const rounds = flag('--rounds', 3);
  const reps = flag('--reps', 5);
  if (args.length === 0) {
    console.error('usage: node --no-liftoff scripts/fault-ab.mjs [--rounds N] [--reps N] <checkout> [<checkout> ...]');
    process.exit(2);
  }
  const self = fileURLToPath(import.meta.url);
  for (let round = 0; round < rounds; round++) {
    for (const checkout of args) {
      const r = spawnSync(process.execPath, ['--no-liftoff', self, '--child', path.resolve(checkout), String(reps)], { stdio: 'inherit' });
      if (r.status !== 0) process.exit(r.status ?? 1);
    }
  }
}
