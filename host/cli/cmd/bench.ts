/**
 * @fileoverview `farmem bench [suite...] [--quick] [--out dir] [--json]`: runs the benchmark
 * suites in bench/suites (overhead, sweep, pagesize, faultpath, peer) and writes
 * `<out>/<suite>.json` plus SVG charts. See bench/README.md.
 */
import type { Command } from 'commander';
import { SUITE_DESCRIPTIONS, SUITE_NAMES } from '../../../bench/suites/catalog.js';
import { OptionError } from '../../errors.js';
import { action } from '../action.js';
import { parseSize } from '../sizes.js';

interface BenchFlags {
  quick?: boolean;
  out: string;
  json?: boolean;
  liftoff?: boolean;
  size?: string;
  reps?: string;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`Run benchmark suites and write JSON + SVG charts. Suites: ${SUITE_NAMES.join(', ')} (default: all).`)
    .argument('[suite...]', 'suites to run')
    .option('--quick', 'small sizes and few repetitions (all suites in under 5 minutes on 2 cores)')
    .option('--out <dir>', 'output directory for <suite>.json and the charts', 'bench-results')
    .option('--json', 'print the results as JSON on stdout instead of tables; no progress bars')
    .option('--liftoff', 'keep V8\'s baseline wasm compiler (default: --no-liftoff for steadier times)')
    .option('--size <size>', 'guest data size for every suite, e.g. 16MiB (default: per suite, smaller with --quick)')
    .option('--reps <n>', 'timed repetitions per configuration (default: per suite)')
    .addHelpText('after', '\nSuites:\n' + SUITE_NAMES.map((name) => `  ${name.padEnd(10)} ${SUITE_DESCRIPTIONS[name]}`).join('\n')
      + '\n\nExamples:\n  farmem bench --quick\n  farmem bench sweep --out results/\n  sudo farmem bench peer   # Linux swap needs root (cgroup, zram)')
    .action(action('bench', async (suites: string[], flags: BenchFlags) => {
      const overrides: Record<string, unknown> = {};
      if (flags.size !== undefined) {
        const bytes = parseSize(flags.size, '--size');
        if (bytes < 65536) throw new OptionError(`--size must be at least 64KiB (the workloads' minimum), got "${flags.size}"`);
        overrides.sizeBytes = bytes;
      }
      if (flags.reps !== undefined) {
        const reps = Number(flags.reps);
        if (!Number.isInteger(reps) || reps < 1 || reps > 1000) throw new OptionError(`--reps must be an integer from 1 to 1000, got "${flags.reps}"`);
        overrides.reps = reps;
      }
      const { runBench } = await import('../../../bench/run.js'); // vega and the runtime load only when benchmarking
      const results = await runBench({ suites, quick: flags.quick, outDir: flags.out, json: flags.json, liftoff: flags.liftoff, overrides });
      if (results.some((r) => r.status === 'failed')) process.exitCode = 1;
    }));
}
