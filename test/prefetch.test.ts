/**
 * Prefetch policies on synthetic fault sequences, Leap's reference vectors, the registry and advice.
 */
import { describe, expect, it } from 'vitest';
import { OptionError } from '../host/errors.js';
import { LeapPolicy, majority, NO_TREND } from '../host/prefetch/leap.js';
import { BEHIND, LeapStreamPolicy, MAX_DEPTH, MIN_DEPTH, TOP_UP } from '../host/prefetch/leap-stream.js';
import { Advice, type FaultInfo, type PrefetchPolicy } from '../host/prefetch/policy.js';
import { createPolicy, policyNames, registerPolicy } from '../host/prefetch/registry.js';

const NUM_PAGES = 1 << 20;

interface Run {
  misses: number;
  issued: number;
  hits: number;
  accesses: number;
}

/**
 * A never-evicting cache: each access to an absent page is a demand miss (the policy is asked and
 * its pages are added); the first access to a prefetched page is a prefetch hit (reported too).
 */
function runNeverEvicting(policy: PrefetchPolicy, reads: Iterable<number>): Run {
  const resident = new Set<number>();
  const prefetched = new Set<number>();
  const out = new Int32Array(32);
  const info: FaultInfo = { page: 0, prefetchHit: false, time: 0, numPages: NUM_PAGES };
  const run: Run = { misses: 0, issued: 0, hits: 0, accesses: 0 };
  for (const page of reads) {
    run.accesses++;
    info.page = page;
    info.time += 1000;
    if (resident.has(page)) {
      if (!prefetched.delete(page)) continue;
      run.hits++;
      info.prefetchHit = true;
    } else {
      run.misses++;
      resident.add(page);
      info.prefetchHit = false;
    }
    const n = policy.onFault(info, out);
    for (let i = 0; i < n; i++) {
      const p = out[i]!;
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(NUM_PAGES);
      if (resident.has(p)) continue;
      resident.add(p);
      prefetched.add(p);
      run.issued++;
    }
  }
  return run;
}

const range = (from: number, to: number, step = 1): number[] => {
  const r: number[] = [];
  if (step > 0) for (let p = from; p <= to; p += step) r.push(p);
  else for (let p = from; p >= to; p += step) r.push(p);
  return r;
};

/** Deterministic pseudo-random pages (xorshift32), so a failure reproduces. */
function randomPages(count: number, span: number, seed = 0x9e3779b9): number[] {
  let x = seed | 0;
  const r: number[] = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    r.push((x >>> 0) % span);
  }
  return r;
}

function interleave(a: number[], b: number[]): number[] {
  const r: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) r.push(a[i]!);
    if (i < b.length) r.push(b[i]!);
  }
  return r;
}

const sequential = range(1000, 1999);
const reverse = range(1999, 1000, -1);
const stride5 = range(1000, 5995, 5);
const twoStreams = interleave(range(1000, 1499), range(50_000, 50_499));
const random = randomPages(2000, 100_000);

describe('Leap trend detection (reference vectors)', () => {
  const vectors: Array<[number[], number]> = [
    [[72, -3, -3, -3, -3, -58, 2, 2], NO_TREND],
    [[2, -58, 2, 2], 2],
    [[2, 2, 2, 4, -41, -39, 2, 2], 2],
    [[0, 1, 1, 0], NO_TREND],
    [[0, 0, 0, 0], 0],
    [[1], 1],
    [[], NO_TREND],
  ];
  it.each(vectors)('majority of %j', (deltas, expected) => {
    expect(majority(deltas, 0, deltas.length)).toBe(expected);
    // The same deltas logged into a fresh history give the same trend.
    const leap = new LeapPolicy();
    for (const d of deltas) leap.logDelta(d);
    expect(leap.findTrend()).toBe(expected);
  });

  it('no trend is distinct from a trend of delta 0', () => {
    expect(NO_TREND).not.toBe(0);
    const leap = new LeapPolicy();
    for (const d of [5, 0, 0, 0]) leap.logDelta(d);
    expect(leap.findTrend()).toBe(0);
  });

  it('grows the window until a majority appears (8 → 16 → 32)', () => {
    const leap = new LeapPolicy();
    // 20 deltas of 3, then 12 mixed: the last 8 have no majority, the last 16 neither (6 threes),
    // the last 32 do (22 threes).
    const mixed = [9, 3, -7, 11, 5, 40, -2, 6, 3, 13, 17, -9];
    for (let i = 0; i < 20; i++) leap.logDelta(3);
    for (const d of mixed) leap.logDelta(d);
    expect(majority(mixed, 4, 8)).toBe(NO_TREND);
    expect(majority([3, 3, 3, 3, ...mixed], 0, 16)).toBe(NO_TREND);
    expect(leap.findTrend()).toBe(3);
  });

  it('looks only at the last 32 deltas', () => {
    const leap = new LeapPolicy();
    for (let i = 0; i < 100; i++) leap.logDelta(4);
    for (let i = 0; i < 32; i++) leap.logDelta(i % 2 === 0 ? 1 : -1);
    expect(leap.findTrend()).toBe(NO_TREND);
  });
});

describe('Leap on a never-evicting cache (reference miss counts)', () => {
  it.each([
    ['sequential 1..100', range(1, 100)],
    ['stride 2', range(1, 200, 2)],
    ['reverse 100..1', range(100, 1, -1)],
    ['reverse stride 2', range(200, 1, -2)],
  ])('%s takes 15 misses', (_name, reads) => {
    expect(runNeverEvicting(new LeapPolicy(), reads).misses).toBe(15);
  });

  it('random reads all miss and prefetch almost nothing', () => {
    const r = runNeverEvicting(new LeapPolicy(), [1, 56, 12, 100, 124, 15550, 51, 10, 7, 4101, 23, 1, 154, 1856, 15]);
    expect(r.misses).toBe(14);
  });
});

describe.each(['readahead', 'stride', 'leap', 'leap-stream'])('%s on synthetic sequences', (name) => {
  const none = (reads: number[]) => runNeverEvicting(createPolicy('none'), reads).misses;

  it('sequential: at least 80% fewer misses than none, accurate', () => {
    const r = runNeverEvicting(createPolicy(name), sequential);
    expect(r.misses).toBeLessThanOrEqual(none(sequential) * 0.2);
    expect(r.hits / r.issued).toBeGreaterThan(0.95);
  });

  it('reverse: finds the trend backwards', () => {
    const r = runNeverEvicting(createPolicy(name), reverse);
    expect(r.misses).toBeLessThanOrEqual(none(reverse) * 0.2);
    expect(r.hits / r.issued).toBeGreaterThan(0.95);
  });

  it('random: accuracy >= 0.5 or issued <= 10% of faults', () => {
    const r = runNeverEvicting(createPolicy(name), random);
    expect(r.hits / Math.max(1, r.issued) >= 0.5 || r.issued <= 0.1 * r.misses).toBe(true);
  });
});

describe('stride k and interleaved streams', () => {
  it.each(['stride', 'leap', 'leap-stream'])('%s finds stride 5', (name) => {
    const r = runNeverEvicting(createPolicy(name), stride5);
    expect(r.misses).toBeLessThanOrEqual(stride5.length * 0.2);
    expect(r.hits / r.issued).toBeGreaterThan(0.95);
  });

  it('readahead does not chase a stride it cannot see (few wasted pages)', () => {
    const r = runNeverEvicting(createPolicy('readahead'), stride5);
    expect(r.misses).toBe(stride5.length);
    expect(r.issued).toBeLessThanOrEqual(stride5.length * 0.1);
  });

  it('stride follows two interleaved sequential streams', () => {
    const r = runNeverEvicting(createPolicy('stride'), twoStreams);
    expect(r.misses).toBeLessThanOrEqual(twoStreams.length * 0.05);
    expect(r.hits / r.issued).toBeGreaterThan(0.95);
  });

  it.each(['readahead', 'leap', 'leap-stream'])('%s stays accurate on two interleaved streams', (name) => {
    const r = runNeverEvicting(createPolicy(name), twoStreams);
    expect(r.misses).toBeLessThanOrEqual(twoStreams.length);
    expect(r.issued === 0 || r.hits / r.issued >= 0.5).toBe(true);
  });

  it('none never prefetches', () => {
    for (const reads of [sequential, reverse, stride5, twoStreams, random]) {
      const r = runNeverEvicting(createPolicy('none'), reads);
      expect(r.issued).toBe(0);
      expect(r.misses).toBe(new Set(reads).size);
    }
  });
});

describe('policies respect out.length and memory bounds', () => {
  it.each(['readahead', 'stride', 'leap', 'leap-stream'])('%s', (name) => {
    const policy = createPolicy(name);
    const out = new Int32Array(2);
    const info: FaultInfo = { page: 0, prefetchHit: false, time: 0, numPages: 12 };
    for (let p = 0; p < 12; p++) {
      info.page = p;
      const n = policy.onFault(info, out);
      expect(n).toBeLessThanOrEqual(2);
      for (let i = 0; i < n; i++) expect(out[i]!).toBeLessThan(12);
    }
    for (let p = 11; p >= 0; p--) {
      info.page = p;
      const n = policy.onFault(info, out);
      for (let i = 0; i < n; i++) expect(out[i]!).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('advice', () => {
  it.each(['readahead', 'stride', 'leap', 'leap-stream'])('%s: Random turns prefetching off in the range, Normal undoes it', (name) => {
    const policy = createPolicy(name);
    policy.advise!(0, 5000, Advice.Random);
    expect(runNeverEvicting(policy, sequential).issued).toBe(0);
    policy.reset();
    policy.advise!(0, 500, Advice.Random);
    expect(runNeverEvicting(policy, sequential).issued).toBeGreaterThan(0);
    policy.reset();
    policy.advise!(0, 5000, Advice.Random);
    policy.advise!(0, 5000, Advice.Normal);
    expect(runNeverEvicting(policy, sequential).issued).toBeGreaterThan(0);
  });

  it.each(['readahead', 'stride', 'leap', 'leap-stream'])('%s: Sequential prefetches from the first fault', (name) => {
    const policy = createPolicy(name);
    const plain = runNeverEvicting(createPolicy(name), sequential.slice(0, 40));
    policy.advise!(1000, 1000, Advice.Sequential);
    const advised = runNeverEvicting(policy, sequential.slice(0, 40));
    expect(advised.misses).toBeLessThan(plain.misses);
  });

  it('WillNeed and DontNeed are ignored by policies (the runtime handles them)', () => {
    const policy = createPolicy('leap');
    policy.advise!(0, 5000, Advice.WillNeed);
    policy.advise!(0, 5000, Advice.DontNeed);
    expect(runNeverEvicting(policy, range(1, 100)).misses).toBe(15);
  });
});

describe('leap-stream', () => {
  const scan = (policy: LeapStreamPolicy, pages: number, late: boolean) => {
    const out = new Int32Array(256);
    const info: FaultInfo = { page: 0, prefetchHit: false, time: 0, numPages: 1 << 20, late: false };
    const requested = new Set<number>();
    let misses = 0;
    let largest = 0;
    let largestLate = 0; // after the first 2000 pages
    for (let p = 0; p < pages; p++) {
      info.page = p;
      info.prefetchHit = requested.has(p);
      info.late = info.prefetchHit && late;
      if (!info.prefetchHit) misses++;
      const n = policy.onFault(info, out);
      largest = Math.max(largest, n);
      if (p >= 2000) largestLate = Math.max(largestLate, n);
      for (let i = 0; i < n; i++) {
        expect(requested.has(out[i]!)).toBe(false); // each page asked for once
        requested.add(out[i]!);
      }
    }
    return { misses, largest, largestLate, requested: requested.size };
  };

  it('keeps a stream going on prefetch hits: a few misses at the start, none after', () => {
    const r = scan(new LeapStreamPolicy(), 5000, false);
    expect(r.misses).toBeLessThanOrEqual(4);
    expect(r.requested).toBeLessThanOrEqual(5000 + MIN_DEPTH * 4);
  });

  it('deepens the window when prefetched pages arrive late, up to MAX_DEPTH, in runs of half the window', () => {
    const onTime = scan(new LeapStreamPolicy(), 5000, false);
    const late = scan(new LeapStreamPolicy(), 5000, true);
    expect(late.largest).toBeGreaterThan(onTime.largest);
    expect(late.largest).toBeLessThanOrEqual(MAX_DEPTH);
    expect(late.largest).toBeGreaterThanOrEqual(MAX_DEPTH / 2);
  });

  it('once the window is deep, tops it up in runs of at most TOP_UP pages (a pipeline of 64 KiB READs)', () => {
    const late = scan(new LeapStreamPolicy(), 5000, true);
    expect(late.largestLate).toBeGreaterThan(0);
    expect(late.largestLate).toBeLessThanOrEqual(TOP_UP);
  });

  it('stops on a random sequence and shrinks back to the minimum', () => {
    const policy = new LeapStreamPolicy();
    scan(policy, 2000, true);
    const r = runNeverEvicting(policy, random);
    expect(r.issued).toBeLessThanOrEqual(MAX_DEPTH + 2 * MIN_DEPTH);
  });

  it('names the page BEHIND steps back for drop-behind on a confirmed stream, never on random pages; leap never does', () => {
    const dropsOf = (policy: PrefetchPolicy, pages: number[]) => {
      const out = new Int32Array(256);
      const info: FaultInfo = { page: 0, prefetchHit: false, time: 0, numPages: NUM_PAGES };
      const requested = new Set<number>();
      const drops: Array<[number, number]> = [];
      for (const p of pages) {
        info.page = p;
        info.prefetchHit = requested.delete(p);
        info.dropBehind = -1;
        const n = policy.onFault(info, out);
        for (let i = 0; i < n; i++) requested.add(out[i]!);
        if (info.dropBehind >= 0) drops.push([p, info.dropBehind]);
      }
      return drops;
    };
    const up = dropsOf(new LeapStreamPolicy(), range(100, 1099));
    expect(up.length).toBeGreaterThan(990);
    for (const [p, d] of up) expect(d).toBe(p - BEHIND);
    const down = dropsOf(new LeapStreamPolicy(), range(5000, 4001, -1));
    expect(down.length).toBeGreaterThan(990);
    for (const [p, d] of down) expect(d).toBe(p + BEHIND);
    expect(dropsOf(new LeapStreamPolicy(), random)).toEqual([]);
    expect(dropsOf(createPolicy('leap'), range(100, 1099))).toEqual([]);
  });

  it('takes fewer misses than leap on a long sequential scan', () => {
    const reads = range(1, 2000);
    expect(runNeverEvicting(createPolicy('leap-stream'), reads).misses).toBeLessThan(runNeverEvicting(createPolicy('leap'), reads).misses / 10);
  });
});

describe('registry', () => {
  it('lists the built-ins', () => {
    expect(policyNames().slice(0, 4)).toEqual(['none', 'readahead', 'stride', 'leap']);
  });

  it('returns a fresh instance per call', () => {
    expect(createPolicy('leap')).not.toBe(createPolicy('leap'));
    expect(createPolicy('leap').name).toBe('leap');
  });

  it('rejects an unknown name, listing the valid ones', () => {
    expect.assertions(3);
    try {
      createPolicy('leep');
    } catch (err) {
      expect(err).toBeInstanceOf(OptionError);
      expect((err as OptionError).code).toBe('FM_ERR_INVALID_OPTION');
      expect((err as Error).message).toBe('unknown prefetch policy "leep"; valid policies: ' + policyNames().join(', '));
    }
  });

  it('registers a user policy in a few lines', () => {
    registerPolicy('test-next2', () => ({
      name: 'test-next2',
      onFault(f, out) {
        if (f.prefetchHit) return 0;
        out[0] = f.page + 1;
        out[1] = f.page + 2;
        return 2;
      },
      reset() {},
    }));
    expect(policyNames()).toContain('test-next2');
    expect(runNeverEvicting(createPolicy('test-next2'), range(0, 29)).misses).toBe(10);
  });

  it('rejects duplicate and malformed names', () => {
    expect(() => registerPolicy('leap', () => createPolicy('none'))).toThrow(/already registered/);
    expect(() => registerPolicy('Bad Name', () => createPolicy('none'))).toThrow(OptionError);
  });

  it('validates leap options', () => {
    expect(() => new LeapPolicy({ history: 24 })).toThrow(/power of two/);
    expect(() => new LeapPolicy({ maxWindow: 0 })).toThrow(/maxWindow/);
  });
});
