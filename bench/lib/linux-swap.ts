/**
 * @fileoverview Plain Linux swap as a baseline: a memory cgroup caps a native process, and swap
 * goes to a zram device. Owns every system change the peer suite makes, and undoes it: `setupSwap`
 * turns zram0 into swap only when it is unused (and `teardown` then swapoff + reset), each run gets
 * its own cgroup, removed after the process exits. Needs root; `probeLinuxSwap` says why not when
 * the machine does not allow it.
 *
 * cgroup v1: `<root>/memory/<name>/memory.limit_in_bytes` (swap is uncapped: memsw unlimited).
 * cgroup v2: `<root>/<name>/memory.max`, `memory.swap.max = max`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync, rmdirSync, accessSync, constants } from 'node:fs';
import path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
const ZRAM = '/sys/block/zram0';
const ZRAM_DEV = '/dev/zram0';

export interface CgroupFlavor {
  version: 1 | 2;
  /** Directory new cgroups are created under. */
  parent: string;
}

/** Which memory cgroup hierarchy this machine has, or null. */
export function detectCgroup(root = CGROUP_ROOT): CgroupFlavor | null {
  if (existsSync(path.join(root, 'memory', 'memory.limit_in_bytes'))) return { version: 1, parent: path.join(root, 'memory') };
  const controllers = path.join(root, 'cgroup.controllers');
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')) return { version: 2, parent: root };
  return null;
}

/** Why the peer suite cannot run here, or null when it can. */
export function probeLinuxSwap(): string | null {
  if (process.platform !== 'linux') return `needs Linux (this is ${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root to create memory cgroups and set up zram swap (run as root)';
  const cg = detectCgroup();
  if (!cg) return `no memory cgroup controller under ${CGROUP_ROOT} (neither v1 memory/ nor v2 with "memory" in cgroup.controllers)`;
  try {
    accessSync(cg.parent, constants.W_OK);
  } catch {
    return `${cg.parent} is not writable (read-only cgroup mount?)`;
  }
  if (!existsSync(ZRAM)) spawnSync('modprobe', ['zram'], { stdio: 'ignore', timeout: 10_000 });
  if (!existsSync(ZRAM)) return `no zram device (${ZRAM} is missing and \`modprobe zram\` did not create it)`;
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) return 'needs gcc to build the native programs (apt-get install -y gcc)';
  for (const tool of ['mkswap', 'swapon', 'swapoff']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return `needs ${tool} (util-linux)`;
  }
  return null;
}

function zramInSwaps(): boolean {
  return readFileSync('/proc/swaps', 'utf8').split('\n').some((l) => l.startsWith(ZRAM_DEV + ' ') || l.startsWith(ZRAM_DEV + '\t'));
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
}

export interface SwapSetup {
  /** True when this bench turned zram0 into swap (and will undo it). */
  owned: boolean;
  device: string;
  disksizeBytes: number;
  compAlgorithm: string;
  /** `/proc/sys/vm/page-cluster` (swap readahead = 2^page-cluster pages). */
  pageCluster: number;
  swappiness: number;
}

/**
 * Makes zram0 a swap device of `bytes` (reusing it when it is already swap). Throws when zram0 is
 * initialized for something else.
 */
export function setupSwap(bytes: number): SwapSetup {
  const read = (f: string) => readFileSync(f, 'utf8').trim();
  const comp = /\[(\S+)\]/.exec(read(path.join(ZRAM, 'comp_algorithm')))?.[1] ?? 'unknown';
  const info = { device: ZRAM_DEV, compAlgorithm: comp, pageCluster: Number(read('/proc/sys/vm/page-cluster')), swappiness: Number(read('/proc/sys/vm/swappiness')) };
  if (zramInSwaps()) return { owned: false, disksizeBytes: Number(read(path.join(ZRAM, 'disksize'))), ...info };
  if (Number(read(path.join(ZRAM, 'disksize'))) !== 0) {
    throw new Error(`${ZRAM_DEV} is initialized but not swap — in use by something else; reset it (echo 1 > ${ZRAM}/reset) if it is free`);
  }
  writeFileSync(path.join(ZRAM, 'disksize'), String(bytes));
  try {
    run('mkswap', [ZRAM_DEV]);
    run('swapon', [ZRAM_DEV]);
  } catch (err) {
    writeFileSync(path.join(ZRAM, 'reset'), '1');
    throw err;
  }
  return { owned: true, disksizeBytes: bytes, ...info };
}

/** Undoes `setupSwap` when it owned the device: swapoff and reset zram0. Never throws. */
export function teardownSwap(setup: SwapSetup | null): string | null {
  if (!setup?.owned) return null;
  try {
    if (zramInSwaps()) run('swapoff', [ZRAM_DEV]);
    writeFileSync(path.join(ZRAM, 'reset'), '1');
    return null;
  } catch (err) {
    return `cleanup failed, run \`swapoff ${ZRAM_DEV}; echo 1 > ${ZRAM}/reset\` by hand: ${(err as Error).message}`;
  }
}

export interface CappedRun {
  status: 'ok' | 'oom-killed' | 'timeout' | 'error';
  /** Program stdout's first line split on spaces (checksum, elapsed ns). */
  checksum: string | null;
  /** Elapsed time the program measured itself, ns (null unless ok). */
  ns: number | null;
  /** Wall time of the whole process, ns. */
  wallNs: number;
  /** Peak memory the cgroup charged, bytes (v1 max_usage_in_bytes / v2 memory.peak), or null. */
  peakBytes: number | null;
  /** Major faults in the cgroup (memory.stat pgmajfault), or null. */
  majorFaults: number | null;
  message: string | null;
}

let cgroupSeq = 0;

/**
 * Runs `argv` in a fresh memory cgroup capped at `limitBytes` (null = no cap), kills it after
 * `timeoutMs`, and removes the cgroup afterwards.
 */
export async function runCapped(cg: CgroupFlavor, argv: string[], limitBytes: number | null, timeoutMs: number): Promise<CappedRun> {
  const dir = path.join(cg.parent, `farmem-bench-${process.pid}-${cgroupSeq++}`);
  mkdirSync(dir);
  try {
    if (limitBytes !== null) {
      if (cg.version === 1) {
        writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
      } else {
        writeFileSync(path.join(dir, 'memory.max'), String(limitBytes));
        if (existsSync(path.join(dir, 'memory.swap.max'))) writeFileSync(path.join(dir, 'memory.swap.max'), 'max');
      }
    }
    const procs = path.join(dir, 'cgroup.procs');
    const t0 = process.hrtime.bigint();
    // The shell moves itself into the cgroup, then execs the program: same pid, so kill() hits it.
    const child = spawn('sh', ['-c', `echo $$ > '${procs}' && exec "$0" "$@"`, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { if (out.length < 4096) out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (c, s) => resolve({ code: c, signal: s }));
      child.on('error', () => resolve({ code: -1, signal: null }));
    });
    clearTimeout(timer);
    const wallNs = Number(process.hrtime.bigint() - t0);
    const stat = readStat(cg, dir);
    const oomKills = readOomKills(cg, dir);
    const fields = out.trim().split(/\s+/);
    const base = { wallNs, peakBytes: stat.peak, majorFaults: stat.majorFaults };
    if (timedOut) return { status: 'timeout', checksum: null, ns: null, message: `killed after ${timeoutMs} ms`, ...base };
    if (code === 0 && fields.length >= 2) return { status: 'ok', checksum: fields[0]!, ns: Number(fields[1]), message: null, ...base };
    if (signal === 'SIGKILL' || oomKills > 0) return { status: 'oom-killed', checksum: null, ns: null, message: 'killed by the cgroup OOM killer', ...base };
    return { status: 'error', checksum: null, ns: null, message: `exit ${code ?? signal}: ${err.trim().slice(0, 200)}`, ...base };
  } finally {
    removeCgroup(dir);
  }
}

function readStat(cg: CgroupFlavor, dir: string): { peak: number | null; majorFaults: number | null } {
  const num = (f: string) => {
    try { return Number(readFileSync(path.join(dir, f), 'utf8').trim()); } catch { return null; }
  };
  let majorFaults: number | null = null;
  try {
    const stat = readFileSync(path.join(dir, 'memory.stat'), 'utf8');
    const m = /^(?:total_)?pgmajfault (\d+)$/m.exec(stat);
    majorFaults = m ? Number(m[1]) : null;
  } catch { /* not available */ }
  return { peak: cg.version === 1 ? num('memory.max_usage_in_bytes') : num('memory.peak'), majorFaults };
}

function readOomKills(cg: CgroupFlavor, dir: string): number {
  try {
    const text = readFileSync(path.join(dir, cg.version === 1 ? 'memory.oom_control' : 'memory.events'), 'utf8');
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Removes an empty cgroup, retrying while the kernel finishes reaping the exited process. */
function removeCgroup(dir: string): void {
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

/** Builds `src` with gcc -O2 into `outFile`. */
export function buildNative(src: string, outFile: string): void {
  run('gcc', ['-O2', '-o', outFile, src]);
}

const PAGE_CLUSTER = '/proc/sys/vm/page-cluster';

/** Reads `vm.page-cluster` (swap readahead of 2^n pages). */
export function getPageCluster(): number {
  return Number(readFileSync(PAGE_CLUSTER, 'utf8').trim());
}

/** Sets `vm.page-cluster`; returns the previous value so the caller can restore it. */
export function setPageCluster(n: number): number {
  const prev = getPageCluster();
  writeFileSync(PAGE_CLUSTER, String(n));
  return prev;
}
