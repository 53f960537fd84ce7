/**
 * @fileoverview `WasiExit`: the one error that crosses the Wasm boundary out of a WASI import.
 * `proc_exit` throws it to unwind the guest's stack; `Wasi.start()` catches it and returns the code.
 * Every other failure inside a WASI import becomes an errno.
 */

export class WasiExit extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`WASI program exited with code ${code}`);
    this.name = 'WasiExit';
    this.code = code;
  }
}
