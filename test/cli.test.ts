/**
 * The CLI as a user meets it: bad modules and bad flags give one clear line and exit code 1 (no
 * stack trace), `run --invoke` prints results and stats, `instrument` writes a module `run` accepts,
 * the instrumentation cache is used on the second run, and `--help` documents every command.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import binaryen from 'binaryen';
import { describe, expect, it } from 'vitest';
import { instrumentCached } from '../host/runtime/instrument-cache.js';
import { workloadPath } from '../host/workloads.js';

const CLI = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'farmem-cli-'));

function farmem(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env, FARMEM_DEBUG: '' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, bytes: Uint8Array | string): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

function wat(text: string, features = binaryen.Features.All): Uint8Array {
  const m = binaryen.parseText(text);
  m.setFeatures(features);
  const bytes = m.emitBinary();
  m.dispose();
  return bytes;
}

/** One line on stderr, `(farmem <cmd>) <message>`, exit code 1, and no stack trace. */
function expectOneLineError(r: { code: number | null; stderr: string }, cmd: string, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^\\(farmem ${cmd}\\) `));
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('bad input', () => {
  const good = workloadPath('seqscan');
  const truncated = () => {
    const bytes = execFileSync('cat', [good]);
    return file('truncated.wasm', bytes.subarray(0, Math.floor(bytes.length / 2)));
  };
  const cases: [string, () => string[], RegExp][] = [
    ['not a wasm file', () => ['run', file('text.wasm', 'hello, I am text\n'), '--invoke', 'run'], /FM1001: not a WebAssembly module/],
    ['a truncated module', () => ['run', truncated(), '--invoke', 'run'], /FM1002: truncated module/],
    ['an invalid module', () => ['run', file('invalid.wasm', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 10, 4, 1, 2, 0, 0x6a])), '--invoke', 'f'], /FM100[25]/],
    ['a memory64 WASI command', () => ['run', file('m64.wasm', wat('(module (memory i64 1) (func (export "_start")))', binaryen.Features.All))], /memory64 WASI command \(wasm64-wasi\)/],
    ['nine memories', () => ['run', file('mm.wasm', wat(`(module ${'(memory 1) '.repeat(9)})`, binaryen.Features.All)), '--invoke', 'f'], /FM1011: unsupported feature: 9 memories declared/],
    ['a missing file', () => ['run', join(tmp, 'nope.wasm'), '--invoke', 'run'], /cannot read module .*no such file/],
    ['--local 0', () => ['run', good, '--invoke', 'run', '65536', '1', '--local', '0'], /--local must be/],
    ['--local 150%', () => ['run', good, '--invoke', 'run', '65536', '1', '--local', '150%'], /--local must be a percentage/],
    ['--page-size 3000', () => ['run', good, '--invoke', 'run', '65536', '1', '--page-size', '3000'], /--page-size must be a power of two between 256 and 65536/],
    ['--prefetch nosuch', () => ['run', good, '--invoke', 'run', '65536', '1', '--prefetch', 'nosuch'], /nosuch/],
    ['--stats yaml', () => ['run', good, '--invoke', 'run', '65536', '1', '--stats', 'yaml'], /--stats must be text, json or none/],
    ['--store with no token', () => ['run', good, '--invoke', 'run', '65536', '1', '--store', 'ws://127.0.0.1:1'], /needs --token/],
    ['--store not a URL', () => ['run', good, '--invoke', 'run', '65536', '1', '--store', 'redis:x', '--token', 't'], /--store must be/],
    ['--store URL with a path', () => ['run', good, '--invoke', 'run', '65536', '1', '--store', 'ws://127.0.0.1:1/x', '--token', 't'], /--store must be "embedded", ws:\/\/host:port or tcp:\/\/host:port URLs/],
    ['an unknown export', () => ['run', good, '--invoke', 'nosuch'], /exports no function "nosuch"; exported functions: run/],
    ['a wrong argument count', () => ['run', good, '--invoke', 'run', '1'], /takes 2 argument/],
    ['a non-numeric argument', () => ['run', good, '--invoke', 'run', 'lots', '1'], /argument 1 must be i32/],
    ['instrument --page-size 3000', () => ['instrument', good, '-o', join(tmp, 'x.wasm'), '--page-size', '3000'], /--page-size must be/],
  ];
  for (const [what, args, pattern] of cases) {
    it(`${what}: one clear line, exit code 1`, () => {
      const a = args();
      expectOneLineError(farmem(a), a[0]!, pattern);
    });
  }

  it('an unknown flag is reported by the parser with a hint, exit code 1', () => {
    const r = farmem(['run', good, '--pagesize', '4096']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown option '--pagesize'/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a guest trap is one line too', () => {
    const trap = file('trap.wasm', wat('(module (memory 1) (func (export "f") (result i32) (i32.load (i32.const 65534))))'));
    expectOneLineError(farmem(['run', trap, '--invoke', 'f', '--stats', 'none']), 'run', /memory access out of bounds/);
  });
});

describe('running', () => {
  it('prints the result on stdout and the stats on stderr (text and json)', () => {
    const text = farmem(['run', workloadPath('seqscan'), '--invoke', 'run', '262144', '3', '--local', '10%', '--page-size', '1KiB', '--no-cache']);
    expect(text.code).toBe(0);
    expect(text.stdout.trim()).toMatch(/^-?\d+$/);
    expect(text.stderr).toMatch(/faults: \d+ major/);
    const json = farmem(['run', workloadPath('seqscan'), '--invoke', 'run', '262144', '3', '--local', '10%', '--page-size', '1KiB', '--stats', 'json', '--latency', '--no-cache']);
    expect(json.stdout).toBe(text.stdout);
    const stats = JSON.parse(json.stderr);
    expect(stats.majorFaults).toBeGreaterThan(0);
    expect(stats.writeBacks).toBeGreaterThan(0);
    // Guest faults are timed; host-side accesses (bulk memory ops) fault without latency marks.
    expect(stats.latency.major.count).toBeGreaterThan(0);
    expect(stats.latency.major.count).toBeLessThanOrEqual(stats.majorFaults);
  });

  it('instrument writes a module that run accepts as is', () => {
    const out = join(tmp, 'seqscan.fm.wasm');
    const r = farmem(['instrument', workloadPath('seqscan'), '-o', out, '--page-size', '4096']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/instrumented \d+ functions, \d+ memory accesses/);
    const direct = farmem(['run', workloadPath('seqscan'), '--invoke', 'run', '131072', '2', '--stats', 'none', '--no-cache']);
    const pre = farmem(['run', out, '--invoke', 'run', '131072', '2', '--local', '25%', '--stats', 'none']);
    expect(pre.code).toBe(0);
    expect(pre.stdout).toBe(direct.stdout);
  });

  it('caches instrumented modules by content: the second run does not instrument', async () => {
    const cacheDir = join(tmp, 'cache');
    const bytes = new Uint8Array(execFileSync('cat', [workloadPath('graph')]));
    const hits: boolean[] = [];
    await instrumentCached(bytes, { pageSize: 4096, cacheDir, onCache: (hit) => hits.push(hit) });
    await instrumentCached(bytes, { pageSize: 4096, cacheDir, onCache: (hit) => hits.push(hit) });
    await instrumentCached(bytes, { pageSize: 1024, cacheDir, onCache: (hit) => hits.push(hit) });
    expect(hits).toEqual([false, true, false]);
    expect(readdirSync(cacheDir).filter((f) => f.endsWith('.wasm'))).toHaveLength(2);
    // And through the CLI: the cache directory gets the module on the first run.
    const cli = join(tmp, 'cli-cache');
    expect(farmem(['run', workloadPath('graph'), '--invoke', 'run', '65536', '1', '--cache-dir', cli, '--stats', 'none']).code).toBe(0);
    expect(readdirSync(cli)).toHaveLength(1);
  });

  it('documents every command in --help', () => {
    for (const cmd of ['run', 'instrument', 'serve', 'bench', 'trace']) {
      const r = farmem([cmd, '--help']);
      expect(r.code, cmd).toBe(0);
      expect(r.stdout, cmd).toMatch(/Usage: farmem/);
    }
    for (const cmd of ['run', 'serve', 'trace', 'bench']) expect(farmem([cmd, '--help']).stdout, cmd).toMatch(/Examples:/);
    expect(farmem(['instrument', '--help']).stdout).toMatch(/Example:/);
  });
});
