/**
 * @fileoverview Several guest threads over one far memory: the threaded workload
 * `assembly/threads/shared-hashtable.ts` (4 threads insert into and look up one open-addressing
 * table with cmpxchg and atomic adds, and meet at a barrier on memory.atomic.wait/notify) runs with
 * a 4-frame pool (plus the reclaimer's reserve) while the reclaimer evicts, embedded and through a
 * real `farmem serve`, and must give the uninstrumented run's per-thread results and checksum,
 * on every repetition. Also: the startThread() API's errors, and a notify from one thread waking a
 * waiter in another while the page is evicted in between.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate, ThreadError, type FarmemOptions } from '../host/index.js';
import { runPlainThreads } from './support/guest-threads.js';
import { startServers, type Servers } from './support/servers.js';
import { wat } from './support/differential.js';

const BYTES = new Uint8Array(readFileSync(new URL('../build/assembly/threads/shared-hashtable.wasm', import.meta.url)));
const LIMITS = { initial: 1, maximum: 1024 };
const CAPACITY = 4096; // 64 KiB of table: 256 pages of 256 B against 4 frames
const THREADS = 4;
const PAGE = 256;
const FRAMES = 4;
const TOKEN = 'threads-token';

function workArgs(ops: number, seed: number): number[][] {
  return Array.from({ length: THREADS }, (_, tid) => [tid, THREADS, ops, seed]);
}

async function runFarmem(ops: number, seed: number, options: FarmemOptions): Promise<{ results: unknown[]; final: unknown; stats: ReturnType<Awaited<ReturnType<typeof instantiate>>['stats']> }> {
  const memory = new WebAssembly.Memory({ ...LIMITS, shared: true });
  const fm = await instantiate(BYTES, { env: { memory } }, { pageSize: PAGE, local: { bytes: FRAMES * PAGE }, ...options });
  try {
    (fm.exports.setup as (c: number) => void)(CAPACITY);
    const threads = workArgs(ops, seed).map((args) => fm.startThread({ entry: 'work', args }));
    const results = await Promise.all(threads.map((t) => t.result));
    return { results, final: (fm.exports.checksum as () => bigint)(), stats: fm.stats() };
  } finally {
    await fm.close();
  }
}

async function reference(ops: number, seed: number) {
  return runPlainThreads(BYTES, LIMITS, (e) => (e.setup as (c: number) => void)(CAPACITY), 'work', workArgs(ops, seed), (e) => (e.checksum as () => bigint)());
}

describe('4 guest threads hammering a shared hash table, 4-frame pool, busy reclaimer', () => {
  let servers: Servers;
  beforeAll(async () => { servers = await startServers(1, { capacity: '64MiB', token: TOKEN }); });
  afterAll(async () => { await servers?.close(); });

  it('embedded: identical to the uninstrumented threads, over 3 runs', async () => {
    const ops = 2500;
    const want = await reference(ops, 11);
    expect((want.results as number[]).every((n) => n > ops / 4 && n < ops)).toBe(true); // some lookups miss
    for (let run = 0; run < 3; run++) {
      const got = await runFarmem(ops, 11, {});
      expect(got.results).toEqual(want.results);
      expect(got.final).toBe(want.final);
      expect(got.stats.majorFaults).toBeGreaterThan(1000);
      expect(got.stats.evictions).toBeGreaterThan(1000);
      expect(got.stats.writeBacks).toBeGreaterThan(500);
    }
  }, 60_000);

  it('through farmem serve: identical to the uninstrumented threads, over 2 runs', async () => {
    const ops = 600;
    const want = await reference(ops, 5);
    for (let run = 0; run < 2; run++) {
      const got = await runFarmem(ops, 5, { remote: { urls: servers.urls, token: TOKEN } });
      expect(got.results).toEqual(want.results);
      expect(got.final).toBe(want.final);
      expect(got.stats.majorFaults).toBeGreaterThan(300);
      expect(got.stats.store).toBe(servers.urls[0]);
    }
  }, 60_000);
});

describe('startThread()', () => {
  const waitNotify = wat(`(module
    (import "env" "memory" (memory 1 1 shared))
    (func (export "waiter") (param $a i32) (result i32) (memory.atomic.wait32 (local.get $a) (i32.const 0) (i64.const 10000000000)))
    (func (export "count") (param $a i32) (param $n i32) (result i32) (memory.atomic.notify (local.get $a) (local.get $n)))
    (func (export "touch") (param $from i32) (param $to i32)
      (loop $l (i32.store (local.get $from) (local.get $from))
        (br_if $l (i32.lt_u (local.tee $from (i32.add (local.get $from) (i32.const 256))) (local.get $to))))))`);

  it('a notify reaches a waiter on the same virtual address after its page was evicted', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const fm = await instantiate(waitNotify, { env: { memory } }, { pageSize: 256, local: { bytes: 512 } });
    try {
      const waiter = fm.startThread({ entry: 'waiter', args: [1024] });
      const count = fm.exports.count as (a: number, n: number) => number;
      let woken = 0;
      const deadline = Date.now() + 10_000;
      while (woken === 0 && Date.now() < deadline) {
        (fm.exports.touch as (a: number, b: number) => void)(4096, 65536); // evicts page 4 (address 1024) meanwhile
        woken = count(1024, 1);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(woken).toBe(1);
      expect(await waiter.result).toBe(0); // "ok": woken, not timed out
      expect(count(1024, 1)).toBe(0);
      expect(fm.stats().evictions).toBeGreaterThan(100);
    } finally {
      await fm.close();
    }
  }, 30_000);

  it('refuses with typed errors', async () => {
    const plain = await instantiate(wat('(module (memory 1) (func (export "f")))'), {}, {});
    expect(() => plain.startThread({ entry: 'f' })).toThrow(ThreadError);
    expect(() => plain.startThread({ entry: 'f' })).toThrow(/memory is shared/);
    expect(() => plain.startThread({ entry: 'f', stack: 1 } as never)).toThrow('Invalid option in startThread() call: "stack"');
    await plain.close();
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const fm = await instantiate(waitNotify, { env: { memory } }, { pageSize: 256 });
    try {
      const missing = fm.startThread({ entry: 'nope' });
      await expect(missing.result).rejects.toMatchObject({ code: 'FM_ERR_THREAD_FAILED', message: expect.stringMatching(/no exported function "nope"/) });
      const trapping = fm.startThread({ entry: 'count', args: [65536, 1] });
      await expect(trapping.result).rejects.toMatchObject({ code: 'FM_ERR_THREAD_FAILED', cause: expect.any(WebAssembly.RuntimeError) });
    } finally {
      await fm.close();
    }
  });
});
