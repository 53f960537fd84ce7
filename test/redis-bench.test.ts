/**
 * `farmem bench redis` end to end at a tiny size: real redis-server processes (standalone and a
 * 3-shard cluster) and a `farmem serve`, the raw GET baselines, major-fault latency through each
 * store and a sequential scan; valid result JSON with every ratio computed, and both charts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateResult } from '../bench/lib/results.js';
import { runBench } from '../bench/run.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'farmem-redis-bench-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('farmem bench redis (tiny configuration)', () => {
  it('measures GET baselines, faults and scans through Redis, a cluster and farmem serve', async () => {
    const [r] = await runBench({
      suites: ['redis'], quick: true, outDir: tmp, liftoff: true, progress: false, out: () => {}, err: () => {},
      overrides: { sizeBytes: 128 << 10, scanBytes: 1 << 20, reps: 1, getSamples: 200 },
    });
    expect(r!.status, r!.reason ?? '').toBe('ok');
    expect(validateResult(JSON.parse(readFileSync(path.join(tmp, 'redis.json'), 'utf8')))).toEqual([]);
    const stores = r!.rows.filter((row) => String(row.measure).startsWith('major fault')).map((row) => row.store);
    expect(stores).toEqual(['Redis', 'Redis Cluster (3 shards)', 'farmem serve']);
    for (const key of ['rawGetP50Us', 'ioredisGetP50Us', 'redisMajorOverRawGetP50', 'clusterMajorOverRawGetP50', 'redisScanTimeOverServe', 'clusterScanTimeOverServe']) {
      expect(r!.summary[key], key).toBeGreaterThan(0);
    }
    expect(r!.charts).toEqual(['redis-latency.svg', 'redis-scan.svg']);
    for (const c of r!.charts) expect(readFileSync(path.join(tmp, c), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
  });
});
