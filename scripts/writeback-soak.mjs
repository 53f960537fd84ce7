#!/usr/bin/env node
// Write-back ordering soak through a live farmem serve: the hash table at 64 KiB pages and 25% local
// (test/remote-runtime.test.ts, "write-backs past the I/O worker's in-flight cap"), where pages are
// written back again while their last write-back still waits in the I/O worker's queue; ~30 s a run.
// Usage: node scripts/writeback-soak.mjs [--runs 3]
import { spawnSync } from 'node:child_process';

const i = process.argv.indexOf('--runs');
const runs = i > 0 ? Number(process.argv[i + 1]) : 3;
for (let r = 1; r <= runs; r++) {
  console.log(`run ${r} of ${runs}`);
  const res = spawnSync('npx', ['vitest', 'run', 'test/remote-runtime.test.ts', '-t', 'in-flight cap'], {
    stdio: 'inherit', env: { ...process.env, FARMEM_WRITEBACK_SOAK: '1' },
  });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
