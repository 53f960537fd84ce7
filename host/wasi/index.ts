/**
 * @fileoverview Public surface of farmem's WASI preview1 layer (see `wasi.ts`).
 */

export { Wasi, type WasiImportNamespace } from './wasi.js';
export { WasiExit } from './exit.js';
export { ERRNO, WASI_FUNCTIONS, WASI_MODULE, type WasiFunctionName } from './constants.js';
export { assertImportsProvided, findMissingImports, type ImportObject } from './link.js';
export type { WasiOptions, Preopen, StdinSpec, StdoutSpec } from './options.js';
export type { OutputSink } from './fd-table.js';
