/**
 * @fileoverview What the diagnostics channels (host/stats/channels.ts) cost on the fault path, in
 * one run: the embedded fault loop of the current build with nobody subscribed, the same loop of a
 * build without the publishing statements (the baseline), and the current build with a no-op
 * subscriber on every channel. Not a test: `node dist/bench/stats/channels.bench.js [--reps 30]`.
 *
 * The baseline is this checkout's `host/` copied to a temporary directory with every
 * `if (<channel>.hasSubscribers) publish…(…);` statement of the pager removed, compiled with the
 * project's tsc. A child process loads both builds side by side (seqscan at 256 B pages with a
 * 64-frame pool, one instance per build, warmed up) and times `--reps` rounds of one run of each
 * build (about 100k major faults each, order shuffled): once with nobody subscribed, and in a second
 * child with a no-op subscriber on every channel. Alternating within one process lets a shared
 * machine's noise hit both builds alike; the ratios are taken per round.
 * Writes `bench/results/channels.json` and prints the ratios with their spread.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collectEnv } from '../lib/env.js';
import { median, quantile, summarize } from '../lib/stats.js';
import { repoRoot } from '../lib/repo-root.js';

const ROOT = repoRoot(import.meta.url);
const CURRENT = path.join(ROOT, 'dist/host');
const WASM = path.join(ROOT, 'build/assembly/seqscan.wasm');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const config = { reps: arg('reps', 30), pageSize: 256, frames: 64, pages: 20_000 };

/** Pager statements that publish; the baseline build has none of them. */
const PUBLISH = /^\s*if \([^)]*\w+Channel\.hasSubscribers\) publish\w+\([^;]*\);\n/gm;

/** Builds `host/` without the publishing statements into a temp dir; returns its `dist/host`. */
function buildBaseline(): { dir: string; host: string; removed: number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'farmem-channels-base-'));
  cpSync(path.join(ROOT, 'host'), path.join(dir, 'host'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  cpSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json')); // "type": "module"
  rmSync(path.join(dir, 'host/cli'), { recursive: true }); // the CLI imports bench/; the runtime does not
  const pager = path.join(dir, 'host/runtime/pager.ts');
  const source = readFileSync(pager, 'utf8');
  const removed = source.match(PUBLISH)?.length ?? 0;
  if (removed < 4) throw new Error(`expected the pager's four publish statements, found ${removed}: update PUBLISH`);
  writeFileSync(pager, source.replace(PUBLISH, ''));
  const tsconfig = JSON.parse(readFileSync(path.join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
  tsconfig.include = ['host/**/*.ts'];
  writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
  execFileSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  return { dir, host: path.join(dir, 'dist/host'), removed };
}

/**
 * Runs in a child process (`--no-liftoff`): both builds loaded side by side, one instance each, then
 * rounds of a baseline run and a current run in a shuffled order, so the two alternate every ~50 ms
 * and share the machine's noise. With `subscribe` = 1 a no-op subscriber is on every channel from
 * the start (subscribing changes a channel object's prototype, which would deoptimize the pager if
 * it were flipped between runs, so each mode gets its own process). Prints ns per major fault.
 */
const CHILD = `
import diagnostics_channel from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
const [baseHost, currentHost, wasm, subscribe, pageSize, frames, pages, rounds] = process.argv.slice(1);
const { CHANNEL_NAMES } = await import(currentHost + '/stats/channels.js');
let events = 0;
if (subscribe === '1') for (const n of Object.values(CHANNEL_NAMES)) diagnostics_channel.subscribe(n, () => { events++; });
const bytes = readFileSync(wasm);
const options = { pageSize: +pageSize, local: { bytes: +frames * +pageSize } };
const base = await (await import(baseHost + '/index.js')).instantiate(bytes, {}, options);
const current = await (await import(currentHost + '/index.js')).instantiate(bytes, {}, options);
const size = +pages * +pageSize;
function timed(fm) {
  const f0 = fm.stats().majorFaults;
  const t0 = process.hrtime.bigint();
  fm.exports.run(size, 1);
  return Number(process.hrtime.bigint() - t0) / (fm.stats().majorFaults - f0);
}
for (const fm of [base, current, base, current]) fm.exports.run(size, 1);
const out = { baseline: [], current: [], events: 0 };
let seed = 12345;
for (let r = 0; r < +rounds; r++) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  if (seed & 1024) { out.baseline.push(timed(base)); out.current.push(timed(current)); }
  else { out.current.push(timed(current)); out.baseline.push(timed(base)); }
}
out.events = events;
await base.close();
await current.close();
console.log(JSON.stringify(out));
`;

interface ChildResult { baseline: number[]; current: number[]; events: number }

function measure(baseline: string, subscribe: boolean): ChildResult {
  const args = ['--no-liftoff', '--input-type=module', '-e', CHILD, baseline, CURRENT, WASM, subscribe ? '1' : '0',
    String(config.pageSize), String(config.frames), String(config.pages), String(config.reps)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`measurement failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildResult;
}

const { dir, host: baseline, removed } = buildBaseline();
try {
  const off = measure(baseline, false);
  if (off.events !== 0) throw new Error('the unsubscribed run saw events');
  const on = measure(baseline, true);
  const ratios = (r: ChildResult) => r.current.map((v, i) => v / r.baseline[i]!);
  const describe = (a: number[]) => ({ median: median(a), p10: quantile(a, 0.1), p90: quantile(a, 0.9) });
  const result = {
    env: collectEnv(['--no-liftoff']),
    config: { ...config, baselinePublishStatementsRemoved: removed },
    baseline: 'this checkout built without the pager\'s publish statements, in the same process, runs alternating',
    nsPerFault: {
      unsubscribed: { baseline: summarize(off.baseline), current: summarize(off.current) },
      subscribed: { baseline: summarize(on.baseline), current: summarize(on.current) },
    },
    ratio: { unsubscribed: describe(ratios(off)), subscribed: describe(ratios(on)) },
    eventsWhileSubscribed: on.events,
    samples: { unsubscribed: off, subscribed: on },
  };
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench/results/channels.json'), JSON.stringify(result, null, 2) + '\n');
  const r = result.ratio;
  console.log(`channels unsubscribed vs no publishing: ${r.unsubscribed.median.toFixed(3)}x (p10 ${r.unsubscribed.p10.toFixed(3)}, p90 ${r.unsubscribed.p90.toFixed(3)})`);
  console.log(`channels subscribed (no-op subscriber) vs no publishing: ${r.subscribed.median.toFixed(3)}x (p10 ${r.subscribed.p10.toFixed(3)}, p90 ${r.subscribed.p90.toFixed(3)})`);
  const b = result.nsPerFault.unsubscribed.baseline;
  console.log(`baseline ${b.median.toFixed(0)} ns per major fault (rme ${b.rme.toFixed(1)}%), ${config.reps} rounds per mode`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
