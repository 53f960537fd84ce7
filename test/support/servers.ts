/**
 * @fileoverview Test helper: spawns N real `farmem serve` processes on 127.0.0.1 ephemeral ports
 * (from the built `dist/`; run `npx tsc -p tsconfig.json` first) and kills them.
 *
 *   const servers = await startServers(3, { capacity: '64MiB', token: 't' });
 *   servers.urls;            // ['ws://127.0.0.1:41234', ...]
 *   servers.tcpUrls;         // ['tcp://127.0.0.1:41235', ...] with { tcp: true } (--tcp-port 0), else []
 *   await servers.kill(1);   // SIGKILL server 1 (its pages are gone), waits for it to exit
 *   await servers.close();   // SIGTERM the rest, waits for them to exit
 *
 * By default only the serve subcommand is loaded (fast); `entry: 'cli'` runs the full binary.
 * Each process prints `farmem serve listening on ws://HOST:PORT[ and tcp://HOST:PORT]`; the helper waits for that line
 * (bounded by `startTimeoutMs`) and reports the process's stderr if it exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = `${ROOT}dist/host/cli/main.js`;
const SERVE = `${ROOT}dist/host/cli/cmd/serve.js`;
/**
 * Runs only the `serve` subcommand: the same `registerServe` code and flags as `farmem serve`, but
 * without loading the other subcommands (the full CLI loads binaryen, vega, ... which takes seconds
 * on a busy machine; a subcommand mid-development may not load at all).
 */
const SERVE_ONLY = `
const { Command } = await import('commander');
const { registerServe } = await import(${JSON.stringify(SERVE)});
const program = new Command('farmem');
registerServe(program);
await program.parseAsync(process.argv.slice(1), { from: 'user' });
`;

export interface ServerSpawnOptions {
  /** `--capacity` of each server (a size string or bytes). */
  capacity?: string | number;
  token?: string;
  /** More flags for every server, e.g. `['--max-payload', '1MiB']`. */
  args?: readonly string[];
  startTimeoutMs?: number;
  /**
   * `'serve'` (default) loads only the serve subcommand; `'cli'` runs `dist/host/cli/main.js serve`,
   * the full `farmem` binary.
   */
  entry?: 'serve' | 'cli';
  /** Also listen on tcp:// (`--tcp-port 0`); the URLs are in `tcpUrls`. */
  tcp?: boolean;
}

export interface Servers {
  readonly urls: string[];
  readonly ports: number[];
  /** `tcp://` URLs of the same servers (with `tcp: true`; else empty). */
  readonly tcpUrls: string[];
  readonly processes: ChildProcess[];
  /** What server i wrote to stderr so far (for failure messages). */
  stderr(i: number): string;
  /** Kills server i (SIGKILL unless told otherwise) and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Stops every server still running (SIGTERM, then SIGKILL after 3 s) and waits for them. */
  close(): Promise<void>;
}

function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once('exit', () => resolve()));
}

async function stop(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await exited(p);
  clearTimeout(t);
}

function spawnOne(flags: string[], standalone: boolean, timeoutMs: number): Promise<{ proc: ChildProcess; port: number; tcpPort: number; err: () => string }> {
  const args = standalone ? ['--input-type=module', '-e', SERVE_ONLY, '--', 'serve', ...flags] : [MAIN, 'serve', ...flags];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-8192); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`farmem serve did not print its port within ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`farmem serve exited (code ${code}) before listening; stderr: ${err}`), { stderr: err }));
    };
    proc.once('exit', onExit);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /farmem serve listening on ws:\/\/127\.0\.0\.1:(\d+)(?: and tcp:\/\/127\.0\.0\.1:(\d+))?\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.off('exit', onExit);
        resolve({ proc, port: Number(m[1]), tcpPort: m[2] === undefined ? 0 : Number(m[2]), err: () => err });
      }
    });
  });
}

export async function startServers(n: number, options: ServerSpawnOptions = {}): Promise<Servers> {
  if (!existsSync(SERVE)) throw new Error(`${SERVE} is missing: build first with "npx tsc -p tsconfig.json"`);
  const flags = ['--port', '0', '--host', '127.0.0.1', '--capacity', String(options.capacity ?? '64MiB'), '--token', options.token ?? 'test-token',
    ...(options.tcp ? ['--tcp-port', '0'] : []), ...(options.args ?? [])];
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const entry = options.entry ?? 'serve';
  const results = await Promise.allSettled(Array.from({ length: n }, () => spawnOne(flags, entry === 'serve', timeoutMs)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((s) => stop(s.proc, 'SIGKILL')));
    throw (failed as PromiseRejectedResult).reason;
  }
  return {
    urls: started.map((s) => `ws://127.0.0.1:${s.port}`),
    ports: started.map((s) => s.port),
    tcpUrls: options.tcp ? started.map((s) => `tcp://127.0.0.1:${s.tcpPort}`) : [],
    processes: started.map((s) => s.proc),
    stderr: (i) => started[i]!.err(),
    kill: (i, signal = 'SIGKILL') => stop(started[i]!.proc, signal),
    close: async () => { await Promise.all(started.map((s) => stop(s.proc, 'SIGTERM'))); },
  };
}

/**
 * Resolves once a child run is really faulting through its store: its fault trace (`--trace`) has
 * been flushed at least once (the writer buffers 64 KiB of records), so it connected and is mid-run.
 */
export async function faulting(trace: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (existsSync(trace) && statSync(trace).size > 4096) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${trace}: the run never started faulting`);
}

export interface CliRun {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code, or kills the run and resolves -999 after `timeoutMs`. */
  exit(timeoutMs: number): Promise<number | null>;
}

/** Starts `farmem ARGS...` (the built CLI) as a child process of `node` (default: this one), collecting its output. */
export function spawnFarmem(args: readonly string[], node = process.execPath, env: NodeJS.ProcessEnv = process.env): CliRun {
  const child = spawn(node, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT, env });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  // 'close', not 'exit': by then stdout and stderr have been read to the end.
  const done = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: async (timeoutMs) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await done;
      clearTimeout(timer);
      return child.signalCode === 'SIGKILL' ? -999 : code;
    },
  };
}
