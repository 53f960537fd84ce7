/**
 * @fileoverview `WasiOptions`: what a WASI command sees (argv, environment, preopened directories,
 * stdio), validated strictly at construction so a typo fails with the option's name.
 */

import { realpathSync, statSync } from 'node:fs';
import { resolve as resolveHostPath } from 'node:path';
import { OptionError } from '../errors.js';
import type { OutputSink } from './fd-table.js';

/** A preopened directory: `host` is the host directory, `guest` the name the program sees. */
export interface Preopen {
  host: string;
  guest: string;
}

/** stdin: a host fd, an object with an `fd` (`process.stdin`), or the whole input as bytes/text. */
export type StdinSpec = number | { fd: number } | Uint8Array | string;
/** stdout/stderr: a host fd, an object with an `fd` (`process.stdout`), a sink, or a callback. */
export type StdoutSpec = number | { fd: number } | OutputSink | ((chunk: Uint8Array) => void);

export interface WasiOptions {
  /** argv, including the program name as `args[0]` (as node:wasi). Default `[]`. */
  args?: readonly string[];
  /** Environment variables. Default `{}` (nothing of the host's leaks in unless passed). */
  env?: Readonly<Record<string, string>>;
  /** `{ '/guest': '/host/path' }` or `[{ host, guest }]`; preopens get fds 3, 4, … in order. */
  preopens?: Readonly<Record<string, string>> | readonly Preopen[];
  /** Default: host fd 0. */
  stdin?: StdinSpec;
  /** Default: host fd 1. */
  stdout?: StdoutSpec;
  /** Default: host fd 2. */
  stderr?: StdoutSpec;
  /** `true` (default): `start()` returns the exit code. `false`: `proc_exit` ends the host process. */
  returnOnExit?: boolean;
}

/** Options after validation: preopen hosts are realpaths of existing directories. */
export interface ResolvedWasiOptions {
  args: string[];
  env: [string, string][];
  preopens: Preopen[];
  stdin: StdinSpec | undefined;
  stdout: StdoutSpec | undefined;
  stderr: StdoutSpec | undefined;
  returnOnExit: boolean;
}

const KNOWN = new Set(['args', 'env', 'preopens', 'stdin', 'stdout', 'stderr', 'returnOnExit']);

function isFdObject(v: unknown): v is { fd: number } {
  return typeof v === 'object' && v !== null && typeof (v as { fd?: unknown }).fd === 'number';
}

function checkFd(name: string, fd: number): void {
  if (!Number.isInteger(fd) || fd < 0) throw new OptionError(`"${name}" must be a non-negative integer fd, got ${fd}`);
}

function checkStdin(v: unknown): StdinSpec | undefined {
  if (v === undefined || typeof v === 'string' || v instanceof Uint8Array) return v;
  if (typeof v === 'number') { checkFd('stdin', v); return v; }
  if (isFdObject(v)) { checkFd('stdin.fd', v.fd); return v; }
  throw new OptionError('"stdin" must be an fd, an object with an fd, a Uint8Array or a string');
}

function checkOutput(name: string, v: unknown): StdoutSpec | undefined {
  if (v === undefined || typeof v === 'function') return v as StdoutSpec | undefined;
  if (typeof v === 'number') { checkFd(name, v); return v; }
  if (isFdObject(v)) { checkFd(`${name}.fd`, v.fd); return v; }
  if (typeof v === 'object' && v !== null && typeof (v as OutputSink).write === 'function') return v as OutputSink;
  throw new OptionError(`"${name}" must be an fd, an object with an fd or a write() method, or a function`);
}

function checkPreopen(guest: unknown, host: unknown): Preopen {
  if (typeof guest !== 'string' || guest.length === 0) {
    throw new OptionError(`preopen guest path must be a non-empty string, got ${JSON.stringify(guest)}`);
  }
  if (typeof host !== 'string' || host.length === 0) {
    throw new OptionError(`preopen "${guest}": host path must be a non-empty string`);
  }
  let real: string;
  try {
    real = realpathSync(resolveHostPath(host));
  } catch (e) {
    throw new OptionError(`preopen "${guest}": host directory "${host}" does not exist (${(e as Error).message})`);
  }
  if (!statSync(real).isDirectory()) throw new OptionError(`preopen "${guest}": "${host}" is not a directory`);
  return { guest, host: real };
}

export function resolveWasiOptions(options: WasiOptions): ResolvedWasiOptions {
  if (typeof options !== 'object' || options === null) throw new OptionError('Wasi options must be an object');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new OptionError(`Invalid option in new Wasi(): "${key}"`);
  }
  const args = options.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new OptionError('"args" must be an array of strings');
  }
  const envObj = options.env ?? {};
  if (typeof envObj !== 'object' || envObj === null || Array.isArray(envObj)) {
    throw new OptionError('"env" must be an object of strings');
  }
  const env: [string, string][] = [];
  for (const [k, v] of Object.entries(envObj)) {
    if (typeof v !== 'string') throw new OptionError(`"env.${k}" must be a string`);
    if (k.includes('=') || k.length === 0) throw new OptionError(`"env" key ${JSON.stringify(k)} must be non-empty and contain no "="`);
    env.push([k, v]);
  }
  const pre = options.preopens ?? [];
  const preopens: Preopen[] = Array.isArray(pre)
    ? pre.map((p: Preopen) => checkPreopen(p?.guest, p?.host))
    : Object.entries(pre as Record<string, string>).map(([guest, host]) => checkPreopen(guest, host));
  const returnOnExit = options.returnOnExit ?? true;
  if (typeof returnOnExit !== 'boolean') throw new OptionError('"returnOnExit" must be a boolean');
  return {
    args: [...args],
    env,
    preopens,
    stdin: checkStdin(options.stdin),
    stdout: checkOutput('stdout', options.stdout),
    stderr: checkOutput('stderr', options.stderr),
    returnOnExit,
  };
}
