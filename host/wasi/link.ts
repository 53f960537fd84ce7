/**
 * @fileoverview Import checking, the one copy (WASI commands and `instantiate` both use it): before
 * instantiation, compare what a module imports with what the host provides and report every missing
 * import by name (`wasi_snapshot_preview1.fd_foo`), instead of V8's `WebAssembly.LinkError` which
 * names only the first one by index. An import is provided when looking it up as V8 does
 * (`importObject[module][name]`, prototype chain included) gives something other than `undefined`.
 */

import { LinkError } from '../errors.js';
import { WASI_FUNCTIONS, WASI_MODULE } from './constants.js';

/** An import object as passed to `WebAssembly.instantiate`. */
export type ImportObject = Record<string, Record<string, unknown> | undefined>;

const WASI_NAMES: ReadonlySet<string> = new Set(WASI_FUNCTIONS);

/** Imports of `module` that `importObject` does not provide, in the module's import order. */
export function findMissingImports(
  module: WebAssembly.Module,
  importObject: ImportObject,
): WebAssembly.ModuleImportDescriptor[] {
  return WebAssembly.Module.imports(module).filter((imp) => importObject[imp.module]?.[imp.name] === undefined);
}

function describe(imp: WebAssembly.ModuleImportDescriptor): string {
  const what = `${imp.module}.${imp.name} (${imp.kind})`;
  if (imp.module === WASI_MODULE && !WASI_NAMES.has(imp.name)) {
    return `${what}: not a WASI preview1 function`;
  }
  if (imp.module.startsWith('wasi:') || imp.module === 'wasi_unstable') {
    return `${what}: only WASI preview1 (${WASI_MODULE}) is supported`;
  }
  return what;
}

/**
 * Throws a `LinkError` (`FM_ERR_MISSING_IMPORT`) naming every import the module needs and the host
 * does not provide.
 */
export function assertImportsProvided(module: WebAssembly.Module, importObject: ImportObject): void {
  const missing = findMissingImports(module, importObject);
  if (missing.length === 0) return;
  const shown = missing.slice(0, 10).map(describe);
  if (missing.length > shown.length) shown.push(`… and ${missing.length - shown.length} more`);
  const noun = missing.length === 1 ? 'an import' : `${missing.length} imports`;
  throw new LinkError(
    `module needs ${noun} that farmem does not provide: ${shown.join('; ')}. ` +
      'Pass it in the import object, or rebuild the program without it.',
  );
}
