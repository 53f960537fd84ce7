/**
 * @fileoverview A minimal reader of a module's section structure, run before binaryen sees the
 * bytes: it turns "not wasm", "truncated" and unsupported memory kinds (memory64, several
 * memories, shared memory) into clear diagnostics, which binaryen and V8 would report cryptically.
 *
 *   module  := magic "\0asm" | version u32=1 | section*
 *   section := id u8 | size uleb32 | payload[size]
 *   limits  := flags u8 (bit0 has-max, bit1 shared, bit2 memory64) | min uleb | max uleb?
 */
import { readUleb, ULEB_INCOMPLETE, ULEB_MALFORMED } from '../leb128.js';
import { diagnostic } from './diagnostics.js';

// Binary-format numbers used below (a table of constants, like the frame flags of trace/replay.ts).
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const IMPORT_KIND_MEMORY = 2;
/** Longest number read here: a u64 limit of a memory64 memory (64 bits / 7, rounded up). */
const MAX_LEB_BYTES = 10;

export interface MemoryDecl {
  readonly imported: boolean;
  readonly shared: boolean;
  readonly memory64: boolean;
  /** Declared limits in wasm pages (maximum null when absent). */
  readonly initial: number;
  readonly maximum: number | null;
}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array, readonly end: number) {}
  u8(): number {
    if (this.pos >= this.end) throw diagnostic('FM1002', this.pos);
    return this.bytes[this.pos++]!;
  }
  uleb(): number {
    const v = readUleb(this.bytes, this, this.end, MAX_LEB_BYTES);
    if (v === ULEB_INCOMPLETE) throw diagnostic('FM1002', this.end);
    if (v === ULEB_MALFORMED) throw diagnostic('FM1003', this.pos);
    return v;
  }
  skip(n: number): void {
    if (this.pos + n > this.end) throw diagnostic('FM1002', this.pos);
    this.pos += n;
  }
  name(): void {
    this.skip(this.uleb());
  }
  limits(): { shared: boolean; memory64: boolean; initial: number; maximum: number | null } {
    const flags = this.u8();
    const initial = this.uleb();
    const maximum = flags & 1 ? this.uleb() : null;
    return { shared: (flags & 2) !== 0, memory64: (flags & 4) !== 0, initial, maximum };
  }
}

/** Checks the module's framing and returns its memory declarations (imported ones first). */
export function scanMemories(bytes: Uint8Array): MemoryDecl[] {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw diagnostic('FM1001');
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw diagnostic('FM1004', bytes[4]!);
  const memories: MemoryDecl[] = [];
  const r = new Reader(bytes, bytes.length);
  r.pos = 8;
  while (r.pos < bytes.length) {
    const id = r.u8();
    const size = r.uleb();
    const start = r.pos;
    if (start + size > bytes.length) throw diagnostic('FM1002', start);
    const s = new Reader(bytes, start + size);
    s.pos = start;
    if (id === SECTION_IMPORT) {
      for (let n = s.uleb(); n > 0; n--) {
        s.name();
        s.name();
        const kind = s.u8();
        if (kind === IMPORT_KIND_MEMORY) {
          memories.push({ imported: true, ...s.limits() });
        } else if (kind === 0) {
          s.uleb();
        } else if (kind === 1) {
          s.u8();
          s.limits();
        } else if (kind === 3) {
          s.u8();
          s.u8();
        } else if (kind === 4) {
          s.u8();
          s.uleb();
        } else {
          return memories; // an import kind we do not know: let the validator speak
        }
      }
    } else if (id === SECTION_MEMORY) {
      for (let n = s.uleb(); n > 0; n--) memories.push({ imported: false, ...s.limits() });
    }
    r.pos = start + size;
  }
  return memories;
}
