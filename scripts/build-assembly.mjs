#!/usr/bin/env node
/**
 * @fileoverview Builds the guest workloads: every `assembly/workloads/<name>.ts` becomes its own
 * module `build/assembly/<name>.wasm` (debug target: `build/assembly/debug/<name>.wasm`), and every
 * threaded workload `assembly/threads/<name>.ts` becomes `build/assembly/threads/<name>.wasm`,
 * compiled with THREAD_FLAGS: a shared memory (max 64 MiB) that each guest thread's instance imports.
 *
 * Compiler options live in `asconfig.json` (`release`: -O3, stub runtime, no imports, SIMD on;
 * `debug`: -O0 with names). All modules compile in this one process through the
 * AssemblyScript JS API. A module is skipped when its .wasm is newer than its source, every
 * file under `assembly/lib/`, `asconfig.json`, this script and the installed compiler.
 * Outputs are written to a temporary file and renamed, so a concurrent reader never sees a
 * half-written module.
 *
 *   node scripts/build-assembly.mjs [--target release|debug] [--force] [--wat] [name...]
 *
 *   --target  asconfig.json target (default release)
 *   --force   rebuild even if up to date
 *   --wat     also write <name>.wat next to each rebuilt .wasm
 *   name...   only these workloads (default: all)
 */
import asc from 'assemblyscript/asc';
import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const workloadsDir = join(root, 'assembly', 'workloads');
const threadsDir = join(root, 'assembly', 'threads');
/** Threaded workloads: atomics, and one shared memory imported (as env.memory) by every thread. */
const THREAD_FLAGS = ['--enable', 'threads', '--sharedMemory', '--importMemory', '--initialMemory', '1', '--maximumMemory', '1024'];
const libDir = join(root, 'assembly', 'lib');
const configPath = join(root, 'asconfig.json');
const TARGETS = ['release', 'debug'];

function usage(message) {
  process.stderr.write(`(build-assembly) ${message}\n` +
    'usage: node scripts/build-assembly.mjs [--target release|debug] [--force] [--wat] [name...]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const args = { target: 'release', force: false, wat: false, names: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--force') args.force = true;
    else if (a === '--wat') args.wat = true;
    else if (a === '--target') {
      args.target = argv[++i];
      if (!TARGETS.includes(args.target)) usage(`"--target" must be one of ${TARGETS.join(', ')}, got ${args.target}`);
    } else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else args.names.push(a);
  }
  return args;
}

function mtimeMs(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Newest modification time of the inputs every workload shares. */
function sharedInputsMtime() {
  const require = createRequire(import.meta.url);
  const paths = [configPath, fileURLToPath(import.meta.url), require.resolve('assemblyscript/package.json')];
  for (const f of readdirSync(libDir)) if (f.endsWith('.ts')) paths.push(join(libDir, f));
  return Math.max(...paths.map(mtimeMs));
}

async function compile(name, source, outPath, target, wat, flags = []) {
  const outputs = new Map();
  const argv = [
    relative(root, source),
    '--config', relative(root, configPath),
    '--target', target,
    '--outFile', `${name}.wasm`,
    ...flags,
    ...(wat ? ['--textFile', `${name}.wat`] : []),
  ];
  let stderr = '';
  const { error } = await asc.main(argv, {
    stdout: { write: () => true },
    stderr: { write: (s) => { stderr += String(s); return true; } },
    writeFile: (filename, contents) => { outputs.set(basename(filename), contents); },
  });
  if (error) throw new Error(`${relative(root, source)} failed to compile: ${error.message}\n${stderr}`);
  const wasm = outputs.get(`${name}.wasm`);
  if (!(wasm instanceof Uint8Array)) throw new Error(`${relative(root, source)}: the compiler emitted no binary\n${stderr}`);
  if (stderr.trim() !== '') process.stderr.write(stderr); // warnings
  writeAtomically(outPath, wasm);
  if (wat) writeAtomically(outPath.replace(/\.wasm$/, '.wat'), outputs.get(`${name}.wat`) ?? '');
  return wasm.byteLength;
}

function writeAtomically(path, contents) {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const sources = (dir) => readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
  const threaded = new Set(sources(threadsDir));
  const all = [...sources(workloadsDir), ...threaded];
  for (const n of args.names) if (!all.includes(n)) usage(`no workload "${n}" in assembly/workloads (have: ${all.join(', ')})`);
  const names = args.names.length > 0 ? args.names : all;
  const outDir = join(root, 'build', 'assembly', ...(args.target === 'release' ? [] : [args.target]));
  mkdirSync(outDir, { recursive: true });

  const shared = sharedInputsMtime();
  let built = 0;
  const started = performance.now();
  mkdirSync(join(outDir, 'threads'), { recursive: true });
  for (const name of names) {
    const isThreaded = threaded.has(name);
    const source = join(isThreaded ? threadsDir : workloadsDir, `${name}.ts`);
    const outPath = join(outDir, ...(isThreaded ? ['threads'] : []), `${name}.wasm`);
    if (!args.force && mtimeMs(outPath) > Math.max(shared, mtimeMs(source))) continue;
    const t0 = performance.now();
    const bytes = await compile(name, source, outPath, args.target, args.wat, isThreaded ? THREAD_FLAGS : []);
    built++;
    process.stdout.write(`  ${name.padEnd(14)} ${String(bytes).padStart(6)} B  ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  }
  const where = relative(root, outDir);
  if (built === 0) process.stdout.write(`build-assembly: ${names.length} workloads up to date in ${where}\n`);
  else process.stdout.write(`build-assembly: built ${built} of ${names.length} workloads into ${where} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

main().catch((err) => {
  process.stderr.write(`(build-assembly) ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
