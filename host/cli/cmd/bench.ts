/**
 * @fileoverview `farmem bench [suite...] [--quick] [--out dir] [--json]`: runs the benchmark
 * suites in bench/suites (overhead, sweep, pagesize, faultpath, peer) and writes
 * `<out>/<suite>.json` plus SVG charts. See bench/README.md.
 */
import type { Command } from 'commander';
import { runBench, DEFAULT_OUT_DIR } from '../../../bench/run.js';
import { SUITES } from '../../../bench/suites/index.js';
import { action } from '../action.js';

interface BenchFlags {
  quick?: boolean;
  out: string;
  json?: boolean;
  liftoff?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`Run benchmark suites and write JSON + SVG charts. Suites: ${SUITES.map((s) => s.name).join(', ')} (default: all).`)
    .argument('[suite...]', 'suites to run')
    .option('--quick', 'small sizes and few repetitions (all suites in under 5 minutes on 2 cores)')
    .option('--out <dir>', 'output directory for <suite>.json and the charts', DEFAULT_OUT_DIR)
    .option('--json', 'print the results as JSON on stdout instead of tables; no progress bars')
    .option('--liftoff', 'keep V8\'s baseline wasm compiler (default: --no-liftoff for steadier times)')
    .addHelpText('after', '\n' + SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n'))
    .action(action('bench', async (suites: string[], flags: BenchFlags) => {
      const results = await runBench({ suites, quick: flags.quick, outDir: flags.out, json: flags.json, liftoff: flags.liftoff });
      if (results.some((r) => r.status === 'failed')) process.exitCode = 1;
    }));
}
