/**
 * The smallest end-to-end check: a hand-written module that writes then sums 120 KB through a
 * four-frame pool of 256-byte pages, on the embedded store and through two real servers, with
 * memory.size and memory.grow on the virtual memory.
 */
import { describe, expect, it } from 'vitest';
import { instantiate, type FarmemOptions } from '../host/index.js';
import { SUM_WORDS_FUNC, wat } from './support/differential.js';
import { startServers } from './support/servers.js';

const MODULE = `(module (memory 2)
  ${SUM_WORDS_FUNC}  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size)))`;

type Exports = { sum(n: number): number; grow(n: number): number; size(): number };

async function check(options: Partial<FarmemOptions>): Promise<void> {
  const fm = await instantiate(wat(MODULE), {}, { pageSize: 256, local: { bytes: 1024 }, ...options });
  try {
    const e = fm.exports as unknown as Exports;
    expect(e.sum(30000)).toBe(((30000 * 29999) / 2) | 0);
    const s = fm.stats();
    expect(s.majorFaults).toBeGreaterThan(100);
    expect(s.writeBacks).toBeGreaterThan(100);
    expect(e.size()).toBe(2);
    expect(e.grow(3)).toBe(2);
    expect(e.size()).toBe(5);
    expect(fm.memory!.byteLength).toBe(5 * 65536);
  } finally {
    await fm.close();
  }
}

describe('smoke', () => {
  it('runs a tiny module on the embedded store', () => check({}));

  it('runs it through two real servers', async () => {
    const servers = await startServers(2, { capacity: '64MiB', token: 't0k' });
    try {
      await check({ remote: { urls: servers.urls, token: 't0k' } });
    } finally {
      await servers.close();
    }
  });
});
