/**
 * @fileoverview `FarMemory`: the `VirtualMemory` of a guest running under farmem. Every access goes
 * through the pager (faulting pages in, marking written pages dirty), so host code such as WASI sees
 * exactly what the guest sees.
 */
import type { Pager } from './pager.js';
import { checkVirtualRange, VirtualMemoryBase } from './virtual-memory.js';

export class FarMemory extends VirtualMemoryBase {
  constructor(private readonly pager: Pager) {
    super();
  }
  get byteLength(): number {
    return this.pager.virtualBytes;
  }
  readInto(addr: number, dst: Uint8Array): void {
    checkVirtualRange(addr, dst.length, this.byteLength);
    this.pager.flushBounce();
    this.pager.counters.hostAccesses++;
    this.pager.host.readVirtual(addr, dst, 0, dst.length);
  }
  write(addr: number, src: Uint8Array): void {
    checkVirtualRange(addr, src.length, this.byteLength);
    this.pager.flushBounce();
    this.pager.counters.hostAccesses++;
    this.pager.host.writeVirtual(addr, src, 0, src.length);
  }
  override fill(addr: number, value: number, length: number): void {
    checkVirtualRange(addr, length, this.byteLength);
    this.pager.counters.hostAccesses++;
    this.pager.host.fill(addr, value, length);
  }
}
