/**
 * @fileoverview The guest's file descriptor table: numbered slots holding `FdEntry`s. An entry is one
 * of three kinds: a stream (stdio: a host fd read/written sequentially, an in-process input buffer or
 * an output sink), a regular file (a host fd with farmem's own offset, since Node has no `lseek`), or
 * a directory (a host fd plus its position below its preopen root, for path resolution).
 */

import { closeSync } from 'node:fs';
import { ERRNO } from './constants.js';

export const KIND_STREAM = 0;
export const KIND_FILE = 1;
export const KIND_DIR = 2;

/** Where a stream's output goes when it is not a host fd. */
export interface OutputSink {
  write(chunk: Uint8Array): unknown;
}

/** Largest number of guest fds open at once (Linux's default soft limit). */
export const MAX_FDS = 1024;

/** A cached directory listing for `fd_readdir`; entry `i` has cookie `i + 1` as its `d_next`. */
export interface DirListing {
  names: Uint8Array[];
  types: Uint8Array;
  inos: BigUint64Array;
}

export class FdEntry {
  kind: number;
  /** Host fd, or -1 for in-process streams. */
  hostFd: number;
  /** Whether closing this entry closes `hostFd` (not for stdio fds the embedder lent us). */
  ownsHostFd = true;
  filetype: number;
  fdflags = 0;
  rightsBase: bigint;
  rightsInheriting: bigint;
  /** Byte offset of a regular file (farmem tracks it; reads and writes are positional). */
  position = 0;
  /** Preopen root (host realpath) of files and directories; '' for streams. */
  root = '';
  /** Components below `root` of a directory. */
  rel: string[] = [];
  /** The guest name of a preopened directory; null otherwise. */
  preopenName: Uint8Array | null = null;
  /** Output of an in-process stream. */
  sink: OutputSink | null = null;
  /** Input of an in-process stream, consumed from `sourcePos`. */
  source: Uint8Array | null = null;
  sourcePos = 0;
  /** Whether `hostFd` is a pipe (its readiness can be asked without blocking; see stdio.ts). */
  fifo = false;
  /** Bytes a readiness check took from the host pipe, served before the next host read. */
  peeked: Uint8Array | null = null;
  listing: DirListing | null = null;

  constructor(kind: number, hostFd: number, filetype: number, rightsBase: bigint, rightsInheriting: bigint) {
    this.kind = kind;
    this.hostFd = hostFd;
    this.filetype = filetype;
    this.rightsBase = rightsBase;
    this.rightsInheriting = rightsInheriting;
  }

  /** Closes the host fd if this entry owns it (stdio fds the embedder lent are left open). */
  closeHost(): void {
    if (this.ownsHostFd && this.hostFd >= 0) closeSync(this.hostFd);
  }
}

export class FdTable {
  private readonly slots: (FdEntry | undefined)[] = [];

  get(fd: number): FdEntry | undefined {
    return this.slots[fd];
  }

  /** Places `entry` at `fd` (used for stdio and preopens at construction). */
  set(fd: number, entry: FdEntry): void {
    this.slots[fd] = entry;
  }

  /** Puts `entry` in the lowest free slot and returns its number, or -EMFILE. */
  allocate(entry: FdEntry): number {
    for (let fd = 0; fd < MAX_FDS; fd++) {
      if (this.slots[fd] === undefined) {
        this.slots[fd] = entry;
        return fd;
      }
    }
    return -ERRNO.MFILE;
  }

  remove(fd: number): FdEntry | undefined {
    const entry = this.slots[fd];
    this.slots[fd] = undefined;
    return entry;
  }

  /** Every open entry with its number. */
  *entries(): IterableIterator<[number, FdEntry]> {
    for (let fd = 0; fd < this.slots.length; fd++) {
      const entry = this.slots[fd];
      if (entry !== undefined) yield [fd, entry];
    }
  }
}
