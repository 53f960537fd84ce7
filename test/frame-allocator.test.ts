/**
 * Direct reclaim (FrameAllocator.takeFrame with no free frame) over a real frame table and physical
 * memory, with a PageIo whose reads stay in flight until the test lands them: the victim is never
 * a frame whose read is still in flight while another frame can go (evicting it would wait for the
 * read, then throw the page away), and only when every evictable frame is in flight does it wait.
 */
import { describe, expect, it } from 'vitest';
import { computeLayout } from '../host/layout.js';
import { FrameAllocator } from '../host/runtime/frame-allocator.js';
import { FrameTable, IN_FLIGHT, PREFETCHED, REFERENCED } from '../host/runtime/frame-table.js';
import { GuestThreads } from '../host/runtime/guest-threads.js';
import type { PageIo } from '../host/runtime/page-io.js';
import { PhysicalMemory } from '../host/runtime/physical-memory.js';
import { Counters } from '../host/stats/counters.js';

const FRAMES = 8;

/** Reads are tickets that land when the test says; `waited` lists the tickets a caller blocked on. */
class HeldIo implements PageIo {
  next = 1;
  readonly landedTickets = new Set<number>();
  readonly waited: number[] = [];
  read(): number {
    return this.next++;
  }
  write(): void {}
  wait(ticket: number): void {
    this.waited.push(ticket);
    this.landedTickets.add(ticket);
  }
  landed(ticket: number): boolean {
    return ticket === 0 || this.landedTickets.has(ticket);
  }
  drain(): void {}
  async close(): Promise<void> {}
}

function setup() {
  const layout = computeLayout(4096, 64);
  const phys = new PhysicalMemory(layout, FRAMES, FRAMES);
  const table = FrameTable.allocate(layout, phys.memory.buffer as unknown as SharedArrayBuffer, FRAMES);
  const io = new HeldIo();
  const counters = new Counters();
  const frames = new FrameAllocator({
    layout, table, phys, io, counters, guests: new GuestThreads(), control: new Int32Array(phys.memory.buffer, 0, 64), thread: 0,
    sharedMemory: false, budget: { frames: FRAMES }, reserve: false,
  });
  frames.growPool(1);
  // Fill the pool: frames 0..FRAMES-1 hold pages 0..FRAMES-1, all landed and unreferenced.
  for (let p = 0; p < FRAMES; p++) {
    const f = frames.takeFrame();
    table.assign(f, p);
    table.frameFlags[f] = 0;
  }
  return { table, io, frames, counters };
}

describe('direct reclaim and reads in flight', () => {
  it('passes over frames whose prefetch is still in flight while another frame can be evicted', () => {
    const { table, io, frames, counters } = setup();
    // Prefetches in flight in every frame but the last, which CLOCK reaches last.
    for (let f = 0; f < FRAMES - 1; f++) {
      table.frameTicket[f] = io.read();
      table.frameFlags[f] = PREFETCHED | IN_FLIGHT;
    }
    table.frameFlags[FRAMES - 1] = REFERENCED; // second chance first, then the victim
    const victim = frames.takeFrame();
    expect(victim).toBe(FRAMES - 1);
    expect(io.waited).toEqual([]);
    expect(counters.prefetchWasted).toBe(0);
    expect(counters.directReclaims).toBe(1);
  });

  it('waits for a read in flight only when every frame is in flight', () => {
    const { table, io, frames, counters } = setup();
    for (let f = 0; f < FRAMES; f++) {
      table.frameTicket[f] = io.read();
      table.frameFlags[f] = PREFETCHED | IN_FLIGHT;
    }
    const victim = frames.takeFrame();
    expect(victim).toBeGreaterThanOrEqual(0);
    expect(io.waited.length).toBe(1); // the victim's read had to land before its frame was reused
    expect(counters.prefetchWasted).toBe(1);
  });
});
