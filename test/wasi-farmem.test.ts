/**
 * Real programs on far memory: every C fixture runs instrumented under farmem at 5% local memory
 * with 4 KiB pages (WASI over the far-memory VirtualMemory), on the embedded store and through a
 * real memory server, and must match the same program run uninstrumented (farmem's Wasi over plain
 * memory): stdout, stderr, exit code and written files. Also: a sandbox escape gets the right
 * errno under farmem, and a module needing an import nobody provides gets an error naming it.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import binaryen from 'binaryen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate, type FarmemOptions } from '../host/index.js';
import { buildCFixtures, capturingWasi, runWithFarmemWasi, type WasiRunResult, type WasiRunSpec } from './support/c-fixtures.js';
import { startServers, type Servers } from './support/servers.js';
import { CASES, snapshot } from './support/wasi-cases.js';

const TOKEN = 'wasi-far-token';

async function runFar(wasmPath: string, spec: WasiRunSpec, options: FarmemOptions): Promise<WasiRunResult & { majorFaults: number }> {
  const { wasi, result } = capturingWasi(spec);
  let fm: Awaited<ReturnType<typeof instantiate>> | undefined;
  fm = await instantiate(new Uint8Array(readFileSync(wasmPath)), wasi.imports(() => fm!.memory!), options);
  try {
    return { ...result(wasi.start(fm.exports)), majorFaults: fm.stats().majorFaults };
  } finally {
    await fm.close();
  }
}

let bins: Record<string, string>;
let tmp: string;
let servers: Servers;
beforeAll(async () => {
  bins = await buildCFixtures();
  tmp = mkdtempSync(join(tmpdir(), 'farmem-wasi-far-'));
  servers = await startServers(1, { capacity: '512MiB', token: TOKEN });
});
afterAll(async () => {
  await servers?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Where pages live, and whether to use the cases' smaller inputs (every fault a round trip). */
const STORES: [string, () => Partial<FarmemOptions>, boolean][] = [
  ['embedded store', () => ({}), false],
  ['a memory server', () => ({ remote: { urls: servers.urls, token: TOKEN } }), true],
];

for (const [where, store, small] of STORES) {
  describe(`C fixtures at 5% local memory on ${where}`, () => {
    for (const full of CASES) {
      const c = small && full.small ? { ...full, ...full.small } : full;
      it(`${c.name}: same as the uninstrumented program`, async () => {
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

describe('WASI edge cases under farmem', () => {
  it('a program escaping its preopen gets the same errnos as without farmem', async () => {
    const sandbox = join(tmp, 'escape-sandbox');
    mkdirSync(sandbox, { recursive: true });
    const spec = { args: ['escape'], preopens: { '/sandbox': sandbox } };
    const far = await runFar(bins['escape']!, spec, { pageSize: 4096, local: { fraction: 0.05 } });
    const plain = runWithFarmemWasi(bins['escape']!, spec);
    expect(far.stdout.toString()).toBe(plain.stdout.toString());
    expect(far.stdout.toString()).toMatch(/errno=76/);
  });

  it('names an import that neither farmem nor the caller provides', async () => {
    const m = binaryen.parseText(`(module (import "env" "mystery" (func (param i32))) (memory 1) (func (export "f") (call 0 (i32.const 1))))`);
    const bytes = m.emitBinary();
    m.dispose();
    await expect(instantiate(bytes, {}, {})).rejects.toMatchObject({
      code: 'FM_ERR_MISSING_IMPORT',
      message: expect.stringMatching(/does not provide: env\.mystery \(function\)/),
    });
  });
});
