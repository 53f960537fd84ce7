/**
 * @fileoverview Human-friendly sizes and fractions for flags and options: `64MiB`, `4k`, `8GiB`,
 * `1048576`, and local memory as `25%`, `0.25` or a size. Errors name the flag and the bad value.
 */
import { OptionError } from '../errors.js';

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kb: 1024, kib: 1024,
  m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses `64MiB`, `4k`, `1048576` into bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new OptionError(`${what} must be a size like 4096, 64KiB or 8GiB, got "${text}"`);
  }
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new OptionError(`${what} must be a positive size, got "${text}"`);
  return bytes;
}

/** Local memory: a fraction of the guest's memory (`{ fraction }`) or a byte count (`{ bytes }`). */
export type LocalMemory = { readonly fraction: number } | { readonly bytes: number };

/** Parses `25%`, `0.25` (a fraction) or `256MiB` (bytes). */
export function parseLocal(text: string, what = '--local'): LocalMemory {
  const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
  if (pct) return checkFraction(Number(pct[1]) / 100, text, what);
  if (/^\s*0?\.\d+\s*$/.test(text)) return checkFraction(Number(text), text, what);
  return { bytes: parseSize(text, what) };
}

function checkFraction(fraction: number, text: string, what: string): LocalMemory {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new OptionError(`${what} must be a percentage in (0%, 100%] or a size like 64MiB, got "${text}"`);
  }
  return { fraction };
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}
