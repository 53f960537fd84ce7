/**
 * @fileoverview The farmem trace file format (`.fmt`): a fixed header, an optional UTF-8 note, then
 * one record per fault, each two LEB128 varints. Only this file knows the byte layout.
 *
 *   Header, 64 bytes, little-endian
 *   ┌────────┬──────┬───────────────────────────────────────────────────────────────────┐
 *   │ offset │ size │ field                                                             │
 *   ├────────┼──────┼───────────────────────────────────────────────────────────────────┤
 *   │      0 │    8 │ magic "FMTRACE\0"                                                 │
 *   │      8 │    2 │ version (1)                                                       │
 *   │     10 │    2 │ flags: bit 0 FINISHED = the writer closed the file; count and     │
 *   │        │      │ duration are valid and the records end exactly at end of file     │
 *   │     12 │    4 │ page size in bytes (power of two, 256 … 65536)                     │
 *   │     16 │    8 │ guest memory size in bytes (the virtual maximum; 0 = unknown)      │
 *   │     24 │    8 │ record count (valid when FINISHED)                                │
 *   │     32 │    8 │ duration in ns: first record's time to last record's (FINISHED)   │
 *   │     40 │    4 │ local frames of the recorded run (0 = unknown)                    │
 *   │     44 │    2 │ note length N in bytes (<= 1024)                                  │
 *   │     46 │   18 │ reserved, zero                                                    │
 *   │     64 │    N │ note, UTF-8 (e.g. "prefetch=none local=25%")                      │
 *   └────────┴──────┴───────────────────────────────────────────────────────────────────┘
 *
 *   Record (from 64 + N to the end of the file)
 *   ┌───────────────────────────────────────────────┬──────────────────────────────────┐
 *   │ varint  zigzag(page − previous page) · 8 + k  │ varint  time − previous time (ns) │
 *   └───────────────────────────────────────────────┴──────────────────────────────────┘
 *   k (3 bits) = kind | WRITE:   kind 0 major, 1 minor, 2 prefetch hit, 3 write fault (first
 *   store to a mapped clean page); WRITE (4) marks a major/minor/prefetch-hit fault taken by a
 *   store. k = 7 is invalid. "Previous" page and time start at 0 and at the first record's time.
 *   A sequential fault costs 1 byte for the page and 1–3 bytes for the time (µs-apart faults).
 *   Varints are at most 8 bytes (56 bits); decoded values must be safe integers.
 */
import { TraceError } from '../errors.js';
import { isValidPageSize, MAX_PAGE_SIZE, MIN_PAGE_SIZE } from '../layout.js';

export const TRACE_MAGIC = 'FMTRACE\0';
export const TRACE_VERSION = 1;
export const HEADER_SIZE = 64;
export const FLAG_FINISHED = 1;
/** Longest note; a note says how the trace was recorded, not more. */
export const MAX_NOTE_BYTES = 1024;
/** Longest varint: 8 bytes carry 56 bits, more than any page delta or ns time delta needs. */
export const MAX_VARINT_BYTES = 8;
/** Most bytes one record takes. */
export const MAX_RECORD_BYTES = 2 * MAX_VARINT_BYTES;

/** Fault kinds, numbered as the pager's FaultKind so the runtime can pass its value through. */
export const enum TraceKind {
  Major = 0,
  Minor = 1,
  PrefetchHit = 2,
  WriteFault = 3,
}
/** OR'ed into a Major, Minor or PrefetchHit kind when the faulting access was a store. */
export const TRACE_WRITE = 4;
export const KIND_NAMES = ['major', 'minor', 'prefetch-hit', 'write-fault'] as const;

export interface TraceHeader {
  readonly version: number;
  readonly finished: boolean;
  readonly pageSize: number;
  readonly memoryBytes: number;
  readonly recordCount: number;
  readonly durationNs: number;
  readonly localFrames: number;
  readonly note: string;
  /** Byte offset of the first record. */
  readonly dataOffset: number;
}

export function checkPageSize(pageSize: number, what: string): void {
  if (!isValidPageSize(pageSize)) {
    throw new TraceError(`${what} must be a power of two between ${MIN_PAGE_SIZE} and ${MAX_PAGE_SIZE}, got ${pageSize}`);
  }
}

/** Encodes the header and note. */
export function encodeHeader(h: Omit<TraceHeader, 'version' | 'dataOffset'>): Uint8Array {
  const note = new TextEncoder().encode(h.note);
  if (note.length > MAX_NOTE_BYTES) throw new TraceError(`trace note is ${note.length} bytes; at most ${MAX_NOTE_BYTES} allowed`);
  const bytes = new Uint8Array(HEADER_SIZE + note.length);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 8; i++) bytes[i] = TRACE_MAGIC.charCodeAt(i);
  view.setUint16(8, TRACE_VERSION, true);
  view.setUint16(10, h.finished ? FLAG_FINISHED : 0, true);
  view.setUint32(12, h.pageSize, true);
  view.setBigUint64(16, BigInt(h.memoryBytes), true);
  view.setBigUint64(24, BigInt(h.recordCount), true);
  view.setBigUint64(32, BigInt(Math.max(0, Math.round(h.durationNs))), true);
  view.setUint32(40, h.localFrames, true);
  view.setUint16(44, note.length, true);
  bytes.set(note, HEADER_SIZE);
  return bytes;
}

/** Decodes and validates the header; `source` names the file in error messages. */
export function decodeHeader(bytes: Uint8Array, source: string): TraceHeader {
  if (bytes.length < HEADER_SIZE) {
    throw new TraceError(`${source}: not a farmem trace: ${bytes.length} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  }
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== TRACE_MAGIC.charCodeAt(i)) {
      throw new TraceError(`${source}: not a farmem trace (bad magic; expected a file written by farmem run --trace)`);
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(8, true);
  if (version !== TRACE_VERSION) {
    throw new TraceError(`${source}: trace format version ${version} is not supported (this farmem reads version ${TRACE_VERSION})`);
  }
  const flags = view.getUint16(10, true);
  if (flags & ~FLAG_FINISHED) throw new TraceError(`${source}: unknown header flags 0x${flags.toString(16)}`);
  const pageSize = view.getUint32(12, true);
  checkPageSize(pageSize, `${source}: header page size`);
  const memoryBytes = safe(view.getBigUint64(16, true), source, 'memory size');
  const recordCount = safe(view.getBigUint64(24, true), source, 'record count');
  const durationNs = safe(view.getBigUint64(32, true), source, 'duration');
  const localFrames = view.getUint32(40, true);
  const noteLength = view.getUint16(44, true);
  if (noteLength > MAX_NOTE_BYTES) throw new TraceError(`${source}: note length ${noteLength} exceeds ${MAX_NOTE_BYTES}`);
  if (bytes.length < HEADER_SIZE + noteLength) throw new TraceError(`${source}: file ends inside the header note`);
  if (memoryBytes % pageSize !== 0) {
    throw new TraceError(`${source}: memory size ${memoryBytes} is not a multiple of the page size ${pageSize}`);
  }
  let note: string;
  try {
    note = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(HEADER_SIZE, HEADER_SIZE + noteLength));
  } catch (cause) {
    throw new TraceError(`${source}: header note is not valid UTF-8`, { cause });
  }
  return {
    version, finished: (flags & FLAG_FINISHED) !== 0, pageSize, memoryBytes, recordCount, durationNs, localFrames, note,
    dataOffset: HEADER_SIZE + noteLength,
  };
}

function safe(v: bigint, source: string, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TraceError(`${source}: header ${what} ${v} is out of range`);
  return Number(v);
}

/** zigzag: 0, -1, 1, -2, 2 … → 0, 1, 2, 3, 4 …, for any safe integer. */
export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}
