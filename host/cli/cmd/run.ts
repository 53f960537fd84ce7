/**
 * @fileoverview `farmem run`: runs a module on far memory. A WASI command (`_start`) runs with its
 * arguments after `--` and exits with its exit code; `--invoke NAME ARGS...` calls one export of any
 * module and prints the result. Stats go to stderr (text or JSON) so stdout stays the program's.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { OptionError } from '../../errors.js';
import { TraceWriter } from '../../trace/index.js';
import { Wasi } from '../../wasi/index.js';
import { instantiate, type FarmemInstance, type FarmemOptions } from '../../runtime/instance.js';
import { hostMemoryImport, wasiThreadImports, type WasiThreadOptions } from '../../runtime/wasi-threads.js';
import type { RuntimeStats } from '../../stats/counters.js';
import { storeKindOf } from '../../store/registry.js';
import { isServerUrl } from '../../store/remote/url.js';
import { action } from '../action.js';
import { collect, defaultCacheDir, optimizationFlags, optimizationsFromFlags, parseLocalFlag, parsePageSize, readModule } from '../options.js';
import { progressBar } from '../progress.js';
import { formatBytes } from '../sizes.js';

interface RunFlags {
  invoke?: string;
  local: string;
  pageSize: string;
  prefetch: string;
  stats: string;
  cache: boolean;
  cacheDir?: string;
  store: string;
  token?: string;
  replication: string;
  namespace?: string;
  keep: boolean;
  timeout: string;
  env: string[];
  dir: string[];
  trace?: string;
  latency: boolean;
}

export function registerRun(program: Command): void {
  optimizationFlags(program
    .command('run')
    .description('Run a WebAssembly module with its memory on far memory.')
    .argument('<module>', '.wasm file (original, or produced by farmem instrument)')
    .argument('[args...]', 'arguments: for --invoke, the export\'s parameters; for a WASI program, its argv (after --)')
    .option('--invoke <name>', 'call this export instead of running a WASI _start')
    .option('--local <size|pct>', 'local memory: a fraction of the guest memory (25%) or a size (64MiB)', '100%')
    .option('--page-size <bytes>', 'page size: a power of two from 256 to 64KiB', '4096')
    .option('--prefetch <policy>', 'prefetch policy: none, readahead, stride, leap', 'none')
    .option('--store <where>', 'where evicted pages live: embedded; memory servers ws://host:port[,ws://...] (tcp://host:port for a server\'s --tcp-port); '
      + 'Redis redis://[user:pass@]host:port[/db] (rediss:// for TLS); a Redis Cluster redis+cluster://host:port,host:port,...', 'embedded')
    .option('--token <secret>', 'the memory servers\' token (or FARMEM_TOKEN)')
    .option('--replication <n>', 'copies of every page on distinct servers', '1')
    .option('--namespace <name>', 'prefix of this run\'s pages on the servers or in Redis (default: a random one)')
    .option('--keep', 'leave the run\'s pages on the servers or in Redis at the end, to inspect them (STATS; Redis keys {NAMESPACE:chunk}:page)', false)
    .option('--timeout <ms>', 'deadline of each request to a memory server or Redis, reconnects included', '5000')
    .option('--stats <format>', 'stats on stderr after the run: text, json or none', 'text')
    .option('--env <K=V>', 'environment variable for a WASI program (repeatable)', collect, [])
    .option('--dir <host[:guest]>', 'preopen a host directory for a WASI program (repeatable)', collect, [])
    .option('--latency', 'record per-stage fault latency histograms (shown in the stats)', false)
    .option('--trace <file>', 'record every fault (page, kind, time) to a trace file for farmem trace')
    .option('--cache-dir <dir>', 'where instrumented modules are cached (default ~/.cache/farmem)')
    .option('--no-cache', 'always instrument, never read or write the cache'))
    .addHelpText('after', `
Examples:
  farmem run build/assembly/seqscan.wasm --invoke run 16777216 1 --local 25%
  farmem run prog.wasm --local 64MiB --prefetch leap --dir . -- input.txt
  farmem run prog.wasm --stats json 2> stats.json
  farmem run prog.wasm --local 10% --store redis://127.0.0.1:6379 -- input.txt
  farmem run mod.wasm --invoke run 1 --store redis+cluster://redis-a:7000,redis-b:7000 --namespace job7 --keep`)
    .action(action('run', async (file: string, args: string[], flags: RunFlags) => {
      const pageSize = parsePageSize(flags.pageSize);
      const local = parseLocalFlag(flags.local);
      if (!['text', 'json', 'none'].includes(flags.stats)) throw new OptionError(`--stats must be text, json or none, got "${flags.stats}"`);
      const bytes = await readModule(file);
      const progress = progressBar('instrumenting');
      const options: FarmemOptions = {
        ...parseStore(flags),
        pageSize,
        local,
        prefetch: flags.prefetch,
        latency: flags.latency,
        optimize: optimizationsFromFlags(flags as unknown as Record<string, unknown>),
        cacheDir: flags.cache ? (flags.cacheDir ?? defaultCacheDir()) : false,
        onProgress: (done, total) => progress.update(done, total),
      };
      const trace = flags.trace ? TraceWriter.open(flags.trace, { pageSize }) : null;
      if (trace) options.onFault = (page, kind) => trace.recordNow(page, kind);
      const started = performance.now();
      const wasiOptions = flags.invoke === undefined ? wasiOptionsOf(file, args, flags) : null;
      const wasi = wasiOptions ? new Wasi({ ...wasiOptions, stdin: 0, stdout: 1, stderr: 2 }) : null;
      let fm: FarmemInstance | undefined;
      // wasm32-wasip1-threads programs also import wasi.thread-spawn (wasi-threads).
      const imports = wasi ? { ...hostMemoryImport(bytes), ...wasi.imports(() => fm!.memory!), ...wasiThreadImports(() => fm!, wasiOptions!) } : {};
      fm = await instantiate(bytes, imports, options);
      progress.stop();
      let completed = false;
      try {
        if (wasi) {
          if (typeof fm.exports._start !== 'function') {
            throw new OptionError('the module has no _start export, so it is not a WASI command; call an export with --invoke NAME');
          }
          if (fm.meta.memory64) {
            throw new OptionError('the module is a memory64 WASI command (wasm64-wasi), but farmem\'s WASI layer is preview1 with 32-bit pointers; call an export with --invoke NAME');
          }
          process.exitCode = wasi.start(fm.exports);
        } else {
          const result = invoke(fm, flags.invoke!, args);
          if (result !== undefined) process.stdout.write(`${formatValue(result)}\n`);
        }
        completed = true;
      } finally {
        trace?.close();
        // After a failure the error line is the whole story; stats describe completed runs.
        if (completed) report(fm.stats(), flags.stats, performance.now() - started);
        // After a failure, closing may fail for the same cause: the first error is the one to report.
        if (completed) await fm.close();
        else await fm.close().catch(() => {});
      }
    }));
}

/** A WASI environment from `--env`, `--dir` and the program's arguments. */
function wasiOptionsOf(file: string, args: string[], flags: RunFlags): WasiThreadOptions {
  const env: Record<string, string> = {};
  for (const pair of flags.env) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new OptionError(`--env must be KEY=VALUE, got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const preopens = flags.dir.map((spec) => {
    const colon = spec.indexOf(':');
    const host = colon < 0 ? spec : spec.slice(0, colon);
    const guest = colon < 0 ? spec : spec.slice(colon + 1);
    if (!host || !guest) throw new OptionError(`--dir must be HOST or HOST:GUEST, got "${spec}"`);
    return { host: resolve(host), guest };
  });
  return { args: [file, ...args], env, preopens };
}

/** `--store embedded` (default), a comma-separated list of `ws://`/`tcp://` server URLs, or one Redis URL. */
function parseStore(flags: RunFlags): Pick<FarmemOptions, 'remote' | 'redis'> {
  if (flags.namespace !== undefined && flags.store === 'embedded') throw new OptionError('--namespace needs --store with memory servers or Redis');
  if (flags.keep && flags.store === 'embedded') throw new OptionError('--keep needs --store with memory servers or Redis');
  if (flags.store === 'embedded') return {};
  if (storeKindOf(flags.store) === 'redis') {
    return { redis: { url: flags.store, keep: flags.keep, timeoutMs: parseTimeout(flags.timeout), ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}) } };
  }
  const urls = flags.store.split(',').map((u) => u.trim()).filter(Boolean);
  for (const url of urls) {
    if (!isServerUrl(url)) {
      throw new OptionError(`--store must be "embedded", ws://host:port or tcp://host:port URLs separated by commas, or one redis:// / redis+cluster:// URL, got "${url}"`);
    }
  }
  const token = flags.token ?? process.env.FARMEM_TOKEN;
  if (!token) throw new OptionError('--store with memory servers needs --token (or FARMEM_TOKEN)');
  const replication = Number(flags.replication);
  if (!Number.isInteger(replication) || replication < 1 || replication > urls.length) {
    throw new OptionError(`--replication must be an integer from 1 to the number of servers (${urls.length}), got "${flags.replication}"`);
  }
  return { remote: { urls, token, replication, timeoutMs: parseTimeout(flags.timeout), keep: flags.keep, ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}) } };
}

function parseTimeout(text: string): number {
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < 1 || ms > 3_600_000) throw new OptionError(`--timeout must be a number of milliseconds from 1 to 3600000, got "${text}"`);
  return ms;
}

/** Calls export `name`, converting CLI strings by the export's parameter types. */
function invoke(fm: FarmemInstance, name: string, args: string[]): unknown {
  const fn = fm.exports[name];
  const sig = fm.meta.functions[name];
  if (typeof fn !== 'function' || !sig) {
    const names = Object.keys(fm.meta.functions).join(', ') || '(none)';
    throw new OptionError(`--invoke: the module exports no function "${name}"; exported functions: ${names}`);
  }
  if (args.length !== sig.params.length) {
    throw new OptionError(`--invoke ${name} takes ${sig.params.length} argument(s) (${sig.params.join(', ')}), got ${args.length}`);
  }
  const values = sig.params.map((type, i) => parseValue(args[i]!, type, i));
  return (fn as (...a: unknown[]) => unknown)(...values);
}

function parseValue(text: string, type: string, index: number): number | bigint {
  const bad = () => new OptionError(`--invoke argument ${index + 1} must be ${type}, got "${text}"`);
  switch (type) {
    case 'i32': {
      if (!/^[-+]?(0x[0-9a-f]+|\d+)$/i.test(text)) throw bad();
      const v = Number(text);
      if (v < -(2 ** 31) || v >= 2 ** 32) throw bad();
      return v | 0;
    }
    case 'i64':
      try {
        return BigInt.asIntN(64, BigInt(text));
      } catch {
        throw bad();
      }
    case 'f32':
    case 'f64': {
      const v = Number(text);
      if (text.trim() === '' || (Number.isNaN(v) && text.toLowerCase() !== 'nan')) throw bad();
      return v;
    }
    default:
      throw new OptionError(`--invoke cannot pass a ${type} argument from the command line`);
  }
}

function formatValue(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(' ') : String(value);
}

function report(stats: RuntimeStats, format: string, elapsedMs: number): void {
  if (format === 'none') return;
  if (format === 'json') {
    process.stderr.write(`${JSON.stringify({ ...stats, elapsedMs: Math.round(elapsedMs * 1000) / 1000 })}\n`);
    return;
  }
  const pct = stats.virtualBytes > 0 ? ` (${Math.round((100 * stats.localBytes) / stats.virtualBytes)}%)` : '';
  const lines = [
    `farmem: ${(elapsedMs / 1000).toFixed(3)} s, page ${formatBytes(stats.pageSize)}, local ${formatBytes(stats.localBytes)} of ${formatBytes(stats.virtualBytes)}${pct}, store ${stats.store}`,
    `  faults: ${stats.majorFaults} major, ${stats.minorFaults} minor, ${stats.straddles} straddling; evictions ${stats.evictions}, write-backs ${stats.writeBacks}, direct reclaims ${stats.directReclaims}`,
    `  traffic: in ${formatBytes(stats.bytesIn)}, out ${formatBytes(stats.bytesOut)}`,
  ];
  const l = stats.latency;
  if (l && l.major.count + l.minor.count > 0) {
    const us = (ns: number) => (ns / 1000).toFixed(2);
    const stages = Object.entries(l.stages).map(([name, s]) => `${name} ${us(s.p50)}`).join(', ');
    lines.push(`  latency µs: major p50 ${us(l.major.p50)} p99 ${us(l.major.p99)} (${stages}); minor p50 ${us(l.minor.p50)} p99 ${us(l.minor.p99)}`);
  }
  const r = stats.replication;
  if (r && (r.serversLost > 0 || r.reReplicated > 0 || r.underReplicated > 0 || r.slabsMoved > 0)) {
    lines.push(`  replication: ${r.serversLost} server(s) lost, ${r.reReplicated} slabs re-replicated, ${r.slabsMoved} moved off draining servers (${r.pagesCopied} pages copied), ${r.underReplicated} under-replicated now`);
  }
  const p = stats.prefetch;
  if (p.policy !== 'none') {
    lines.push(`  prefetch ${p.policy}: ${p.issued} issued, ${p.hits} hits, ${p.wasted} wasted; accuracy ${(100 * p.accuracy).toFixed(1)}%, coverage ${(100 * p.coverage).toFixed(1)}%`);
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}
