/**
 * Real programs on far memory: every C fixture runs instrumented under farmem at 5% local memory
 * with 4 KiB pages (WASI over the far-memory VirtualMemory), on the embedded store and through a
 * real memory server, and must match the same program run uninstrumented (farmem's Wasi over plain
 * memory): stdout, stderr, exit code and written files. Also: a sandbox escape gets the right
 * errno under farmem, and a module needing an import nobody provides gets an error naming it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import binaryen from 'binaryen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instantiate, type FarmemOptions } from '../host/index.js';
import { buildCFixtures, runWithFarmemWasi } from './support/c-fixtures.js';
import { describeCasesOnFarMemory, runFar, type CaseInputs } from './support/far-cases.js';
import { startServers, type Servers } from './support/servers.js';

const TOKEN = 'wasi-far-token';

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
const STORES: [string, () => Partial<FarmemOptions>, CaseInputs][] = [
  ['embedded store', () => ({}), 'full'],
  ['a memory server', () => ({ remote: { urls: servers.urls, token: TOKEN } }), 'small'],
];

for (const [where, store, small] of STORES) describeCasesOnFarMemory(where, store, small, () => ({ bins, tmp }));

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
