/**
 * @fileoverview The C fixture runs shared by the WASI tests (farmem Wasi vs node:wasi) and the
 * far-memory WASI tests (instrumented under farmem vs uninstrumented): argv, env, stdin, input files,
 * expected exit code and extra checks, with deterministic inputs.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { C_FIXTURES_DIR, type WasiRunResult } from './c-fixtures.js';

export const UPDATE_GOLDEN = process.env['FARMEM_UPDATE_GOLDEN'] === '1';
export const GOLDEN_DIR = join(C_FIXTURES_DIR, 'expected');

/** Deterministic bytes (xorshift32), so inputs are the same on every machine. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

export function randomBytes(n: number, seed: number): Buffer {
  const next = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(next(), i);
  for (let i = n - (n % 4); i < n; i++) b[i] = next() & 255;
  return b;
}

export function randomText(words: number, seed: number): Buffer {
  const next = prng(seed);
  const syll = ['far', 'mem', 'page', 'wa', 'sm', 'leap', 'ka', 'to', 'ri', 'o', 'nu', 'de'];
  const vocab: string[] = [];
  for (let i = 0; i < 1728; i++) vocab.push(syll[i % 12]! + syll[Math.floor(i / 12) % 12]! + (i >= 144 ? syll[Math.floor(i / 144)]! : ''));
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    // Zipf-like: small indices are far more frequent.
    const r = next() / 2 ** 32;
    const w = vocab[Math.floor(vocab.length * r * r)]!;
    out.push(i % 13 === 0 ? w.toUpperCase() : w, i % 17 === 16 ? '\n' : ' ');
  }
  return Buffer.from(out.join(''));
}

/** Every file under `dir` (recursively) as `relative path → sha256 or "-> target"`. */
export function snapshot(dir: string, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out[prefix + name] = `-> ${readlinkSync(p)}`;
    else if (st.isDirectory()) Object.assign(out, { [prefix + name + '/']: 'dir' }, snapshot(p, `${prefix}${name}/`));
    else out[prefix + name] = createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  return out;
}

export interface Case {
  name: string;
  fixture: string;
  args: string[];
  env?: Record<string, string>;
  stdin?: () => Buffer;
  /** Fills the preopened directory before the run. */
  setup?: (dir: string) => void;
  exitCode: number;
  /** Extra checks on the directory after the run (our run). */
  check?: (dir: string, r: WasiRunResult) => void;
  /**
   * A smaller input for runs through a memory server, where every fault is a network round trip:
   * the same program and checks at 5% local memory, with fewer faults to wait for.
   */
  small?: Pick<Case, 'args' | 'setup' | 'stdin'>;
  /**
   * A smaller input still, for the heavy cases run through several network stores in one test file
   * (Redis standalone and cluster), where `small` would cost hundreds of thousands of round trips.
   */
  tiny?: Pick<Case, 'args' | 'setup' | 'stdin'>;
}

export const CASES: Case[] = [
  {
    name: 'copy',
    fixture: 'copy',
    args: ['copy', '/data/in.bin', '/data/out.bin'],
    setup: (d) => writeFileSync(join(d, 'in.bin'), randomBytes(700_001, 1)),
    exitCode: 0,
    check: (d) => expect(readFileSync(join(d, 'out.bin')).equals(readFileSync(join(d, 'in.bin')))).toBe(true),
  },
  {
    name: 'copy-missing',
    fixture: 'copy',
    args: ['copy', '/data/missing.bin', '/data/out.bin'],
    exitCode: 2,
    check: (d, r) => {
      expect(r.stderr.toString()).toBe('copy: cannot open /data/missing.bin: No such file or directory\n');
      expect(existsSync(join(d, 'out.bin'))).toBe(false);
    },
  },
  {
    name: 'sort',
    fixture: 'sort',
    args: ['sort', '/data/nums.bin', '/data/sorted.bin'],
    setup: (d) => writeFileSync(join(d, 'nums.bin'), randomBytes(4 * 200_000, 2)),
    small: { args: ['sort', '/data/nums.bin', '/data/sorted.bin'], setup: (d) => writeFileSync(join(d, 'nums.bin'), randomBytes(4 * 20_000, 2)) },
    tiny: { args: ['sort', '/data/nums.bin', '/data/sorted.bin'], setup: (d) => writeFileSync(join(d, 'nums.bin'), randomBytes(4 * 1_000, 2)) },
    exitCode: 0,
    check: (d) => {
      const input = new Uint32Array(new Uint8Array(readFileSync(join(d, 'nums.bin'))).buffer);
      const sorted = Buffer.from(Uint32Array.from(input).sort().buffer);
      expect(readFileSync(join(d, 'sorted.bin')).equals(sorted)).toBe(true);
    },
  },
  {
    name: 'wordcount',
    fixture: 'wordcount',
    args: ['wordcount', '12'],
    stdin: () => randomText(150_000, 3),
    small: { args: ['wordcount', '12'], stdin: () => randomText(15_000, 3) },
    tiny: { args: ['wordcount', '12'], stdin: () => randomText(600, 3) },
    exitCode: 0,
  },
  { name: 'churn', fixture: 'churn', args: ['churn', '30000', '7'], exitCode: 0, small: { args: ['churn', '5000', '7'] }, tiny: { args: ['churn', '1500', '7'] } },
  { name: 'grow', fixture: 'grow', args: ['grow', '48', '512'], exitCode: 0 },
  // Node's WASI test `poll`: stdin is a pipe whose writer has closed (node:wasi's child) or
  // in-process input (farmem's run); both must report POLLIN | POLLHUP once the input is used up.
  { name: 'poll-empty', fixture: 'poll', args: ['poll'], exitCode: 0 },
  { name: 'poll-input', fixture: 'poll', args: ['poll'], stdin: () => Buffer.from('hello\n'), exitCode: 0 },
  {
    name: 'fsops',
    fixture: 'fsops',
    args: ['fsops', 'x', 'two words', 'ünïcödé'],
    env: { GREETING: 'hello far memory', OTHER: 'a=b' },
    exitCode: 7,
  },
];

