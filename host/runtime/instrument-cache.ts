/**
 * @fileoverview Instrumented modules cached on disk, keyed by a hash of the input bytes, the page
 * size and the instrumenter version, so a second run of a big program starts at once. Writes are
 * atomic (temp file + rename); a corrupt or foreign cache entry is ignored and rewritten.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isInstrumentedBinary } from '../abi.js';
import { ALL_OPTIMIZATIONS, optimizationsKey, type Optimizations } from '../instrument/optimizations.js';

export interface CacheOptions {
  pageSize: number;
  /** Resolved optimizations (default: all on); part of the key. */
  optimize?: Optimizations;
  /** Directory of the cache, or false for none. */
  cacheDir: string | false;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** Reports whether the module came from the cache. */
  onCache?: (hit: boolean, path: string | null) => void;
}

/**
 * The instrumenter's own code (its version constant included) is part of the key, so any change to
 * it misses the cache instead of returning stale output.
 */
let fingerprint: string | null = null;
function instrumenterFingerprint(): string {
  if (fingerprint === null) {
    const dir = fileURLToPath(new URL('../instrument/', import.meta.url));
    const hash = createHash('sha256');
    // Subdirectories too (passes/): a change to a pass must miss the cache as well.
    for (const name of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
      if (/\.(js|ts|json)$/.test(name) && !name.endsWith('.d.ts')) hash.update(name).update(readFileSync(join(dir, name)));
    }
    fingerprint = hash.digest('hex');
  }
  return fingerprint;
}

export function cacheKey(bytes: Uint8Array, pageSize: number, optimize: Optimizations = ALL_OPTIMIZATIONS): string {
  return createHash('sha256').update(instrumenterFingerprint()).update(`:${pageSize}:${optimizationsKey(optimize)}:`).update(bytes).digest('hex').slice(0, 32);
}

/** Instruments `bytes` (or loads the cached result) and compiles it. */
export async function instrumentCached(bytes: Uint8Array, options: CacheOptions): Promise<WebAssembly.Module> {
  if (isInstrumentedBinary(bytes)) return WebAssembly.compile(bytes as BufferSource); // from `farmem instrument`
  const path = options.cacheDir ? join(options.cacheDir, `${cacheKey(bytes, options.pageSize, options.optimize)}.wasm`) : null;
  if (path) {
    const cached = await readFile(path).catch(() => null);
    if (cached) {
      try {
        const module = await WebAssembly.compile(cached);
        options.onCache?.(true, path);
        return module;
      } catch {
        // corrupt entry: fall through and rewrite it
      }
    }
  }
  // binaryen loads only on a cache miss: a cached run starts without it.
  const { instrument } = await import('../instrument/instrument.js');
  const { binary } = instrument(bytes, {
    pageSize: options.pageSize,
    ...(options.optimize ? { optimize: options.optimize } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  if (path && options.cacheDir) {
    await mkdir(options.cacheDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, binary);
    await rename(tmp, path);
  }
  options.onCache?.(false, path);
  return WebAssembly.compile(binary as BufferSource);
}
