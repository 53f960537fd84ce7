/**
 * @fileoverview The C fixtures on far memory: every case of wasi-cases.ts runs instrumented under
 * farmem at 5% local memory with 4 KiB pages (WASI over the far-memory VirtualMemory) on a given
 * page store, and must match the same program run uninstrumented (farmem's Wasi over plain memory):
 * stdout, stderr, exit code and written files. Shared by the tests of each store.
 *
 *   describeCasesOnFarMemory('a memory server', () => ({ remote: { urls, token } }), 'small', () => ({ bins, tmp }));
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { instantiate, type FarmemOptions } from '../../host/index.js';
import { capturingWasi, runWithFarmemWasi, type WasiRunResult, type WasiRunSpec } from './c-fixtures.js';
import { CASES, snapshot } from './wasi-cases.js';

/** Runs a WASI command under farmem with `options`; returns what it printed, its exit code and its major faults. */
export async function runFar(wasmPath: string, spec: WasiRunSpec, options: FarmemOptions): Promise<WasiRunResult & { majorFaults: number }> {
  const { wasi, result } = capturingWasi(spec);
  let fm: Awaited<ReturnType<typeof instantiate>> | undefined;
  fm = await instantiate(new Uint8Array(readFileSync(wasmPath)), wasi.imports(() => fm!.memory!), options);
  try {
    return { ...result(wasi.start(fm.exports)), majorFaults: fm.stats().majorFaults };
  } finally {
    await fm.close();
  }
}

/** Which inputs of the cases to use: `small`/`tiny` fall back to the next bigger one a case has. */
export type CaseInputs = 'full' | 'small' | 'tiny';

/**
 * One `describe` with a test per C fixture case on the store `store()` gives; `small` and `tiny`
 * use the cases' smaller inputs (for stores where every fault is a network round trip). `env()`
 * gives the built fixtures (buildCFixtures) and a scratch directory, made in the caller's beforeAll.
 */
export function describeCasesOnFarMemory(where: string, store: () => Partial<FarmemOptions>, inputs: CaseInputs,
  env: () => { bins: Record<string, string>; tmp: string }): void {
  describe(`C fixtures at 5% local memory on ${where}`, () => {
    for (const full of CASES) {
      const smaller = inputs === 'tiny' ? full.tiny ?? full.small : inputs === 'small' ? full.small : undefined;
      const c = smaller ? { ...full, ...smaller } : full;
      it(`${c.name}: same as the uninstrumented program`, async () => {
        const { bins, tmp } = env();
        const dirs = ['far', 'plain'].map((who) => {
          const d = join(tmp, `${where.replace(/\W+/g, '-')}-${c.name}-${who}`);
          mkdirSync(d, { recursive: true });
          c.setup?.(d);
          return d;
        });
        const stdin = c.stdin?.();
        const spec = (dir: string): WasiRunSpec => ({ args: c.args, env: c.env ?? {}, preopens: { '/data': dir, '/work': dir }, ...(stdin ? { stdin } : {}) });
        const far = await runFar(bins[c.fixture]!, spec(dirs[0]!), { pageSize: 4096, local: { fraction: 0.05 }, ...store() });
        const plain = runWithFarmemWasi(bins[c.fixture]!, spec(dirs[1]!));
        expect(far.exitCode).toBe(c.exitCode);
        expect(far.exitCode).toBe(plain.exitCode);
        expect(far.stdout.toString().split('\n')).toEqual(plain.stdout.toString().split('\n'));
        expect(far.stderr.toString().split('\n')).toEqual(plain.stderr.toString().split('\n'));
        expect(snapshot(dirs[0]!)).toEqual(snapshot(dirs[1]!));
        expect(far.majorFaults).toBeGreaterThan(0);
        c.check?.(dirs[0]!, far);
      });
    }
  });
}
