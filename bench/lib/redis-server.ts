/**
 * @fileoverview Real `redis-server` processes for tests and benchmarks (Debian's `redis-server`
 * package): one standalone server, or a cluster of N masters built with `redis-cli --cluster create`.
 * Each server binds 127.0.0.1 on a free port picked at random, keeps its files in a fresh temp dir
 * (removed at close), never persists, and is killed at close. The Debian package's own service on
 * port 6379 is never touched.
 *
 *   const r = await startRedis({ password: 'pw', policy: 'noeviction' });
 *   r.url;                         // 'redis://:pw@127.0.0.1:41234'
 *   await r.cli(0, 'CONFIG', 'SET', 'maxmemory', '2mb');
 *   await r.kill(0);               // SIGKILL server 0
 *   await r.close();               // kills whatever runs, removes the temp dir
 *
 *   const c = await startRedis({ cluster: 3 });
 *   c.url;                         // 'redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3'
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const HOST = '127.0.0.1';
const APT_HINT = 'install it with: apt-get install -y redis-server';

export interface RedisSpawnOptions {
  /** Masters of a cluster (`--cluster-enabled yes`); 0 (default) starts one standalone server. */
  cluster?: number;
  /** `requirepass` (the default user's password). */
  password?: string;
  /** `maxmemory-policy`; Redis's own default is `noeviction`. */
  policy?: string;
  /** `maxmemory`, e.g. '4mb'. */
  maxmemory?: string;
  /** Serve TLS only (standalone): a self-signed certificate for 127.0.0.1 made with openssl; the URL is rediss://. */
  tls?: boolean;
  /** More `--name value` arguments for every server. */
  args?: readonly string[];
  startTimeoutMs?: number;
}

export interface RedisServers {
  /** The `--store` URL: `redis://[:password@]127.0.0.1:port` or `redis+cluster://host:port,...`. */
  readonly url: string;
  readonly ports: readonly number[];
  /** With `tls`: the certificate to trust (e.g. NODE_EXTRA_CA_CERTS); else null. */
  readonly caFile: string | null;
  /** Runs `redis-cli` against server i and returns its output (trimmed). */
  cli(i: number, ...args: string[]): Promise<string>;
  /** Kills server i (SIGKILL unless told otherwise) and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Kills every server still running and removes the temp dir. */
  close(): Promise<void>;
}

/** Why Redis cannot be started here, or null when `redis-server` and `redis-cli` run. */
export function redisMissing(): string | null {
  for (const tool of ['redis-server', 'redis-cli']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `${tool} not found; ${APT_HINT}`;
  }
  return null;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, HOST, () => s.close(() => resolve(true)));
  });
}

/** A free port whose cluster-bus port (+10000) is free too. */
async function freePort(taken: Set<number>): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if (taken.has(port) || taken.has(port + 10000)) continue;
    if (await canBind(port) && await canBind(port + 10000)) {
      taken.add(port);
      taken.add(port + 10000);
      return port;
    }
  }
  throw new Error('no free port pair found for redis-server');
}

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

/** Spawns one server; resolves when it accepts connections. */
function spawnOne(port: number, dir: string, flags: string[], timeoutMs: number, tls: boolean): Promise<ChildProcess> {
  const ports = tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)];
  const proc = spawn('redis-server', [...ports, '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--logfile', '', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`redis-server on port ${port} not ready within ${timeoutMs} ms: ${out.slice(-2000)}`));
    }, timeoutMs);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start redis-server (${err.message}); ${APT_HINT}`));
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server on port ${port} exited (code ${code}) before it was ready: ${out.slice(-2000)}`));
    });
    const onData = (d: Buffer) => {
      out = (out + d.toString()).slice(-8192);
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        proc.removeAllListeners('exit');
        proc.stdout!.off('data', onData);
        proc.stdout!.resume();
        resolve(proc);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-8192); });
  });
}

/** A self-signed certificate and key for 127.0.0.1 in `dir`. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl could not make a test certificate (apt-get install -y openssl): ${r.stderr ?? r.error}`);
  return { cert, key };
}

export async function startRedis(options: RedisSpawnOptions = {}): Promise<RedisServers> {
  const missing = redisMissing();
  if (missing) throw new Error(missing);
  if (options.tls && options.cluster) throw new Error('startRedis: tls is for a standalone server only');
  const n = Math.max(1, options.cluster ?? 0);
  const clustered = (options.cluster ?? 0) > 0;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'farmem-redis-'));
  const taken = new Set<number>();
  const ports: number[] = [];
  const procs: ChildProcess[] = [];
  const common = [
    ...(options.password !== undefined ? ['--requirepass', options.password, '--masterauth', options.password] : []),
    ...(options.policy ? ['--maxmemory-policy', options.policy] : []),
    ...(options.maxmemory ? ['--maxmemory', options.maxmemory] : []),
    ...(options.args ?? []),
  ];
  const tls = options.tls ? selfSigned(dir) : null;
  if (tls) common.push('--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.cert, '--tls-auth-clients', 'no');
  const auth = [
    ...(options.password !== undefined ? ['-a', options.password, '--no-auth-warning'] : []),
    ...(tls ? ['--tls', '--cacert', tls.cert] : []),
  ];
  const cli = async (i: number, ...args: string[]) => {
    const { stdout } = await execFileP('redis-cli', ['-h', HOST, '-p', String(ports[i]), ...auth, ...args], { timeout: 30_000 });
    return stdout.trim();
  };
  const close = async () => {
    await Promise.all(procs.map(async (p) => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await exited(p);
    }));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = await freePort(taken);
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const flags = clustered
        ? [...common, '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', '2000']
        : common;
      ports.push(port);
      procs.push(await spawnOne(port, nodeDir, flags, timeoutMs, tls !== null));
    }
    if (clustered) {
      await execFileP('redis-cli', [...auth, '--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-yes'], { timeout: timeoutMs });
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < n; i++) {
        while (!/cluster_state:ok/.test(await cli(i, 'CLUSTER', 'INFO'))) {
          if (Date.now() > deadline) throw new Error(`redis cluster on ports ${ports.join(',')} did not reach cluster_state:ok`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  const userinfo = options.password !== undefined ? `:${encodeURIComponent(options.password)}@` : '';
  const url = clustered
    ? `redis+cluster://${userinfo}${ports.map((p) => `${HOST}:${p}`).join(',')}`
    : `${tls ? 'rediss' : 'redis'}://${userinfo}${HOST}:${ports[0]}`;
  return {
    url,
    ports,
    caFile: tls?.cert ?? null,
    cli,
    kill: async (i, signal = 'SIGKILL') => {
      const p = procs[i]!;
      if (p.exitCode === null && p.signalCode === null) p.kill(signal);
      await exited(p);
    },
    close,
  };
}
