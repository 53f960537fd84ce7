/**
 * @fileoverview Tests for the bench framework: stats, the result schema and its validator, chart
 * rendering to well-formed SVG, and a tiny end-to-end run of the overhead and sweep suites (which
 * skip cleanly when the workloads are not built). No timing assertions.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { barChart, binValues, histogramChart, lineChart, renderSvg, stackedBarChart, wrapSubtitle } from '../bench/lib/charts.js';
import { diffStats, prefetchQuality } from '../bench/lib/farmem.js';
import { detectCgroup } from '../bench/lib/linux-swap.js';
import { collectEnv } from '../bench/lib/env.js';
import { formatTable, RESULT_SCHEMA, validateResult, type BenchResult } from '../bench/lib/results.js';
import { geomean, grainWarning, median, quantile, summarize } from '../bench/lib/stats.js';
import { runBench } from '../bench/run.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'farmem-bench-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Well-formed SVG: one root element, closed, with the given texts. */
function expectSvg(svg: string, texts: string[]): void {
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
  // Balanced <g> groups and no NaN coordinates (a sign of a broken scale).
  expect((svg.match(/<g[\s>]/g) ?? []).length).toBe((svg.match(/<\/g>/g) ?? []).length);
  expect(svg).not.toMatch(/NaN/);
  for (const t of texts) expect(svg).toContain(t);
}

function validResult(): BenchResult {
  return {
    schema: RESULT_SCHEMA,
    suite: 'overhead',
    status: 'ok',
    reason: null,
    env: collectEnv(['--no-liftoff']),
    config: { quick: true, sizeBytes: 1024 },
    baseline: 'original module',
    columns: [{ key: 'workload', title: 'Workload' }, { key: 'ratio', title: 'Ratio', unit: 'x' }],
    rows: [{ workload: 'seqscan', ratio: 1.2 }],
    summary: { geomeanRatio: 1.2 },
    charts: ['overhead.svg'],
    warnings: [],
    durationMs: 12,
  };
}

describe('stats', () => {
  it('summarizes samples', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(geomean([1, 4])).toBeCloseTo(2);
    const s = summarize([10, 12, 11, 13, 9]);
    expect(s).toMatchObject({ n: 5, median: 11, min: 9, max: 13, mean: 11 });
    expect(s.rme).toBeGreaterThan(0);
    expect(summarize([5]).rme).toBe(0);
    expect(() => summarize([])).toThrow(RangeError);
  });

  it('warns when the timer grain dominates', () => {
    expect(grainWarning('tiny', [50, 60], 1)).toMatch(/timer ticks/);
    expect(grainWarning('big', [5e6], 1)).toBeNull();
  });
});

describe('results schema', () => {
  it('accepts a valid result', () => {
    expect(validateResult(validResult())).toEqual([]);
    expect(validateResult(JSON.parse(JSON.stringify(validResult())))).toEqual([]);
  });

  it('names the bad field', () => {
    const r = validResult() as unknown as Record<string, unknown>;
    expect(validateResult({ ...r, schema: 'x' })[0]).toMatch(/^schema:/);
    expect(validateResult({ ...r, rows: [{ workload: 'a', ratio: NaN }] })[0]).toMatch(/rows\[0\]\.ratio/);
    expect(validateResult({ ...r, rows: [{ workload: 'a' }] })[0]).toMatch(/missing column "ratio"/);
    expect(validateResult({ ...r, status: 'skipped', reason: null })[0]).toMatch(/^reason:/);
    expect(validateResult({ ...r, env: { ...(r.env as object), cores: '2' } })[0]).toMatch(/env\.cores/);
    expect(validateResult({ ...r, charts: ['a.png'] })[0]).toMatch(/^charts:/);
    expect(validateResult(null)).toEqual(['result: expected an object']);
  });

  it('formats a table', () => {
    const t = formatTable([{ key: 'w', title: 'Workload' }, { key: 'r', title: 'Ratio', unit: 'x' }], [{ w: 'seqscan', r: 1.234 }, { w: 'hash', r: null }]);
    expect(t.split('\n')).toEqual(['Workload  Ratio (x)', '--------  ---------', 'seqscan        1.23', 'hash              –']);
  });
});

describe('charts', () => {
  it('renders a bar chart with error bars and reference lines', async () => {
    const svg = await renderSvg(barChart({
      title: 'Overhead', xTitle: 'Workload', yTitle: 'Instrumented / original time (x)',
      data: [{ label: 'seqscan', value: 1.2, lo: 1.1, hi: 1.3 }, { label: 'hashtable', value: 1.5, lo: 1.4, hi: 1.7 }],
      references: [{ value: 1, label: 'original' }, { value: 1.3, label: 'target 1.3x' }],
    }));
    expectSvg(svg, ['Overhead', 'Workload', 'Instrumented / original time (x)', 'seqscan', 'target 1.3x']);
  });

  it('renders a log-scale line chart with a legend', async () => {
    const data = [100, 75, 50, 25, 10].flatMap((x) => [
      { x, y: 1 + (100 - x) / 10, series: 'none' },
      { x, y: 1 + (100 - x) / 40, series: 'leap' },
    ]);
    const svg = await renderSvg(lineChart({
      title: 'seqscan: slowdown vs local memory', xTitle: 'Local memory (% of guest memory)',
      yTitle: 'Slowdown vs all-local (x, log scale)', legendTitle: 'Prefetcher', logY: true, reference: 1, data,
    }));
    expectSvg(svg, ['Local memory (% of guest memory)', 'Slowdown vs all-local (x, log scale)', 'Prefetcher', 'leap', 'none']);
  });

  it('renders stacked bars and a histogram', async () => {
    const stacked = await renderSvg(stackedBarChart({
      title: 'Stages', xTitle: 'Store', yTitle: 'Latency (µs)', legendTitle: 'Stage',
      data: [{ category: 'embedded', stage: 'request', value: 1 }, { category: 'embedded', stage: 'reply', value: 2 }, { category: 'ws', stage: 'request', value: 3 }, { category: 'ws', stage: 'reply', value: 9 }],
    }));
    expectSvg(stacked, ['Store', 'Latency (µs)', 'Stage', 'reply']);
    const buckets = binValues([1, 2, 2, 3, 5, 8, 13, 21, 34], 5, true);
    expect(buckets.reduce((a, b) => a + b.count, 0)).toBe(9);
    const hist = await renderSvg(histogramChart({ title: 'Major faults', xTitle: 'Latency (µs, log scale)', logX: true, data: buckets }));
    expectSvg(hist, ['Latency (µs, log scale)', 'Count']);
  });
});

describe('helpers', () => {
  it('subtracts counters, keeps gauges and ratios', () => {
    const d = diffStats(
      { majorFaults: 10, localBytes: 4096, prefetch: { issued: 5, hits: 4, accuracy: 0.8 } },
      { majorFaults: 3, localBytes: 4096, prefetch: { issued: 1, hits: 1, accuracy: 1 } },
    );
    expect(d).toEqual({ majorFaults: 7, localBytes: 4096, prefetch: { issued: 4, hits: 3, accuracy: 0.8 } });
    expect(prefetchQuality(d)).toEqual({ accuracy: 0.75, coverage: 0.3 });
    expect(prefetchQuality({})).toEqual({ accuracy: null, coverage: null });
  });

  it('wraps long subtitles at the separators', () => {
    const lines = wrapSubtitle('a'.repeat(60) + ' · ' + 'b'.repeat(30) + ' · ' + 'c'.repeat(10), 95);
    expect(lines).toEqual(['a'.repeat(60) + ' · ' + 'b'.repeat(30), 'c'.repeat(10)]);
  });

  it('detects cgroup v1 and v2 memory controllers', () => {
    const v1 = path.join(tmp, 'cg1');
    mkdirSync(path.join(v1, 'memory'), { recursive: true });
    writeFileSync(path.join(v1, 'memory', 'memory.limit_in_bytes'), '9223372036854771712\n');
    expect(detectCgroup(v1)).toEqual({ version: 1, parent: path.join(v1, 'memory') });
    const v2 = path.join(tmp, 'cg2');
    mkdirSync(v2, { recursive: true });
    writeFileSync(path.join(v2, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    expect(detectCgroup(v2)).toEqual({ version: 2, parent: v2 });
    const none = path.join(tmp, 'cg0');
    mkdirSync(none, { recursive: true });
    expect(detectCgroup(none)).toBeNull();
  });
});

describe('farmem bench (tiny configuration)', () => {
  it('runs overhead and sweep and writes valid JSON and SVGs', async () => {
    const out = path.join(tmp, 'run');
    const lines: string[] = [];
    const results = await runBench({
      suites: ['overhead', 'sweep'],
      quick: true,
      outDir: out,
      liftoff: true,
      progress: false,
      out: (t) => lines.push(t),
      err: () => {},
      overrides: { sizeBytes: 256 << 10, reps: 1, baselineReps: 1, warmup: 0, localPercents: [100, 25], prefetchers: ['none', 'leap'] },
    });
    expect(results.map((r) => r.suite)).toEqual(['overhead', 'sweep']);
    for (const r of results) {
      const onDisk = JSON.parse(readFileSync(path.join(out, `${r.suite}.json`), 'utf8'));
      expect(validateResult(onDisk)).toEqual([]);
      expect(onDisk.env.node).toBe(process.version);
      expect(r.status).not.toBe('failed');
      if (r.status === 'skipped') {
        expect(r.reason).toMatch(/workload|runtime/);
        continue;
      }
      expect(r.rows.length).toBeGreaterThan(0);
      expect(r.charts.length).toBeGreaterThan(0);
      for (const c of r.charts) {
        expectSvg(readFileSync(path.join(out, c), 'utf8'), r.suite === 'overhead' ? ['Workload', 'Instrumented / original time (x)'] : ['Local memory (% of guest memory)', 'Prefetcher']);
      }
      for (const row of r.rows) if ('identical' in row) expect(row.identical).toBe(true);
    }
    expect(lines.join('')).toContain('== overhead');
  });

  it('runs a real WASI program both ways with identical output (programs suite)', async () => {
    const results = await runBench({
      suites: ['programs'], quick: true, outDir: path.join(tmp, 'programs'), liftoff: true, progress: false,
      out: () => {}, err: () => {}, overrides: { programs: ['grow (C)'], reps: 1, warmup: 0 },
    });
    const r = results[0]!;
    expect(r.status).toBe('ok');
    if (r.status !== 'ok') return;
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]!.identical).toBe(true);
    expect(r.rows[0]!.ratio).toBeGreaterThan(0);
  });

  it('runs the remote suite through a real server: identical results, no eviction at 100%, the all-local pairs', async () => {
    const results = await runBench({
      suites: ['remote'], quick: true, outDir: path.join(tmp, 'remote'), liftoff: true, progress: false, out: () => {}, err: () => {},
      overrides: { workloads: ['seqscan'], sizeBytes: 1 << 20, reps: 1, localPercents: [100, 25], prefetchers: ['none', 'leap'], streamPageSizes: [] },
    });
    const r = results[0]!;
    expect(r.status).toBe('ok');
    if (r.status !== 'ok') return;
    expect(r.warnings).toEqual([]); // every run through the server returned the all-local result
    const ws25 = r.rows.filter((row) => row.store === 'ws' && row.localPct === 25);
    expect(ws25).toHaveLength(2);
    for (const row of ws25) expect(row.majorFaults).toBeGreaterThan(0);
    expect(r.summary.seqscanWsEvictions100).toBe(0);
    expect(r.summary.seqscanWsWriteBacks100).toBe(0);
    expect(r.summary.seqscanWsOverEmbedded100).toBeGreaterThan(0);
    expect(r.summary.rawPipelinedWsMBps).toBeGreaterThan(0);
  });

  it('rejects an unknown suite by name', async () => {
    await expect(runBench({ suites: ['nope'], outDir: tmp, progress: false, liftoff: true })).rejects.toThrow(/unknown bench suite "nope"/);
  });
});

describe('raw baselines (bench/lib/raw-ws.ts)', () => {
  const root = path.resolve(__dirname, '..');

  it('the raw ws echo and page servers (farmem\'s own ws server end) answer every request with the size asked, the page server cycling its slots', async () => {
    const { ECHO_SERVER, PAGE_SERVER, RawClient, spawnServer, WsPackageClient } = await import('../bench/lib/raw-ws.js');
    const echo = await spawnServer(root, ['--input-type=module', '-e', ECHO_SERVER], /raw listening on (ws:\/\/\S+)/);
    const pages = await spawnServer(root, ['--input-type=module', '-e', PAGE_SERVER], /raw listening on (ws:\/\/\S+)/);
    try {
      for (const size of [4112, 65552, 300_000]) {
        const c = new RawClient(echo.url, size);
        await c.open();
        await Promise.all(Array.from({ length: 40 }, () => c.request())); // pipelined: each reply counted off the stream
        await c.close();
      }
      const pkg = new WsPackageClient(echo.url, 65552);
      await pkg.open();
      for (let i = 0; i < 5; i++) await pkg.request();
      pkg.close();
      const into = new Uint8Array(4096);
      const p = new RawClient(pages.url, 16 + 4096, { slots: 3, into });
      await p.open();
      for (let i = 0; i < 7; i++) {
        into.fill(0);
        await p.request();
        expect(into.every((b) => b === 7)).toBe(true);
      }
      await p.close();
    } finally {
      echo.proc.kill();
      pages.proc.kill();
    }
  });
});
