/**
 * @fileoverview Sandboxed path resolution: turns a guest path relative to a directory fd into a host
 * path that is guaranteed to lie inside that fd's preopened directory, or into an errno.
 *
 * The resolver walks the path one component at a time from the directory's canonical position below
 * its preopen root, reading every symlink itself (always for inner components, for the last one only
 * when the caller follows symlinks):
 *
 *   "a/../b"            → root/b
 *   "../x"              → ENOTCAPABLE   (climbs above the preopen root)
 *   "/etc/passwd"       → ENOTCAPABLE   (WASI paths are relative to a directory fd)
 *   "link" → "../x"     → ENOTCAPABLE   (a relative symlink that climbs out)
 *   "link" → "/etc"     → ENOTCAPABLE   (absolute symlink targets are outside by definition)
 *   "f/x" (f is a file) → ENOTDIR
 *   40 nested links     → ELOOP
 *
 * node:wasi (uvwasi) answers ENOTCAPABLE for these escapes too; wasmtime answers EPERM. Both are
 * "not allowed" and neither touches the host file.
 *
 * Known limit: Node has no `openat2(RESOLVE_BENEATH)`, so the final host call takes the checked path
 * as a string. A host process that swaps a checked directory for a symlink between the check and the
 * call could redirect it; the guest itself cannot, because it runs on this thread.
 */

import { lstatSync, readlinkSync } from 'node:fs';
import { ERRNO, errnoFromNodeCode } from './constants.js';

/** Where a directory fd sits: its preopen root (a host realpath) and the components below it. */
export interface DirPosition {
  readonly root: string;
  readonly rel: readonly string[];
}

/** Linux's limit on symlinks followed in one lookup. */
export const MAX_SYMLINKS = 40;
/** Longest guest path accepted, in bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** Host path of `rel` below `root`. */
export function hostPathOf(root: string, rel: readonly string[]): string {
  return rel.length === 0 ? root : `${root}/${rel.join('/')}`;
}

function pushComponents(stack: string[], path: string): void {
  // Pushed in reverse, so `stack.pop()` yields components in path order.
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const c = parts[i]!;
    if (c !== '' && c !== '.') stack.push(c);
  }
}

function codeOf(e: unknown): number {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? errnoFromNodeCode(code) : ERRNO.IO;
}

/**
 * Resolves `path` against `dir`. Returns the components below `dir.root` of the target, or an errno.
 * The target itself need not exist (so `path_open` with CREAT and `mkdir` can use it), but every
 * component before it must be a directory inside the root. With `followFinal`, a final symlink is
 * resolved too; a trailing `/` implies `followFinal` and requires a directory.
 */
export function resolveGuestPath(dir: DirPosition, path: string, followFinal: boolean): string[] | number {
  if (path.length === 0) return ERRNO.NOENT;
  if (path.includes('\0')) return ERRNO.ILSEQ;
  if (path.startsWith('/')) return ERRNO.NOTCAPABLE;
  const trailingSlash = path.endsWith('/');
  const follow = followFinal || trailingSlash;
  const parts = dir.rel.slice();
  const pending: string[] = [];
  pushComponents(pending, path);
  let links = 0;
  let lastWasDir = true;
  while (pending.length > 0) {
    const c = pending.pop()!;
    if (c === '..') {
      if (parts.length === 0) return ERRNO.NOTCAPABLE;
      parts.pop();
      lastWasDir = true;
      continue;
    }
    parts.push(c);
    const last = pending.length === 0;
    if (last && !follow) break;
    const host = hostPathOf(dir.root, parts);
    let st;
    try {
      st = lstatSync(host, { throwIfNoEntry: false });
    } catch (e) {
      return codeOf(e);
    }
    if (st === undefined) {
      if (last) { lastWasDir = true; break; } // a new name: mkdir, or open with CREAT
      return ERRNO.NOENT;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) return ERRNO.LOOP;
      let target: string;
      try {
        target = readlinkSync(host);
      } catch (e) {
        return codeOf(e);
      }
      if (target.startsWith('/')) return ERRNO.NOTCAPABLE;
      parts.pop();
      pushComponents(pending, target);
      continue;
    }
    lastWasDir = st.isDirectory();
    if (!last && !lastWasDir) return ERRNO.NOTDIR;
  }
  if (trailingSlash && !lastWasDir) return ERRNO.NOTDIR;
  return parts;
}
