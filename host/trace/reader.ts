/**
 * @fileoverview Reading traces (layout in format.ts). `TraceReader` walks records one at a time
 * without allocating (its `page`, `kind`, `time` fields hold the current record); `readTrace`
 * decodes a whole file into typed arrays for the replay simulator.
 *
 * Decoding is strict: a bad magic, version, kind, page out of the guest's memory, overlong varint,
 * or a FINISHED trace whose records do not end exactly at the end of the file (or do not match the
 * header's count) throws TraceError naming the file, the record and its byte offset. A trace whose
 * writer never closed (not FINISHED) is read up to its last complete record, and `truncated` says
 * whether a partial record was dropped.
 */
import { readFileSync, statSync } from 'node:fs';
import { TraceError } from '../errors.js';
import { readUleb, ULEB_INCOMPLETE, ULEB_MALFORMED } from '../leb128.js';
import { decodeHeader, MAX_VARINT_BYTES, TRACE_WRITE, type TraceHeader } from './format.js';

/** Largest trace file read at once (Node's own readFile limit is 2 GiB). */
export const MAX_TRACE_BYTES = 2 ** 31 - 1;
const INCOMPLETE = -1;

export class TraceReader {
  readonly header: TraceHeader;
  readonly source: string;
  /** The current record (valid after `next()` returned true). */
  page = 0;
  kind = 0;
  /** ns since the first record. */
  time = 0;
  /** Records read so far. */
  index = 0;
  /** True when the file ended inside a record of an unfinished trace. */
  truncated = false;
  private readonly bytes: Uint8Array;
  /** Byte offset of the next record; the cursor `readUleb` advances. */
  pos: number;
  private readonly maxPage: number;

  constructor(bytes: Uint8Array, source: string) {
    this.bytes = bytes;
    this.source = source;
    this.header = decodeHeader(bytes, source);
    this.pos = this.header.dataOffset;
    this.maxPage = this.header.memoryBytes > 0 ? this.header.memoryBytes / this.header.pageSize - 1 : 0x7fffffff;
    if (this.header.finished && this.header.recordCount > (bytes.length - this.pos) / 2) {
      throw new TraceError(`${source}: header says ${this.header.recordCount} records but the file holds at most ${Math.floor((bytes.length - this.pos) / 2)} (truncated file?)`);
    }
  }

  static open(path: string): TraceReader {
    let bytes: Uint8Array;
    try {
      const size = statSync(path).size;
      if (size > MAX_TRACE_BYTES) throw new TraceError(`${path}: trace is ${size} bytes; at most ${MAX_TRACE_BYTES} can be read`);
      bytes = readFileSync(path);
    } catch (cause) {
      if (cause instanceof TraceError) throw cause;
      throw new TraceError(`cannot read trace ${path}: ${(cause as Error).message}`, { cause });
    }
    return new TraceReader(bytes, path);
  }

  /** Advances to the next record; false at the end of the trace. */
  next(): boolean {
    const bytes = this.bytes;
    if (this.pos >= bytes.length) return this.end();
    const start = this.pos;
    const head = this.varint();
    const dt = head === INCOMPLETE ? INCOMPLETE : this.varint();
    if (dt === INCOMPLETE) {
      if (this.header.finished) this.fail(start, 'file ends inside a record (truncated file?)');
      this.truncated = true;
      this.pos = bytes.length;
      return false;
    }
    const kind = head % 8;
    if (kind === (TRACE_WRITE | 3)) this.fail(start, `invalid kind ${kind}`);
    const z = (head - kind) / 8;
    const page = this.page + (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
    if (page < 0 || page > this.maxPage) {
      this.fail(start, `page ${page} is outside the guest memory (${this.maxPage + 1} pages)`);
    }
    this.page = page;
    this.kind = kind;
    this.time += dt;
    this.index++;
    if (this.header.finished && this.index > this.header.recordCount) {
      this.fail(start, `more records than the header's count of ${this.header.recordCount}`);
    }
    return true;
  }

  private end(): false {
    if (this.header.finished && this.index !== this.header.recordCount) {
      throw new TraceError(`${this.source}: header says ${this.header.recordCount} records but the file holds ${this.index} (truncated file?)`);
    }
    return false;
  }

  /** One LEB128 varint in its shortest form, or INCOMPLETE if the bytes run out first. */
  private varint(): number {
    const start = this.pos;
    const value = readUleb(this.bytes, this, this.bytes.length, MAX_VARINT_BYTES);
    if (value === ULEB_INCOMPLETE) return INCOMPLETE;
    if (value === ULEB_MALFORMED) {
      let n = 0;
      while (n < MAX_VARINT_BYTES && this.bytes[start + n]! >= 0x80) n++;
      return this.fail(start, n === MAX_VARINT_BYTES ? `varint longer than ${MAX_VARINT_BYTES} bytes` : 'varint out of range');
    }
    if (this.pos - start > 1 && this.bytes[this.pos - 1] === 0) this.fail(start, 'overlong varint');
    return value;
  }

  private fail(offset: number, what: string): never {
    throw new TraceError(`${this.source}: corrupt trace at record ${this.index} (byte ${offset}): ${what}`);
  }
}

/** A whole trace in typed arrays. */
export interface Trace {
  readonly header: TraceHeader;
  readonly source: string;
  readonly count: number;
  /** Virtual page of each record. */
  readonly pages: Int32Array;
  /** Kind of each record (TraceKind, | TRACE_WRITE for stores). */
  readonly kinds: Uint8Array;
  /** ns since the first record. */
  readonly times: Float64Array;
  readonly truncated: boolean;
}

/** Reads and validates a whole trace file. */
export function readTrace(path: string): Trace {
  return decodeTrace(TraceReader.open(path));
}

/** Decodes every record of `reader` (from its current position) into typed arrays. */
export function decodeTrace(reader: TraceReader): Trace {
  let cap = reader.header.finished ? reader.header.recordCount : 1024;
  let pages = new Int32Array(cap);
  let kinds = new Uint8Array(cap);
  let times = new Float64Array(cap);
  let n = 0;
  while (reader.next()) {
    if (n === cap) {
      cap *= 2;
      pages = grow(pages, new Int32Array(cap));
      kinds = grow(kinds, new Uint8Array(cap));
      times = grow(times, new Float64Array(cap));
    }
    pages[n] = reader.page;
    kinds[n] = reader.kind;
    times[n] = reader.time;
    n++;
  }
  return {
    header: reader.header, source: reader.source, count: n,
    pages: pages.subarray(0, n), kinds: kinds.subarray(0, n), times: times.subarray(0, n), truncated: reader.truncated,
  };
}

function grow<T extends Int32Array | Uint8Array | Float64Array>(from: T, to: T): T {
  to.set(from as never);
  return to;
}
