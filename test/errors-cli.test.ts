/**
 * @fileoverview Typed errors end to end: each failure a remote run can meet crosses the I/O worker
 * boundary with its class and code and reaches the CLI as one line ending in that code, exit 1 —
 * a wrong token (FM_ERR_AUTH), a full server (FM_ERR_SERVER_OUT_OF_MEMORY), a server that restarted
 * and lost the pages (FM_ERR_SERVER_DATA_LOST), and a server that stops answering (FM_ERR_TIMEOUT).
 * Real `farmem serve` processes and real `farmem run` processes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { workloadPath } from '../host/workloads.js';
import { faulting, spawnFarmem, startServers, type Servers } from './support/servers.js';

const TOKEN = 'errors-test-token';
const tmp = mkdtempSync(join(tmpdir(), 'farmem-errors-'));
const running: Servers[] = [];

afterEach(async () => {
  for (const s of running.splice(0)) {
    for (const p of s.processes) if (p.exitCode === null) p.kill('SIGCONT');
    await s.close();
  }
});

async function servers(n: number, capacity = '256MiB', args: string[] = []): Promise<Servers> {
  const s = await startServers(n, { capacity, token: TOKEN, args });
  running.push(s);
  return s;
}

/** `farmem run <workload> --invoke run SIZE 1` through `urls`, recording a trace to `trace`. */
function run(workload: string, size: number, local: string, urls: string[], trace: string, token = TOKEN, more: string[] = []) {
  return spawnFarmem(['run', workloadPath(workload), '--invoke', 'run', String(size), '1', '--local', local, '--store', urls.join(','),
    '--token', token, '--cache-dir', join(tmp, 'cache'), '--stats', 'none', '--trace', join(tmp, trace), ...more]);
}

/** One line `(farmem run) ... [CODE]` on stderr, exit code 1, no stack trace. */
function expectCode(code: number | null, stderr: string, errorCode: string, message: RegExp): void {
  expect(code, stderr).toBe(1);
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^\(farmem run\) /);
  expect(lines[0]).toMatch(message);
  expect(lines[0]!.endsWith(`[${errorCode}]`), lines[0]).toBe(true);
}

describe('each error class reaches the CLI with its code', () => {
  it('wrong token: AuthError, FM_ERR_AUTH', async () => {
    const s = await servers(1);
    const r = run('seqscan', 1 << 20, '25%', s.urls, 'auth.fmt', 'not-the-token');
    expectCode(await r.exit(60_000), r.stderr(), 'FM_ERR_AUTH', /refused the token/);
  });

  it('full server: ServerOutOfMemoryError on write-back, FM_ERR_SERVER_OUT_OF_MEMORY', async () => {
    const s = await servers(1, '256KiB');
    const r = run('seqscan', 4 << 20, '5%', s.urls, 'full.fmt');
    expectCode(await r.exit(60_000), r.stderr(), 'FM_ERR_SERVER_OUT_OF_MEMORY', /out of capacity/);
  });

  it('server restarted at the same address: DataLostError, FM_ERR_SERVER_DATA_LOST', async () => {
    const s = await servers(1);
    // A long deadline: the client must still be reconnecting when the new process listens.
    const r = run('pointerchase', 64 << 20, '2%', s.urls, 'lost.fmt', TOKEN, ['--timeout', '30000']);
    await faulting(join(tmp, 'lost.fmt'));
    await s.kill(0);
    await servers(1, '256MiB', ['--port', String(s.ports[0])]); // a new, empty process on the same port
    expectCode(await r.exit(60_000), r.stderr(), 'FM_ERR_SERVER_DATA_LOST', /restarted and lost the pages/);
  });

  it('server that stops answering (SIGSTOP): FM_ERR_TIMEOUT', async () => {
    const s = await servers(1);
    const r = run('pointerchase', 64 << 20, '2%', s.urls, 'stuck.fmt');
    await faulting(join(tmp, 'stuck.fmt'));
    s.processes[0]!.kill('SIGSTOP');
    expectCode(await r.exit(60_000), r.stderr(), 'FM_ERR_TIMEOUT', /within 5000 ms/);
  });
});
