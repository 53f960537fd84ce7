/**
 * @fileoverview The repository's root, from the URL of a module one folder below bench/: run from
 * dist/ (dist/bench/<folder>/x.js) or from source in tests (bench/<folder>/x.ts). Servers and
 * workers a bench spawns run from dist/ below it.
 */
import { fileURLToPath } from 'node:url';

export function repoRoot(moduleUrl: string): string {
  return fileURLToPath(new URL(moduleUrl.endsWith('.ts') ? '../..' : '../../..', moduleUrl));
}
