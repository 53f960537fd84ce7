/**
 * @fileoverview Flag parsing shared by subcommands: page size, local memory, module files,
 * repeated `--env`/`--dir` flags. Every message names the flag and the bad value.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { FarmemError } from '../errors.js';
import { checkPageSize } from '../layout.js';
import { OPTIMIZATIONS, OPTIMIZATION_NAMES, type Optimizations } from '../instrument/optimizations.js';
import { parseLocal, parseSize, type LocalMemory } from './sizes.js';

export function parsePageSize(text: string): number {
  const bytes = parseSize(text, '--page-size');
  checkPageSize(bytes, '--page-size');
  return bytes;
}

export function parseLocalFlag(text: string): { fraction: number } | { bytes: number } {
  const local: LocalMemory = parseLocal(text, '--local');
  return 'fraction' in local ? { fraction: local.fraction } : { bytes: local.bytes };
}

export async function readModule(file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new FarmemError('FM_ERR_READ', `cannot read module "${file}": ${why}`);
  }
}

/** Collects a repeatable flag's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'farmem');
}

/** Adds `--no-<optimization>` for every instrumenter optimization (one table: optimizations.ts). */
export function optimizationFlags<T extends { option(flags: string, description: string): T }>(command: T): T {
  for (const name of OPTIMIZATION_NAMES) command.option(`--no-${name}`, `instrumenter: switch off ${OPTIMIZATIONS[name]}`);
  return command;
}

/** The `optimize` option from parsed `--no-<optimization>` flags (commander sets `flags[name] = false`). */
export function optimizationsFromFlags(flags: Record<string, unknown>): Optimizations {
  return Object.fromEntries(OPTIMIZATION_NAMES.map((n) => [n, flags[n] !== false])) as Record<keyof Optimizations, boolean>;
}
