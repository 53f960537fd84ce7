/**
 * @fileoverview Module hooks for running test helpers (TypeScript, type-stripped) on Node 24: an
 * import of farmem's sources (`<root>/host/*.js`, which exist only as .ts) resolves to the built
 * `<root>/dist/host/*.js`, so the Node 24 side runs exactly what `npm run build` produced.
 * Registered by `--import ./test/support/node24-register.mjs`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join, relative, sep } from 'node:path';

const root = fileURLToPath(new URL('../../', import.meta.url));

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context).catch((err) => {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !context.parentURL) throw err;
    return { url: new URL(specifier, context.parentURL).href, shortCircuit: true };
  });
  if (!resolved.url.startsWith('file:')) return resolved;
  const path = fileURLToPath(resolved.url);
  const rel = relative(root, path);
  if (rel.startsWith(`host${sep}`) && rel.endsWith('.js') && !existsSync(path)) {
    return { url: pathToFileURL(join(root, 'dist', rel)).href, shortCircuit: true };
  }
  return resolved;
}
