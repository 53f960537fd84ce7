/**
 * @fileoverview The one wrapper every subcommand handler runs in: expected failures (FarmemError,
 * and errors from the guest such as a trap) become one line on stderr and exit code 1; a
 * FarmemError's code ends the line in brackets (`(farmem run) … [FM_ERR_REDIS_OOM]`) so scripts can
 * tell failures apart. Only a bug in farmem itself shows a stack trace (with FARMEM_DEBUG=1 every
 * error does).
 */
import { FarmemError } from '../errors.js';

export function action<A extends unknown[]>(name: string, handler: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await handler(...args);
    } catch (err) {
      if (process.env.FARMEM_DEBUG) console.error(err);
      const message = err instanceof FarmemError
        ? `${err.message} [${err.code}]`
        : err instanceof WebAssembly.RuntimeError || err instanceof WebAssembly.CompileError || err instanceof WebAssembly.LinkError
        ? err.message
        : `internal error: ${(err as Error)?.stack ?? String(err)}`;
      process.stderr.write(`(farmem ${name}) ${message}\n`);
      process.exitCode = 1;
    }
  };
}
