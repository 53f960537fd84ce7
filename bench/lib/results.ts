/**
 * @fileoverview The result file every suite writes, `<out>/<suite>.json`, its schema, a validator
 * and the plain-text table printed to stdout. The schema is versioned (`schema`) and documented in
 * bench/README.md; bump `RESULT_SCHEMA` when a field changes meaning.
 *
 * ```
 * {
 *   "schema": "farmem-bench/1",
 *   "suite": "overhead",
 *   "status": "ok" | "skipped" | "failed",
 *   "reason": null | "why it was skipped or failed",
 *   "env": { node, v8, platform, arch, cpu, cores, memoryBytes, kernel, date, gitCommit, gitDirty, v8Flags },
 *   "config": { "quick": true, ...suite-specific knobs },
 *   "baseline": "what every ratio in rows is relative to (always measured in this run)",
 *   "columns": [ { "key": "ratio", "title": "Ratio", "unit": "x" }, ... ],
 *   "rows": [ { "workload": "seqscan", "ratio": 1.21, ... }, ... ],
 *   "summary": { "geomeanRatio": 1.18, ... },
 *   "charts": [ "overhead.svg", ... ],
 *   "warnings": [ "..." ],
 *   "durationMs": 1234
 * }
 * ```
 * Row values are numbers, strings, booleans or null (null = not measured, e.g. a timed-out run).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EnvInfo } from './env.js';

export const RESULT_SCHEMA = 'farmem-bench/1';

export type Cell = number | string | boolean | null;
export type Row = Record<string, Cell>;

export interface Column {
  /** Key of the value in each row. */
  key: string;
  /** Header for tables. */
  title: string;
  /** Unit shown next to the header: `ms`, `x`, `%`, `B`, ... */
  unit?: string;
  /** Digits after the decimal point in the table (default: 2 for fractional numbers). */
  digits?: number;
}

export type ResultStatus = 'ok' | 'skipped' | 'failed';

export interface BenchResult {
  schema: typeof RESULT_SCHEMA;
  suite: string;
  status: ResultStatus;
  reason: string | null;
  env: EnvInfo;
  config: Record<string, unknown>;
  baseline: string;
  columns: Column[];
  rows: Row[];
  summary: Record<string, Cell>;
  charts: string[];
  warnings: string[];
  durationMs: number;
}

const ENV_KEYS: ReadonlyArray<[keyof EnvInfo, string]> = [
  ['node', 'string'], ['v8', 'string'], ['platform', 'string'], ['arch', 'string'], ['cpu', 'string'],
  ['cores', 'number'], ['memoryBytes', 'number'], ['kernel', 'string'], ['date', 'string'],
];

function isCell(v: unknown): v is Cell {
  return v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Checks that `value` is a well-formed BenchResult. Returns the list of problems, each naming the
 * field (`rows[3].ratio: expected a finite number, string, boolean or null`); empty when valid.
 */
export function validateResult(value: unknown): string[] {
  const errors: string[] = [];
  const obj = value as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return ['result: expected an object'];
  if (obj.schema !== RESULT_SCHEMA) errors.push(`schema: expected "${RESULT_SCHEMA}", got ${JSON.stringify(obj.schema)}`);
  if (typeof obj.suite !== 'string' || !/^[a-z][a-z0-9-]*$/.test(obj.suite)) errors.push('suite: expected a lower-case name');
  if (!['ok', 'skipped', 'failed'].includes(obj.status as string)) errors.push('status: expected "ok", "skipped" or "failed"');
  if (obj.status !== 'ok' && (typeof obj.reason !== 'string' || obj.reason.length === 0)) errors.push('reason: a skipped or failed suite must say why');
  if (obj.reason !== null && typeof obj.reason !== 'string') errors.push('reason: expected a string or null');
  const env = obj.env as Record<string, unknown> | undefined;
  if (typeof env !== 'object' || env === null) {
    errors.push('env: expected an object');
  } else {
    for (const [key, type] of ENV_KEYS) {
      if (typeof env[key] !== type) errors.push(`env.${key}: expected a ${type}`);
    }
    if (typeof env.date === 'string' && Number.isNaN(Date.parse(env.date))) errors.push('env.date: expected an ISO date');
    if (!Array.isArray(env.v8Flags)) errors.push('env.v8Flags: expected an array');
  }
  if (typeof obj.config !== 'object' || obj.config === null || typeof (obj.config as Record<string, unknown>).quick !== 'boolean') {
    errors.push('config: expected an object with a boolean "quick"');
  }
  if (typeof obj.baseline !== 'string') errors.push('baseline: expected a string');
  const keys = new Set<string>();
  if (!Array.isArray(obj.columns)) {
    errors.push('columns: expected an array');
  } else {
    obj.columns.forEach((c: unknown, i) => {
      const col = c as Record<string, unknown>;
      if (typeof col?.key !== 'string' || typeof col.title !== 'string') errors.push(`columns[${i}]: expected { key, title }`);
      else keys.add(col.key);
      if (col?.unit !== undefined && typeof col.unit !== 'string') errors.push(`columns[${i}].unit: expected a string`);
    });
  }
  if (!Array.isArray(obj.rows)) {
    errors.push('rows: expected an array');
  } else {
    obj.rows.forEach((r: unknown, i) => {
      if (typeof r !== 'object' || r === null || Array.isArray(r)) { errors.push(`rows[${i}]: expected an object`); return; }
      for (const [k, v] of Object.entries(r)) {
        if (!isCell(v)) errors.push(`rows[${i}].${k}: expected a finite number, string, boolean or null`);
      }
      for (const k of keys) if (!(k in r)) errors.push(`rows[${i}]: missing column "${k}"`);
    });
    if (obj.status === 'ok' && obj.rows.length === 0) errors.push('rows: an ok suite must have at least one row');
  }
  if (typeof obj.summary !== 'object' || obj.summary === null || Array.isArray(obj.summary)) {
    errors.push('summary: expected an object');
  } else {
    for (const [k, v] of Object.entries(obj.summary)) if (!isCell(v)) errors.push(`summary.${k}: expected a cell value`);
  }
  if (!Array.isArray(obj.charts) || !obj.charts.every((c) => typeof c === 'string' && c.endsWith('.svg'))) {
    errors.push('charts: expected an array of .svg file names');
  }
  if (!Array.isArray(obj.warnings) || !obj.warnings.every((w) => typeof w === 'string')) errors.push('warnings: expected an array of strings');
  if (typeof obj.durationMs !== 'number' || !(obj.durationMs >= 0)) errors.push('durationMs: expected a non-negative number');
  return errors;
}

/** Writes `<outDir>/<suite>.json` (pretty, one trailing newline) and returns its path. */
export async function writeResult(outDir: string, result: BenchResult): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const file = path.join(outDir, `${result.suite}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

function formatCell(v: Cell | undefined, col: Column): string {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') {
    if (Number.isInteger(v) && col.digits === undefined) return String(v);
    return v.toFixed(col.digits ?? 2);
  }
  return String(v);
}

/** A fixed-width text table of `rows` under `columns` (numbers right-aligned). */
export function formatTable(columns: readonly Column[], rows: readonly Row[]): string {
  const headers = columns.map((c) => (c.unit ? `${c.title} (${c.unit})` : c.title));
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c.key], c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]!.length)));
  const numeric = columns.map((c) => rows.some((r) => typeof r[c.key] === 'number'));
  const line = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}
