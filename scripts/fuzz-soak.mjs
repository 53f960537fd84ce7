#!/usr/bin/env node
/**
 * @fileoverview Long fuzz soak (not part of `npm test`): runs test/fuzz.test.ts over thousands of
 * seeds in chunks, saving every failing seed under test/fixtures/fuzz-regressions/ (`<seed>.bin`
 * input bytes + `<seed>.wasm` generated module), which the regular test then replays.
 *
 *   node scripts/fuzz-soak.mjs [--seeds 5000] [--start 1000] [--chunk 250]
 *
 * Each chunk is one vitest process (bounded memory, a crash loses one chunk only). Exits 1 if any
 * chunk failed; prints the failing seeds.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function flag(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value <= 0) {
    console.error(`(fuzz-soak) --${name} needs a positive integer, got ${process.argv[at + 1]}`);
    process.exit(1);
  }
  return value;
}

const seeds = flag('seeds', 5000);
const start = flag('start', 1000);
const chunk = flag('chunk', 250);
const failed = [];
const began = Date.now();

for (let from = start; from < start + seeds; from += chunk) {
  const count = Math.min(chunk, start + seeds - from);
  const t0 = Date.now();
  const result = spawnSync('npx', ['vitest', 'run', 'test/fuzz.test.ts', '-t', 'random modules'], {
    cwd: root,
    env: { ...process.env, FARMEM_FUZZ_START: String(from), FARMEM_FUZZ_SEEDS: String(count), FARMEM_FUZZ_SAVE: '1', FARMEM_FUZZ_VERBOSE: '1' },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const out = `${result.stdout}\n${result.stderr}`;
  const summary = /fuzz: .*/.exec(out)?.[0] ?? '(no summary: the chunk crashed)';
  console.log(`seeds ${from}..${from + count - 1} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${summary}`);
  for (const m of out.matchAll(/^seed (\d+) \(/gm)) failed.push(Number(m[1]));
  if (result.status !== 0) {
    if (!/fuzz: /.test(out)) console.log(out.slice(-4000));
    failed.push(`chunk ${from}`);
  }
}

console.log(`soak: ${seeds} seeds in ${((Date.now() - began) / 1000).toFixed(0)} s; failing: ${failed.length ? failed.join(', ') : 'none'}`);
if (failed.length) {
  console.log('Failing seeds were saved under test/fixtures/fuzz-regressions/; commit them and report the bug.');
  process.exit(1);
}
