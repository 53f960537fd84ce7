/**
 * @fileoverview `VirtualMemory`: host access to a guest's memory by virtual address. Under farmem
 * the guest's memory is not a `WebAssembly.Memory` the host can index, so WASI and every other host
 * import read and write through this interface. `PlainMemory` implements it over an ordinary
 * `WebAssembly.Memory`, so the same host code also runs an uninstrumented module (reference runs).
 *
 * All multi-byte accessors are little-endian. An access outside `[0, byteLength)` throws a
 * `RangeError`; host imports turn that into a WASI `EFAULT` or a trap.
 */

export interface VirtualMemory {
  /** Current size in bytes (grows with `memory.grow`). */
  readonly byteLength: number;
  /** Copies `dst.length` bytes starting at `addr` into `dst`. */
  readInto(addr: number, dst: Uint8Array): void;
  /** Copies `src` into memory at `addr`. */
  write(addr: number, src: Uint8Array): void;
  /** Fills `length` bytes at `addr` with `value`. */
  fill(addr: number, value: number, length: number): void;
  read(addr: number, length: number): Uint8Array;
  getUint8(addr: number): number;
  getUint16(addr: number): number;
  getUint32(addr: number): number;
  getBigUint64(addr: number): bigint;
  setUint8(addr: number, value: number): void;
  setUint16(addr: number, value: number): void;
  setUint32(addr: number, value: number): void;
  setBigUint64(addr: number, value: bigint): void;
}

/**
 * Implements the scalar accessors on top of `readInto`/`write` with one scratch buffer, so a backend
 * only has to provide bulk copies.
 */
export abstract class VirtualMemoryBase implements VirtualMemory {
  abstract readonly byteLength: number;
  abstract readInto(addr: number, dst: Uint8Array): void;
  abstract write(addr: number, src: Uint8Array): void;
  private readonly scratch = new Uint8Array(8);
  private readonly view = new DataView(this.scratch.buffer);

  fill(addr: number, value: number, length: number): void {
    const chunk = new Uint8Array(Math.min(length, 65536)).fill(value);
    for (let done = 0; done < length; done += chunk.length) {
      this.write(addr + done, length - done >= chunk.length ? chunk : chunk.subarray(0, length - done));
    }
  }
  read(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(addr, out);
    return out;
  }
  private load(addr: number, n: number): DataView {
    this.readInto(addr, this.scratch.subarray(0, n));
    return this.view;
  }
  private store(addr: number, n: number): void {
    this.write(addr, this.scratch.subarray(0, n));
  }
  getUint8(addr: number): number { return this.load(addr, 1).getUint8(0); }
  getUint16(addr: number): number { return this.load(addr, 2).getUint16(0, true); }
  getUint32(addr: number): number { return this.load(addr, 4).getUint32(0, true); }
  getBigUint64(addr: number): bigint { return this.load(addr, 8).getBigUint64(0, true); }
  setUint8(addr: number, value: number): void { this.view.setUint8(0, value); this.store(addr, 1); }
  setUint16(addr: number, value: number): void { this.view.setUint16(0, value, true); this.store(addr, 2); }
  setUint32(addr: number, value: number): void { this.view.setUint32(0, value, true); this.store(addr, 4); }
  setBigUint64(addr: number, value: bigint): void { this.view.setBigUint64(0, value, true); this.store(addr, 8); }
}

function checkRange(addr: number, length: number, size: number): void {
  if (!(addr >= 0 && length >= 0 && addr + length <= size)) {
    throw new RangeError(`virtual access [${addr}, ${addr + length}) outside memory of ${size} bytes`);
  }
}

/** `VirtualMemory` over a plain `WebAssembly.Memory` (an uninstrumented module). */
export class PlainMemory extends VirtualMemoryBase {
  constructor(readonly memory: WebAssembly.Memory) {
    super();
  }
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }
  readInto(addr: number, dst: Uint8Array): void {
    checkRange(addr, dst.length, this.byteLength);
    dst.set(new Uint8Array(this.memory.buffer, addr, dst.length));
  }
  write(addr: number, src: Uint8Array): void {
    checkRange(addr, src.length, this.byteLength);
    new Uint8Array(this.memory.buffer, addr, src.length).set(src);
  }
}

export { checkRange as checkVirtualRange };
