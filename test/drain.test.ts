/**
 * @fileoverview Draining a memory server: the DRAIN request (admin only) and the DRAINING notice on
 * an in-process server, then the real thing — one of three `farmem serve` processes gets SIGUSR2 in
 * the middle of a `farmem run` with replication 1; the client moves every slab off it while the
 * guest runs, the drained server ends with no pages and exits 0 before the run ends, and the run's
 * result is identical.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeDrain, encodeFree, encodeRead, encodeStats, encodeWrite, Op, Status, type StatsOk } from '../host/protocol/index.js';
import { MemoryServer } from '../host/server/index.js';
import { loadWorkload, workloadPath, type WorkloadExports } from '../host/workloads.js';
import { page, PS, Raw, TEST_TOKEN } from './support/raw-client.js';
import { spawnFarmem, startServers, type Servers } from './support/servers.js';

const ADMIN = 'drain-admin';

describe('DRAIN and DRAINING', () => {
  let server: MemoryServer | null = null;
  afterEach(async () => { await server?.close(); });

  it('only the admin token may drain; clients get a DRAINING notice; the server is drained once empty', async () => {
    server = new MemoryServer({ capacity: 1 << 20, token: TEST_TOKEN, adminToken: ADMIN, drainTimeoutMs: 30_000 });
    await server.listen();
    const client = await Raw.connect(server.url, 'tenant');
    await client.call(encodeWrite(2, [1, 2], [page(1), page(2)], PS));
    expect(await client.call(encodeDrain(3))).toMatchObject({ op: Op.ERROR, id: 3, status: Status.FORBIDDEN });
    const admin = await Raw.connect(server.url, 'ops', ADMIN);
    expect(await admin.call(encodeDrain(2))).toEqual({ op: Op.OK, id: 2 });
    const notice = await client.next();
    expect(notice).toMatchObject({ op: Op.DRAINING, id: 0 });
    expect((notice as { deadlineMs: number }).deadlineMs).toBeGreaterThan(25_000);
    let drained = false;
    void server.drained.then(() => { drained = true; });
    // Still serving: the client reads its pages back to move them, then frees them here.
    expect((await client.call(encodeRead(4, [2])) as { data: Uint8Array }).data).toEqual(page(2));
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    await client.call(encodeRead(5, [1])); // ordered after any notice
    expect(await client.call(encodeFree(6, [1, 2]))).toEqual({ op: Op.OK, id: 6 });
    await server.drained;
    // A client that connects during the drain is told at once.
    const late = await Raw.connect(server.url, 'late');
    expect(await late.next()).toMatchObject({ op: Op.DRAINING });
    client.close();
    admin.close();
    late.close();
  });
});

describe('draining one of three servers mid-run', () => {
  let servers: Servers | null = null;
  afterAll(async () => { await servers?.close(); });

  async function pages(url: string, ns: string): Promise<number> {
    const c = await Raw.connect(url, 'drain-probe', ADMIN);
    try {
      return (await c.call(encodeStats(2)) as StatsOk).namespaces.find((n) => n.name === ns)?.pages ?? 0;
    } finally {
      c.close();
    }
  }

  it('SIGUSR2: the client moves its slabs away while the guest runs; the server exits empty; result identical', async () => {
    // A long drain deadline, and the client stays connected: the server can only exit early by being empty.
    servers = await startServers(3, { capacity: '256MiB', token: 'drain-token', args: ['--admin-token', ADMIN, '--drain-timeout', '600000'] });
    const size = 16 << 20;
    const run = spawnFarmem(['run', workloadPath('seqscan'), '--invoke', 'run', String(size), '1', '--local', '10%',
      '--store', servers.urls.join(','), '--token', 'drain-token', '--namespace', 'drained', '--stats', 'json', '--no-cache']);
    const deadline = Date.now() + 120_000;
    while ((await pages(servers.urls[1]!, 'drained')) === 0) {
      if (Date.now() > deadline || run.child.exitCode !== null) throw new Error(`server 1 never got pages: ${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const proc = servers.processes[1]!;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGUSR2');
    expect(await exited).toBe(0);
    expect(run.child.exitCode).toBeNull(); // it moved everything while the guest kept running
    const code = await run.exit(180_000);
    expect(code, run.stderr()).toBe(0);
    const { instance } = await WebAssembly.instantiate(loadWorkload('seqscan'));
    expect(run.stdout().trim()).toBe(String((instance.exports as unknown as WorkloadExports).run(size, 1)));
    const stats = JSON.parse(run.stderr()) as { replication: { slabsMoved: number } };
    expect(stats.replication.slabsMoved).toBeGreaterThan(0);
  });
});
