/**
 * @fileoverview What a bench suite is: a name, a description and `run(ctx)` returning rows, a
 * summary and chart specs. The runner (bench/run.ts) adds the machine info, renders the charts,
 * validates and writes `<out>/<suite>.json`, and prints the table.
 */
import type { ChartSpec } from './charts.js';
import type { EnvInfo } from './env.js';
import type { Progress } from './progress.js';
import type { Cell, Column, Row } from './results.js';

export interface SuiteContext {
  /** Small sizes and few repetitions (the whole `--quick` run stays under 5 minutes on 2 cores). */
  quick: boolean;
  /** Directory the runner writes into (suites that keep extra artefacts put them here). */
  outDir: string;
  env: EnvInfo;
  progress: Progress;
  /** Messages for the user (stderr, or the progress bar's line). */
  log(line: string): void;
  /**
   * Overrides for tests and experiments, applied on top of the suite's quick/full defaults,
   * e.g. `{ sizeBytes: 1 << 20, reps: 1, workloads: ['seqscan'] }`. Unknown keys are ignored.
   */
  overrides: Record<string, unknown>;
  /** Chart subtitle: machine and date. */
  subtitle: string;
}

export interface SuiteOutput {
  status: 'ok' | 'skipped';
  /** Why the suite was skipped (required when skipped). */
  reason?: string;
  config: Record<string, unknown>;
  baseline: string;
  columns: Column[];
  rows: Row[];
  summary?: Record<string, Cell>;
  charts?: Array<{ file: string; spec: ChartSpec }>;
  warnings?: string[];
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}

/** A skipped suite's output. */
export function skipped(reason: string, config: Record<string, unknown>): SuiteOutput {
  return { status: 'skipped', reason, config, baseline: 'none (skipped)', columns: [], rows: [] };
}

/** Reads a typed override, falling back to `def`. */
export function opt<T>(ctx: SuiteContext, key: string, def: T): T {
  const v = ctx.overrides[key];
  return v === undefined ? def : (v as T);
}
