/**
 * @fileoverview Numbered instrumenter diagnostics from one table (`diagnostics.json`):
 * `diagnostic('FM1013', 'table.fill', 'main')` → InstrumentError with code `FM1013` and the message
 * `unsupported expression table.fill in function main`.
 */
import { InstrumentError } from '../errors.js';
import table from './diagnostics.json' with { type: 'json' };

const messages: Record<string, string> = table;

export function diagnostic(code: string, ...args: unknown[]): InstrumentError {
  const template = messages[code] ?? code;
  const text = template.replace(/\{(\d+)\}/g, (_, i: string) => String(args[Number(i)]));
  return new InstrumentError(code, `${code}: ${text}`);
}
