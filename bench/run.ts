/**
 * @fileoverview The bench runner behind `farmem bench`: runs the chosen suites one after another,
 * renders their charts, validates and writes `<out>/<suite>.json` + SVGs, and prints a summary
 * table per suite. A suite that throws is recorded as `failed` (with the error) and the others
 * still run.
 */
import path from 'node:path';
import v8 from 'node:v8';
import { OptionError } from '../host/errors.js';
import { collectEnv, describeEnv } from './lib/env.js';
import { writeChart } from './lib/charts.js';
import { createProgress } from './lib/progress.js';
import { formatTable, RESULT_SCHEMA, validateResult, writeResult, type BenchResult } from './lib/results.js';
import { skipped, type SuiteContext, type SuiteOutput } from './lib/suite.js';
import { RuntimeUnavailableError } from './lib/farmem.js';
import { SUITES } from './suites/index.js';

export interface BenchOptions {
  /** Suite names; empty = all. */
  suites?: readonly string[];
  quick?: boolean;
  /** Output directory (default `bench-results`). */
  outDir?: string;
  /** Machine output: progress bars off, the results array printed as JSON on stdout. */
  json?: boolean;
  /** Keep V8's baseline compiler (default: `--no-liftoff`, so short runs are not timed in Liftoff). */
  liftoff?: boolean;
  /** Progress bars (default: on when stderr is a TTY and not `json`). */
  progress?: boolean;
  /** Per-suite knob overrides, e.g. `{ sizeBytes: 1 << 20, reps: 1 }` (tests, experiments). */
  overrides?: Record<string, unknown>;
  /** Where tables and messages go (default process.stdout / process.stderr). */
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/** Where results go unless --out says otherwise (the CLI's default matches). */
export const DEFAULT_OUT_DIR = 'bench-results';

/** Runs the suites and returns their results (also written to disk). */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult[]> {
  const names = options.suites && options.suites.length > 0 ? options.suites : SUITES.map((s) => s.name);
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length > 0) {
    throw new OptionError(`unknown bench suite "${unknown[0]}"; choose from: ${SUITES.map((s) => s.name).join(', ')}`);
  }
  const outDir = path.resolve(options.outDir ?? DEFAULT_OUT_DIR);
  const out = options.out ?? ((t: string) => process.stdout.write(t));
  const err = options.err ?? ((t: string) => process.stderr.write(t));
  const v8Flags: string[] = [];
  if (!options.liftoff) {
    // Compile wasm with the optimizing tier from the start, for the original and the instrumented
    // module alike; affects modules compiled from now on in this process.
    v8.setFlagsFromString('--no-liftoff');
    v8Flags.push('--no-liftoff');
  }
  const env = collectEnv(v8Flags);
  const progress = createProgress({ enabled: options.progress ?? !options.json });
  const results: BenchResult[] = [];
  if (!options.json) err(`farmem bench${options.quick ? ' --quick' : ''}: ${names.join(', ')} → ${outDir}\n${describeEnv(env)}\n`);
  for (const name of names) {
    const suite = SUITES.find((s) => s.name === name)!;
    const ctx: SuiteContext = {
      quick: options.quick ?? false,
      outDir,
      env,
      progress,
      log: (line) => progress.log(line),
      overrides: options.overrides ?? {},
      subtitle: describeEnv(env),
    };
    const t0 = performance.now();
    let output: SuiteOutput;
    let failure: string | null = null;
    try {
      output = await suite.run(ctx);
    } catch (e) {
      progress.stop();
      if (e instanceof RuntimeUnavailableError) {
        // The runtime or the workloads are not built: every suite that needs them skips, the same way.
        output = skipped(e.message, { quick: ctx.quick });
      } else {
        failure = (e as Error)?.message ?? String(e);
        if (process.env.FARMEM_DEBUG) err(`${(e as Error)?.stack}\n`);
        output = { status: 'skipped', config: { quick: ctx.quick }, baseline: 'none (failed)', columns: [], rows: [] };
      }
    }
    const charts: string[] = [];
    for (const c of output.charts ?? []) {
      await writeChart(outDir, c.file, c.spec);
      charts.push(c.file);
    }
    const result: BenchResult = {
      schema: RESULT_SCHEMA,
      suite: suite.name,
      status: failure ? 'failed' : output.status,
      reason: failure ?? output.reason ?? null,
      env,
      config: { ...output.config, quick: ctx.quick },
      baseline: output.baseline,
      columns: output.columns,
      rows: output.rows,
      summary: output.summary ?? {},
      charts,
      warnings: output.warnings ?? [],
      durationMs: Math.round(performance.now() - t0),
    };
    const problems = validateResult(result);
    if (problems.length > 0) result.warnings.push(...problems.map((p) => `schema: ${p}`));
    const file = await writeResult(outDir, result);
    results.push(result);
    if (!options.json) out(report(result, file));
  }
  if (options.json) out(JSON.stringify(results, null, 2) + '\n');
  return results;
}

function report(r: BenchResult, file: string): string {
  const lines = [`\n== ${r.suite} (${(r.durationMs / 1000).toFixed(1)} s) ==`];
  if (r.status !== 'ok') {
    lines.push(`${r.status}: ${r.reason}`);
  } else {
    lines.push(`baseline: ${r.baseline}`, formatTable(r.columns, r.rows));
    const summary = Object.entries(r.summary).filter(([, v]) => v !== null);
    if (summary.length > 0) lines.push('summary: ' + summary.map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(3) : v}`).join('  '));
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(`wrote ${file}${r.charts.length ? ` and ${r.charts.join(', ')}` : ''}`);
  return lines.join('\n') + '\n';
}
