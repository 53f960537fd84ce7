/**
 * @fileoverview The differential suites every loop-optimization test file runs on its module
 * (test/chunk.test.ts, outer-chunk, predicate): the module's calls against V8 at every page size
 * with a tiny frame pool, embedded, and through one memory server with its I/O worker and busy
 * reclaimer. Both require evictions, so the cached-translation paths are driven under pressure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZES, runBoth, type Call } from './differential.js';
import { startServers, type Servers } from './servers.js';

/** Embedded: every page size × each frame count; memory compared after each call. */
export function embeddedSuite(module: Uint8Array, calls: Call[], frames: readonly number[]): void {
  describe.each(PAGE_SIZES)('at page size %i, embedded', (pageSize) => {
    it.each([...frames])('matches V8 with %i frames', async (n) => {
      const diff = await runBoth(module, calls, { pageSize, frames: n, memory: 'each' });
      expect(diff.mismatches).toEqual([]);
      expect(diff.stats!.evictions).toBeGreaterThan(0);
    });
  });
}

/** Through a memory server (busy reclaimer): 256-byte pages with 4 frames, 4 KiB with 3. */
export function serverSuite(title: string, module: Uint8Array, calls: Call[], token: string): void {
  describe(`${title} through a memory server (busy reclaimer)`, () => {
    let servers: Servers;
    beforeAll(async () => {
      servers = await startServers(1, { capacity: '64MiB', token });
    });
    afterAll(async () => {
      await servers?.close();
    });
    it.each([[256, 4], [4096, 3]])('matches V8 at page size %i with %i frames', async (pageSize, frames) => {
      const diff = await runBoth(module, calls, { pageSize, frames, memory: 'end', remote: { urls: servers.urls, token } });
      expect(diff.mismatches).toEqual([]);
      expect(diff.stats!.evictions).toBeGreaterThan(0);
    });
  });
}
