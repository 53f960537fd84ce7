/**
 * The threaded runtime against real `farmem serve` processes on loopback: the whole workload suite
 * through one and through three servers with tiny local memory (I/O worker + reclaimer worker),
 * a concurrency stress with tiny pools at 256 B and 4 KiB pages, wrong token, and a server killed
 * in the middle of a run (a clear error, no hang).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { policyNames } from '../host/prefetch/registry.js';
import { encodeStats, type StatsOk } from '../host/protocol/index.js';
import { loadWorkload, workloadPath, WORKLOADS, type WorkloadExports } from '../host/workloads.js';
import { Raw } from './support/raw-client.js';
import { faulting, startServers, type Servers } from './support/servers.js';

const TOKEN = 'remote-test-token';
const SIZE = 128 * 1024;
const SEED = 11;
const CLI = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));

const traceDir = mkdtempSync(join(tmpdir(), 'farmem-remote-'));
const traceFile = (name: string) => join(traceDir, `${name}.fmt`);

let servers: Servers;
beforeAll(async () => {
  servers = await startServers(3, { capacity: '256MiB', token: TOKEN });
});
afterAll(async () => {
  await servers?.close();
});

async function reference(name: string, size = SIZE, seed = SEED): Promise<bigint> {
  const { instance } = await WebAssembly.instantiate(loadWorkload(name));
  return (instance.exports as unknown as WorkloadExports).run(size, seed);
}

async function remoteRun(name: string, urls: string[], pageSize: number, local: { bytes: number } | { fraction: number }, size = SIZE) {
  const fm = await instantiate(loadWorkload(name), {}, { pageSize, local, remote: { urls, token: TOKEN } });
  try {
    const result = (fm.exports as unknown as WorkloadExports).run(size, SEED);
    return { result, stats: fm.stats() };
  } finally {
    await fm.close();
  }
}

describe.each(WORKLOADS.map((w) => w.name))('workload %s through servers', (name) => {
  it('matches the original through 1 server with 8 frames', async () => {
    const { result, stats } = await remoteRun(name, servers.urls.slice(0, 1), 4096, { bytes: 8 * 4096 });
    expect(result).toBe(await reference(name));
    expect(stats.majorFaults).toBeGreaterThan(0);
    expect(stats.writeBacks).toBeGreaterThan(0);
  });
  it('matches the original through 3 servers at 5% local', async () => {
    const { result, stats } = await remoteRun(name, servers.urls, 4096, { fraction: 0.05 });
    expect(result).toBe(await reference(name));
    expect(stats.evictions).toBeGreaterThan(0);
  });
});

describe('concurrency stress: tiny pools, busy reclaimer', () => {
  for (const pageSize of [256, 4096]) {
    for (const name of ['hashtable', 'seqscan', 'pointerchase']) {
      it(`${name} at ${pageSize} B pages gives the same result every time`, async () => {
        const size = 64 * 1024;
        const want = await reference(name, size);
        for (let rep = 0; rep < 3; rep++) {
          const { result, stats } = await remoteRun(name, servers.urls, pageSize, { bytes: (pageSize === 256 ? 8 : 4) * pageSize }, size);
          expect(result).toBe(want);
          expect(stats.evictions).toBeGreaterThan(0);
        }
      });
    }
  }
});

describe('write-backs past the I/O worker\'s in-flight cap (512 KiB: 8 pages of 64 KiB)', () => {
  // 128 frames at 25%: a reclaimer round hands over 16–32 victims, so most write-backs wait in the
  // worker's queue behind those on the wire before they are sent and their frames' pages read
  // again. Here each page is written back once per pass, so a queue sent out of order would still
  // pass; the case where it matters (a page written back again while its last write-back waits) is
  // the hash table's below (a LIFO queue gave it a wrong result, 2026-12-04), 30 s a run: only in
  // the soak, `node scripts/writeback-soak.mjs`.
  for (const count of [1, 3]) {
    it(`seqscan at 64 KiB pages, 25% local, through ${count} server(s), matches the original`, async () => {
      const size = 32 << 20;
      const { result, stats } = await remoteRun('seqscan', servers.urls.slice(0, count), 65536, { fraction: 0.25 }, size);
      expect(result).toBe(await reference('seqscan', size));
      expect(stats.writeBacks).toBeGreaterThan(8 * 128);
    });
  }
  it.runIf(process.env.FARMEM_WRITEBACK_SOAK)('hashtable at 64 KiB pages, 25% local, matches the original (soak)', async () => {
    const size = 2 << 20;
    const { result, stats } = await remoteRun('hashtable', servers.urls.slice(0, 1), 65536, { fraction: 0.25 }, size);
    expect(result).toBe(await reference('hashtable', size));
    expect(stats.writeBacks).toBeGreaterThan(100_000);
  }, 300_000);
});

/** Runs seqscan at 25% local through `urls` with `prefetch`, checks its result, returns the prefetch stats. */
async function seqscanPrefetch(prefetch: string, urls: string[], size: number) {
  const fm = await instantiate(loadWorkload('seqscan'), {}, { pageSize: 4096, local: { fraction: 0.25 }, prefetch, remote: { urls, token: TOKEN } });
  try {
    expect((fm.exports as unknown as WorkloadExports).run(size, SEED)).toBe(await reference('seqscan', size));
    return fm.stats().prefetch;
  } finally {
    await fm.close();
  }
}

describe('prefetching through servers', () => {
  it('leap prefetches in flight through the I/O worker, results unchanged', async () => {
    const p = await seqscanPrefetch('leap', servers.urls, 1 << 20);
    expect(p.hits).toBeGreaterThan(0);
    expect(p.coverage).toBeGreaterThan(0.5);
  });
});

describe('every prefetcher through a server', () => {
  it.each(policyNames())('%s keeps every result of seqscan, stride and hashtable', async (prefetch) => {
    for (const name of ['seqscan', 'stride', 'hashtable']) {
      const size = 256 * 1024;
      const fm = await instantiate(loadWorkload(name), {}, { pageSize: 4096, local: { fraction: 0.25 }, prefetch, remote: { urls: servers.urls.slice(0, 1), token: TOKEN } });
      try {
        expect((fm.exports as unknown as WorkloadExports).run(size, SEED)).toBe(await reference(name, size));
      } finally {
        await fm.close();
      }
    }
  });

  it('leap-stream reads its window in READs of at most 16 pages, so replies land one after another', async () => {
    // A second connection keeps the namespace (and its counters) alive after the run frees its pages.
    const namespace = `calls-${process.pid}`;
    const watcher = await Raw.connect(servers.urls[0]!, namespace, TOKEN);
    try {
      const size = 8 << 20; // 512 frames at 25%: windows of up to 128 pages, which one READ used to carry
      const fm = await instantiate(loadWorkload('seqscan'), {}, { pageSize: 4096, local: { fraction: 0.25 }, prefetch: 'leap-stream', remote: { urls: servers.urls.slice(0, 1), token: TOKEN, namespace } });
      try {
        expect((fm.exports as unknown as WorkloadExports).run(size, SEED)).toBe(await reference('seqscan', size));
      } finally {
        await fm.close();
      }
      const st = await watcher.call(encodeStats(2)) as StatsOk;
      expect(st.pagesRead).toBeGreaterThan(size >> 12); // passes 1-4 read most of it back (drop-behind keeps the start resident)
      expect(st.reads * 16).toBeGreaterThanOrEqual(st.pagesRead);
    } finally {
      watcher.close();
    }
  });

  it('leap-stream covers a sequential scan almost entirely: prefetch hits on first touch keep it ahead', async () => {
    const p = await seqscanPrefetch('leap-stream', servers.urls.slice(0, 1), 2 << 20);
    expect(p.coverage).toBeGreaterThan(0.9);
    expect(p.accuracy).toBeGreaterThan(0.9);
    expect(p.dropped).toBeGreaterThan(0); // drop-behind with the reclaimer sharing the frame table
  });
});

describe('failures', () => {
  it('refuses a wrong token with a clear error', async () => {
    await expect(instantiate(loadWorkload('seqscan'), {}, { remote: { urls: servers.urls.slice(0, 1), token: 'wrong' } }))
      .rejects.toThrow(/token/i);
  });

  it('with replication 2, a run survives one of three servers killed mid-run, output identical', async () => {
    const trio = await startServers(3, { capacity: '256MiB', token: TOKEN });
    try {
      const size = 32 << 20;
      const child = spawn(process.execPath, [CLI, 'run', workloadPath('seqscan'), '--invoke', 'run', String(size), '1',
        '--local', '5%', '--store', trio.urls.join(','), '--token', TOKEN, '--replication', '2', '--no-cache', '--stats', 'json',
        '--trace', traceFile('replicated')],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += String(d); });
      child.stderr.on('data', (d) => { stderr += String(d); });
      await faulting(traceFile('replicated'));
      expect(child.exitCode).toBeNull(); // still running when the server dies
      await trio.kill(1);
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(-999); }, 120_000);
        child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
      });
      expect(code, stderr).toBe(0);
      expect(stdout.trim()).toBe(String(await reference('seqscan', size, 1)));
      expect(JSON.parse(stderr).majorFaults).toBeGreaterThan(0);
    } finally {
      await trio.close();
    }
  });

  it('ends with a clear error, not a hang, when its only server is killed mid-run', async () => {
    const lone = await startServers(1, { capacity: '256MiB', token: TOKEN });
    try {
      const child = spawn(process.execPath, [CLI, 'run', workloadPath('pointerchase'), '--invoke', 'run', String(64 << 20), '1',
        '--local', '2%', '--store', lone.urls[0]!, '--token', TOKEN, '--no-cache', '--trace', traceFile('lone')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += String(d); });
      await faulting(traceFile('lone'));
      expect(child.exitCode).toBeNull(); // still running when the server dies
      await lone.kill(0);
      const code = await new Promise<number | null>((resolve) => {
        const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(-999); }, 30_000);
        child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
      });
      expect(code).toBe(1);
      expect(stderr).toMatch(/^\(farmem run\) .*(server|store)/im);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      await lone.close();
    }
  });
});
