/**
 * @fileoverview The list of subcommands. Each entry registers one `cmd/<name>.ts` on the program.
 */
import type { Command } from 'commander';
import { registerBench } from './cmd/bench.js';
import { registerInstrument } from './cmd/instrument.js';
import { registerRun } from './cmd/run.js';
import { registerServe } from './cmd/serve.js';
import { registerTrace } from './cmd/trace.js';

export const commands: ReadonlyArray<(program: Command) => void> = [registerRun, registerInstrument, registerServe, registerBench, registerTrace];
