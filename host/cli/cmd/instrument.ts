/**
 * @fileoverview `farmem instrument in.wasm -o out.wasm [--page-size N]`: writes the instrumented
 * module, runnable later with `farmem run out.wasm` (no instrumentation at start).
 */
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { action } from '../action.js';
import { optimizationFlags, optimizationsFromFlags, parsePageSize, readModule } from '../options.js';
import { progressBar } from '../progress.js';

export function registerInstrument(program: Command): void {
  optimizationFlags(program
    .command('instrument')
    .description('Rewrite a module so that every memory access goes through farmem\'s page tables.')
    .argument('<module>', 'input .wasm file')
    .requiredOption('-o, --output <file>', 'where to write the instrumented module')
    .option('--page-size <bytes>', 'page size: a power of two from 256 to 64KiB', '4096')
    .option('--no-validate', 'skip binaryen validation of the output (faster on huge modules)'))
    .addHelpText('after', '\nExample:\n  farmem instrument prog.wasm -o prog.fm.wasm --page-size 4096\n  farmem instrument prog.wasm -o prog.nochunk.wasm --no-chunk   # for comparison\n')
    .action(action('instrument', async (file: string, opts: { output: string; pageSize: string; validate: boolean } & Record<string, unknown>) => {
      const pageSize = parsePageSize(opts.pageSize);
      const bytes = await readModule(file);
      const progress = progressBar('instrumenting');
      const started = performance.now();
      const { instrument } = await import('../../instrument/instrument.js');
      const result = instrument(bytes, { pageSize, validate: opts.validate, optimize: optimizationsFromFlags(opts), onProgress: (d, t) => progress.update(d, t) });
      progress.stop();
      await writeFile(opts.output, result.binary);
      const seconds = ((performance.now() - started) / 1000).toFixed(2);
      process.stderr.write(`instrumented ${result.counts.functions} functions, ${result.counts.accesses} memory accesses, ${result.counts.bulk} bulk/size ops in ${seconds}s → ${opts.output} (${result.binary.length} bytes)\n`);
    }));
}

