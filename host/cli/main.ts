#!/usr/bin/env node
/**
 * @fileoverview The `farmem` command: a thin dispatcher. Each subcommand lives in `cmd/<name>.ts`
 * and registers itself on the commander program; `action()` wraps every handler so that any
 * FarmemError prints one line, `(farmem <cmd>) <message>`, and exits 1 without a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { commands } from './commands.js';

const program = new Command('farmem')
  .description('Run unmodified WebAssembly programs with most of their memory on memory servers.')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // commander has already printed its own message (unknown option, missing argument, --help).
  if (err instanceof CommanderError) process.exit(err.exitCode);
  throw err;
}
