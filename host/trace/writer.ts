/**
 * @fileoverview TraceWriter: appends fault records to a trace file (layout in format.ts). Records
 * go into one preallocated buffer that is written out with a synchronous write when it fills
 * (64 KiB ≈ 16k faults per write), so `record` allocates nothing and never awaits. `close` writes
 * the buffer's tail and rewrites the header as FINISHED with the record count and duration; a
 * trace whose writer never closed stays readable up to its last complete record.
 *
 * Runtime wiring (the pager's FaultKind values are the trace kinds):
 *
 *   const trace = TraceWriter.open('out.fmt', { pageSize, memoryBytes, localFrames, note: 'prefetch=leap' });
 *   onFault: (page, kind) => trace.record(page, kind, performance.now() * 1e6)   // or recordNow(page, kind)
 *   ... at exit: trace.close();
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { TraceError } from '../errors.js';
import { writeUleb } from '../leb128.js';
import { checkPageSize, encodeHeader, MAX_RECORD_BYTES, zigzag } from './format.js';

export interface TraceWriterOptions {
  /** Page size of the run, in bytes. */
  readonly pageSize: number;
  /** Guest memory size in bytes (its virtual maximum); 0 if unknown. */
  readonly memoryBytes?: number;
  /** Frames in the recorded run's local pool; 0 if unknown. */
  readonly localFrames?: number;
  /** How the trace was recorded, e.g. "prefetch=none local=25%". At most 1024 bytes of UTF-8. */
  readonly note?: string;
  /** Bytes buffered before each write, 4 KiB … 16 MiB. Default 64 KiB. */
  readonly bufferBytes?: number;
  /** Clock for `recordNow`, in ns. Default `performance.now() * 1e6`. */
  readonly clock?: () => number;
}

const DEFAULT_BUFFER = 64 * 1024;
const MAX_KIND = 6;
const defaultClock = (): number => performance.now() * 1e6;

export class TraceWriter {
  readonly path: string;
  private fd: number;
  private readonly buf: Uint8Array;
  private pos = 0;
  private prevPage = 0;
  private prevTime = 0;
  private startTime = -1;
  private records = 0;
  private readonly header: { pageSize: number; memoryBytes: number; localFrames: number; note: string };
  private readonly clock: () => number;

  private constructor(path: string, fd: number, options: TraceWriterOptions) {
    this.path = path;
    this.fd = fd;
    this.buf = new Uint8Array(options.bufferBytes ?? DEFAULT_BUFFER);
    this.header = {
      pageSize: options.pageSize,
      memoryBytes: options.memoryBytes ?? 0,
      localFrames: options.localFrames ?? 0,
      note: options.note ?? '',
    };
    this.clock = options.clock ?? defaultClock;
  }

  /** Creates (or truncates) `path` and writes an unfinished header. */
  static open(path: string, options: TraceWriterOptions): TraceWriter {
    checkPageSize(options.pageSize, 'trace page size');
    const memoryBytes = options.memoryBytes ?? 0;
    if (!Number.isSafeInteger(memoryBytes) || memoryBytes < 0 || memoryBytes % options.pageSize !== 0) {
      throw new TraceError(`trace memory size must be a multiple of the page size, got ${memoryBytes}`);
    }
    const localFrames = options.localFrames ?? 0;
    if (!Number.isInteger(localFrames) || localFrames < 0 || localFrames > 0xffffffff) {
      throw new TraceError(`trace local frames must be a non-negative 32-bit integer, got ${localFrames}`);
    }
    const bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER;
    if (!Number.isInteger(bufferBytes) || bufferBytes < 4096 || bufferBytes > 16 * 1024 * 1024) {
      throw new TraceError(`trace bufferBytes must be between 4096 and 16777216, got ${bufferBytes}`);
    }
    const header = encodeHeader({ finished: false, pageSize: options.pageSize, memoryBytes, recordCount: 0, durationNs: 0, localFrames, note: options.note ?? '' });
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (cause) {
      throw new TraceError(`cannot create trace file ${path}: ${(cause as Error).message}`, { cause });
    }
    writeSync(fd, header);
    return new TraceWriter(path, fd, options);
  }

  /** Records written so far. */
  get count(): number {
    return this.records;
  }

  /**
   * Appends one fault. `kind` is a TraceKind, OR'ed with TRACE_WRITE for a store; `timeNs` is a
   * monotonic time in ns (fractions are rounded; a time before the previous one is taken as equal).
   */
  record(page: number, kind: number, timeNs: number): void {
    if (this.fd < 0) throw new TraceError(`trace ${this.path} is closed`);
    if (!(page >= 0 && page <= 0x7fffffff && Math.floor(page) === page)) {
      throw new TraceError(`trace record: page must be an integer from 0 to 2^31-1, got ${page}`);
    }
    if (!(kind >= 0 && kind <= MAX_KIND && (kind | 0) === kind)) throw new TraceError(`trace record: invalid kind ${kind}`);
    if (this.pos + MAX_RECORD_BYTES > this.buf.length) this.flush();
    let t = Math.round(timeNs);
    if (this.startTime < 0) this.startTime = this.prevTime = t;
    let dt = t - this.prevTime;
    if (!(dt >= 0)) {
      dt = 0;
      t = this.prevTime;
    }
    this.prevTime = t;
    let pos = writeUleb(this.buf, this.pos, zigzag(page - this.prevPage) * 8 + kind);
    pos = writeUleb(this.buf, pos, dt);
    this.pos = pos;
    this.prevPage = page;
    this.records++;
  }

  /** `record(page, kind, clock())`. */
  recordNow(page: number, kind: number): void {
    this.record(page, kind, this.clock());
  }

  /** Writes buffered records to the file. */
  flush(): void {
    if (this.fd < 0 || this.pos === 0) return;
    let off = 0;
    while (off < this.pos) off += writeSync(this.fd, this.buf, off, this.pos - off);
    this.pos = 0;
  }

  /** Flushes, marks the header FINISHED with the count and duration, and closes. Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    this.flush();
    const header = encodeHeader({
      ...this.header,
      finished: true,
      recordCount: this.records,
      durationNs: this.startTime < 0 ? 0 : this.prevTime - this.startTime,
    });
    writeSync(this.fd, header, 0, header.length, 0);
    closeSync(this.fd);
    this.fd = -1;
  }
}
