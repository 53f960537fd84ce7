/**
 * @fileoverview The diagnostics channels (host/stats/channels.ts): a small embedded run with a tiny
 * pool, a prefetcher and a DontNeed hint publishes fault, evict and prefetch events that agree with
 * its stats; a store that fails publishes farmem:store:error; with nobody subscribed nothing is
 * published; and `NODE_DEBUG=farmem` logs the events as one more subscriber.
 */

import { spawnSync } from 'node:child_process';
import diagnostics_channel from 'node:diagnostics_channel';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreError } from '../host/errors.js';
import { instantiate } from '../host/index.js';
import {
  CHANNEL_NAMES, evictChannel, faultChannel, prefetchChannel, storeErrorChannel,
  type EvictMessage, type FaultMessage, type PrefetchMessage, type StoreErrorMessage,
} from '../host/stats/channels.js';
import { EmbeddedStore } from '../host/store/embedded.js';
import { SUM_WORDS_FUNC, wat } from './support/differential.js';

/** Writes n words, sums them back, and can tell farmem it no longer needs a range (hint DontNeed = 2). */
const MODULE = `(module (import "farmem" "hint" (func $hint (param i32 i32 i32))) (memory 2)
  ${SUM_WORDS_FUNC}  (func (export "dontneed") (param i32 i32) (call $hint (local.get 0) (local.get 1) (i32.const 2))))`;

type Exports = { sum(n: number): number; dontneed(addr: number, len: number): void };

/** Collects every message of `names` while `body` runs. */
async function collect<T>(names: string[], body: () => Promise<T>): Promise<{ result: T; seen: Record<string, unknown[]> }> {
  const seen: Record<string, unknown[]> = Object.fromEntries(names.map((n) => [n, []]));
  const subs = names.map((n) => [n, (m: unknown) => { seen[n]!.push(m); }] as const);
  for (const [n, f] of subs) diagnostics_channel.subscribe(n, f);
  try {
    return { result: await body(), seen };
  } finally {
    for (const [n, f] of subs) diagnostics_channel.unsubscribe(n, f);
  }
}

describe('diagnostics channels', () => {
  it('a small run publishes its faults, evictions and prefetch decisions, matching its stats', async () => {
    const { result: stats, seen } = await collect([CHANNEL_NAMES.fault, CHANNEL_NAMES.evict, CHANNEL_NAMES.prefetch], async () => {
      const fm = await instantiate(wat(MODULE), {}, { pageSize: 256, local: { bytes: 2048 }, prefetch: 'readahead' });
      try {
        const e = fm.exports as unknown as Exports;
        expect(e.sum(20000)).toBe(((20000 * 19999) / 2) | 0);
        e.dontneed(0, 131072);
        return fm.stats();
      } finally {
        await fm.close();
      }
    });
    const faults = seen[CHANNEL_NAMES.fault] as FaultMessage[];
    const evicts = seen[CHANNEL_NAMES.evict] as EvictMessage[];
    const prefetches = seen[CHANNEL_NAMES.prefetch] as PrefetchMessage[];
    const count = (kind: string) => faults.filter((f) => f.kind === kind).length;
    expect(count('major')).toBe(stats.majorFaults);
    expect(count('major')).toBeGreaterThan(100);
    expect(count('minor') + count('prefetch-hit') + count('write-minor')).toBe(stats.minorFaults);
    expect(count('prefetch-hit')).toBe(stats.prefetch.hits);
    expect(faults.every((f) => Number.isInteger(f.page) && f.page >= 0 && f.page < 512)).toBe(true);
    // Embedded mode has no reclaimer: every eviction is the guest's own, and is published.
    expect(evicts.length).toBe(stats.evictions);
    expect(evicts.filter((e) => e.dirty).length).toBe(stats.writeBacks);
    expect(evicts.filter((e) => e.wasted).length).toBe(stats.prefetch.wasted);
    expect(evicts.some((e) => e.reason === 'hint')).toBe(true);
    expect(evicts.some((e) => e.reason === 'reclaim')).toBe(true);
    expect(prefetches.reduce((n, p) => n + p.issued, 0)).toBe(stats.prefetch.issued);
    expect(prefetches.length).toBeGreaterThan(0);
    for (const p of prefetches) {
      expect(p.issued).toBeLessThanOrEqual(p.requested.length);
      expect(typeof p.prefetchHit).toBe('boolean');
    }
  });

  it('a failing store publishes farmem:store:error with the StoreError the guest gets', async () => {
    class FailingStore extends EmbeddedStore {
      reads = 0;
      override readSync(page: number, into: Uint8Array, at: number): void {
        if (++this.reads > 20) throw new StoreError('FM_ERR_STORE', 'disk on fire');
        super.readSync(page, into, at);
      }
    }
    const { seen } = await collect([CHANNEL_NAMES.storeError], async () => {
      const fm = await instantiate(wat(MODULE), {}, { pageSize: 256, local: { bytes: 1024 }, store: new FailingStore(256) });
      try {
        expect(() => (fm.exports as unknown as Exports).sum(20000)).toThrow('disk on fire');
      } finally {
        await fm.close();
      }
    });
    const errors = seen[CHANNEL_NAMES.storeError] as StoreErrorMessage[];
    expect(errors.length).toBe(1);
    expect(errors[0]!.error).toBeInstanceOf(StoreError);
    expect((errors[0]!.error as StoreError).code).toBe('FM_ERR_STORE');
  });

  it('latency histograms time every guest fault as the kind the fault channel reports', async () => {
    const { result: stats, seen } = await collect([CHANNEL_NAMES.fault], async () => {
      const fm = await instantiate(wat(MODULE), {}, { pageSize: 256, local: { bytes: 2048 }, prefetch: 'readahead', latency: true });
      try {
        (fm.exports as unknown as Exports).sum(20000);
        return fm.stats();
      } finally {
        await fm.close();
      }
    });
    const faults = seen[CHANNEL_NAMES.fault] as FaultMessage[];
    expect(stats.latency!.major.count).toBe(faults.filter((f) => f.kind === 'major').length);
    expect(stats.latency!.minor.count).toBe(faults.filter((f) => f.kind !== 'major').length);
    expect(stats.latency!.major.count).toBeGreaterThan(100);
    expect(stats.latency!.minor.count).toBeGreaterThan(0);
  });

  it('with nobody subscribed, no channel has subscribers (nothing is built or published)', () => {
    for (const c of [faultChannel, evictChannel, prefetchChannel, storeErrorChannel]) expect(c.hasSubscribers).toBe(false);
  });

  it('NODE_DEBUG=farmem logs the events on stderr', () => {
    const cli = join(import.meta.dirname, '../dist/host/cli/main.js');
    const wasm = join(import.meta.dirname, '../build/assembly/seqscan.wasm');
    const r = spawnSync(process.execPath, [cli, 'run', wasm, '--invoke', 'run', '65536', '1', '--local', '25%', '--page-size', '4096', '--prefetch', 'leap', '--stats', 'none'], {
      encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'farmem' }, timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^FARMEM \d+: farmem:fault page=\d+ kind=major$/m);
    expect(r.stderr).toMatch(/^FARMEM \d+: farmem:prefetch page=\d+ prefetchHit=(true|false) requested=\[[\d,]*\] issued=\d+$/m);
  });
});
