/**
 * @fileoverview The machine a benchmark ran on: Node and V8 versions, CPU model and core count,
 * memory, date, git commit and the V8 flags the bench set. Every result file records this, so a
 * number can always be traced to where and when it was measured.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface EnvInfo {
  /** `process.version`, e.g. `v20.20.2`. */
  node: string;
  /** V8 version Node was built with. */
  v8: string;
  platform: string;
  arch: string;
  /** CPU model string from the OS (first CPU). */
  cpu: string;
  /** Logical CPUs visible to the process. */
  cores: number;
  /** Total physical memory in bytes. */
  memoryBytes: number;
  /** Kernel release (`os.release()`). */
  kernel: string;
  /** ISO-8601 date and time the run started. */
  date: string;
  /** `git rev-parse HEAD` of the checkout, or null outside a git checkout. */
  gitCommit: string | null;
  /** True when the checkout had uncommitted changes. */
  gitDirty: boolean | null;
  /** V8 flags the bench runner set (e.g. `--no-liftoff`). */
  v8Flags: string[];
}

function git(args: string[]): string | null {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return null;
  }
}

/** Collects machine information once per bench run. */
export function collectEnv(v8Flags: readonly string[] = [], now: Date = new Date()): EnvInfo {
  const cpus = os.cpus();
  const commit = git(['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(['status', '--porcelain', '--untracked-files=no']);
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    date: now.toISOString(),
    gitCommit: commit,
    gitDirty: status === null ? null : status.length > 0,
    v8Flags: [...v8Flags],
  };
}

/** One line for a table header or a chart subtitle. */
export function describeEnv(env: EnvInfo): string {
  const gib = (env.memoryBytes / 1024 ** 3).toFixed(1);
  const commit = env.gitCommit ? ` @ ${env.gitCommit.slice(0, 8)}${env.gitDirty ? '+dirty' : ''}` : '';
  return `${env.date.slice(0, 16).replace('T', ' ')} · Node ${env.node} · ${env.cpu} × ${env.cores} · ${gib} GiB${commit}`;
}
