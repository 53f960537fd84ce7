/**
 * @fileoverview A real wasm32-wasi-threads program under `farmem run`: test/fixtures/zig/threads.wasm
 * (built from threads.zig with Zig 0.11, scripts/build-zig-threads.mjs) imports a shared memory and
 * `wasi.thread-spawn`, starts 4 threads with std.Thread (TLS, its own stacks), meets at a futex
 * barrier and joins them. Its output under farmem, at 10% local memory embedded and through a real
 * `farmem serve`, must equal the uninstrumented run under the same WASI layer (workers per thread).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlainWasiThreads } from './support/wasi-threads-plain.js';
import { startServers, type Servers } from './support/servers.js';

const CLI = fileURLToPath(new URL('../dist/host/cli/main.js', import.meta.url));
const PROGRAM = fileURLToPath(new URL('./fixtures/zig/threads.wasm', import.meta.url));
const TOKEN = 'wasi-threads-token';

function farmemRun(...flags: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'run', PROGRAM, '--stats', 'json', ...flags], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stats: r.stderr.trim() ? JSON.parse(r.stderr.trim().split('\n').at(-1)!) as Record<string, unknown> : {} };
}

describe('wasm32-wasi-threads program (Zig std.Thread) under farmem run', () => {
  let servers: Servers;
  let want: { exitCode: number; stdout: string };
  beforeAll(async () => {
    servers = await startServers(1, { capacity: '64MiB', token: TOKEN });
    want = await runPlainWasiThreads(new Uint8Array(readFileSync(PROGRAM)), [PROGRAM]);
  }, 60_000);
  afterAll(async () => { await servers?.close(); });

  it('the reference run prints every thread and the total', () => {
    expect(want.exitCode).toBe(0);
    expect(want.stdout).toMatch(/^thread 0: [0-9a-f]+\nthread 1: [0-9a-f]+\nthread 2: [0-9a-f]+\nthread 3: [0-9a-f]+\ntotal [0-9a-f]+\n$/);
  });

  it('embedded, 10% local: same output, pages evicted', () => {
    const r = farmemRun('--local', '10%');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(want.stdout);
    expect(r.stats.evictions as number).toBeGreaterThan(100);
  }, 60_000);

  it('through farmem serve, 10% local: same output', () => {
    const r = farmemRun('--local', '10%', '--store', servers.urls[0]!, '--token', TOKEN);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(want.stdout);
    expect(r.stats.store).toBe(servers.urls[0]);
  }, 60_000);
});
