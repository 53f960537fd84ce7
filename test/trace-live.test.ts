/**
 * Replay against a live run: a guest's faults recorded through the runtime's `onFault` hook,
 * replayed with the same frames and policy, give the same major-fault counts within a tolerance.
 *
 * Tolerance: 2% of the live count plus 2 faults. With the same frames the replay sees exactly the
 * faults of the live run (the accesses missing from the trace hit in both), and it copies the
 * pager's CLOCK; measured here it matches exactly. What may differ is pager detail the simulator
 * does not copy (e.g. it skips a frame whose address would encode a zero delta, which moves CLOCK's
 * hand), and background reclaim once the runtime has it. A trace recorded with less memory replays
 * larger configurations within the same tolerance (measured: < 1% off at 4x the frames).
 */
import binaryen from 'binaryen';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { readTrace } from '../host/trace/reader.js';
import { accessesOf, replay } from '../host/trace/replay.js';
import { TraceWriter } from '../host/trace/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'farmem-trace-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function wat(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  m.setFeatures(binaryen.Features.All);
  const bin = m.emitBinary();
  m.dispose();
  return bin;
}

// 1 MiB of guest memory: `scan` reads and writes every `step` bytes of [from, to); `random` reads
// n pseudo-random words.
const module = wat(`(module (memory 16)
  (func (export "scan") (param $from i32) (param $to i32) (param $step i32) (result i32) (local $s i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $from) (local.get $to)))
      (local.set $s (i32.add (local.get $s) (i32.load (local.get $from))))
      (i32.store (local.get $from) (local.get $s))
      (local.set $from (i32.add (local.get $from) (local.get $step)))
      (br $l)))
    (local.get $s))
  (func (export "random") (param $n i32) (param $seed i32) (result i32) (local $s i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $seed (i32.add (i32.mul (local.get $seed) (i32.const 1103515245)) (i32.const 12345)))
      (local.set $s (i32.add (local.get $s) (i32.load (i32.and (i32.shr_u (local.get $seed) (i32.const 4)) (i32.const 0xffffc)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $s)))`);

const PAGE = 1024;
const within = (replayed: number, live: number) => Math.abs(replayed - live) <= 0.02 * live + 2;

/** Runs the workload with `frames` local frames and `policy`, recording faults to `path` if given. */
async function liveRun(policy: string, frames: number, path?: string) {
  const trace = path ? TraceWriter.open(path, { pageSize: PAGE, memoryBytes: 16 * 65536, localFrames: frames, note: `prefetch=${policy}` }) : null;
  const fm = await instantiate(module, {}, {
    pageSize: PAGE, local: { bytes: frames * PAGE }, prefetch: policy,
    ...(trace ? { onFault: (page: number, kind: number) => trace.record(page, kind, performance.now() * 1e6) } : {}),
  });
  const scan = fm.exports.scan as (from: number, to: number, step: number) => number;
  const random = fm.exports.random as (n: number, seed: number) => number;
  scan(0, 1 << 20, 4);
  scan(0, 1 << 20, 3 * PAGE);
  random(3000, 7);
  scan(1 << 19, 1 << 20, 64);
  const stats = fm.stats();
  await fm.close();
  trace?.close();
  return stats;
}

describe.each(['none', 'readahead', 'stride', 'leap'])('replay matches a live run of the same configuration (%s)', (policy) => {
  it('major, minor faults and prefetches within 2% + 2', async () => {
    const path = join(dir, `${policy}.fmt`);
    const live = await liveRun(policy, 128, path);
    const sim = replay(accessesOf(readTrace(path)), { policy, local: { frames: 128 } });
    const report = `live: majors ${live.majorFaults} minors ${live.minorFaults} issued ${live.prefetch.issued} hits ${live.prefetch.hits}; ` +
      `replay: majors ${sim.majorFaults} minors ${sim.minorFaults} issued ${sim.prefetchIssued} hits ${sim.prefetchHits}`;
    expect(live.majorFaults, report).toBeGreaterThan(1000);
    expect(within(sim.majorFaults, live.majorFaults), report).toBe(true);
    expect(within(sim.minorFaults, live.minorFaults), report).toBe(true);
    expect(within(sim.prefetchIssued, live.prefetch.issued), report).toBe(true);
    expect(within(sim.prefetchHits, live.prefetch.hits), report).toBe(true);
  });
});

describe('replay predicts another configuration from a trace recorded with less memory', () => {
  it('trace at 64 frames without prefetching → 256 frames with none and leap, within 2% + 2', async () => {
    const path = join(dir, 'small.fmt');
    await liveRun('none', 64, path);
    const acc = accessesOf(readTrace(path));
    for (const policy of ['none', 'leap']) {
      const live = await liveRun(policy, 256);
      const sim = replay(acc, { policy, local: { frames: 256 } });
      const report = `${policy}: live majors ${live.majorFaults} issued ${live.prefetch.issued}; replay majors ${sim.majorFaults} issued ${sim.prefetchIssued}`;
      expect(within(sim.majorFaults, live.majorFaults), report).toBe(true);
      expect(within(sim.prefetchIssued, live.prefetch.issued), report).toBe(true);
    }
  });
});
