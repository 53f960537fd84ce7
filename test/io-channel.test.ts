/**
 * @fileoverview The request channel's wake-up rule (runtime/io-channel.ts): the consumer notifies a
 * slot only when a producer is parked on it (`parked`), and no parked producer misses its wake-up.
 * Run against a real consumer thread that completes requests with
 * `completeRequests`, as the I/O worker does, in batches of random size at random moments, so
 * completions race the producer's spin → count-as-parked → wait steps. A lost wake-up leaves the
 * producer asleep for the channel's whole timeout (2 s), where a completion takes microseconds:
 * the first wait that long ends the loop and fails the test.
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChannelIo, channelViews, createChannel, createDoorbell, DOORBELL } from '../host/runtime/io-channel.js';

const CHANNEL = pathToFileURL(join(import.meta.dirname, '../dist/host/runtime/io-channel.js')).href;

/**
 * A consumer: takes what was submitted, completes it in random batches of 1..8 after random spins.
 * Between batches it sleeps on the doorbell for at most `idleMs` (Infinity: only a ring wakes it).
 */
const consumer = (idleMs: number) => `
import { workerData } from 'node:worker_threads';
const { channelViews, completeRequests, DOORBELL, kSubmitted, kShutdown } = await import(${JSON.stringify(CHANNEL)});
const { sab, doorbell: bellSab, pageSize } = workerData;
const b = channelViews(sab, pageSize);
const bell = new Int32Array(bellSab);
let next = 1;
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
const batch = new Int32Array(8);
for (;;) {
  const rung = Atomics.load(bell, DOORBELL);
  const submitted = Atomics.load(b.control, kSubmitted);
  if (submitted < next) {
    if (Atomics.load(b.control, kShutdown)) break;
    Atomics.wait(bell, DOORBELL, rung, ${idleMs});
    continue;
  }
  while (next <= submitted) {
    const n = Math.min(1 + rand(8), submitted - next + 1);
    for (let i = 0; i < n; i++) batch[i] = next++;
    for (let spin = rand(3000); spin > 0; spin--) Atomics.load(b.done, 0);
    completeRequests(b, batch.subarray(0, n), false, 0);
  }
}
`;

describe('the request channel', () => {
  it('wakes a parked producer on every completion it waits for: 20,000 reads in windows, completed in random batches', async () => {
    const pageSize = 4096;
    const sab = createChannel(pageSize);
    const doorbell = createDoorbell();
    const worker = new Worker(consumer(50), { eval: true, workerData: { sab, doorbell, pageSize } });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    try {
      const timeoutMs = 2000;
      const io = new ChannelIo(sab, pageSize, { bytes: new Uint8Array(2 * pageSize) }, new Int32Array(doorbell), timeoutMs, async () => {});
      const tickets: number[] = [];
      let waited = 0;
      let slept = 0; // waits that lasted half the timeout: a lost wake-up
      for (let window = 0; waited < 20_000 && slept === 0; window++) {
        const n = 1 + (window % 16);
        for (let i = 0; i < n; i++) tickets.push(io.read(i, pageSize, true));
        // stream = true: a short spin, then park (the path a late prefetch takes)
        for (const t of tickets) {
          const t0 = performance.now();
          io.wait(t, true);
          if (performance.now() - t0 > timeoutMs / 2) slept++;
        }
        waited += tickets.length;
        tickets.length = 0;
      }
      expect(slept).toBe(0);
      const b = channelViews(sab, pageSize);
      expect(Array.from(b.parked).every((p) => p === 0)).toBe(true);
      await io.close();
    } finally {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
      await worker.terminate();
    }
  }, 30_000);

  it('rings the doorbell once per burst: prefetches and write-backs wait for a flush, demand reads and waits ring it', async () => {
    const pageSize = 4096;
    const sab = createChannel(pageSize);
    const doorbell = createDoorbell();
    const bell = new Int32Array(doorbell);
    // This consumer sleeps until the doorbell rings: a request left unrung is never served.
    const worker = new Worker(consumer(Infinity), { eval: true, workerData: { sab, doorbell, pageSize } });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    try {
      const io = new ChannelIo(sab, pageSize, { bytes: new Uint8Array(2 * pageSize) }, bell, 2000, async () => {});
      const rung = () => Atomics.load(bell, DOORBELL);
      const before = rung();
      const tickets = [io.read(1, 0, true), io.read(2, pageSize, true)];
      io.write(3, 0);
      expect(rung()).toBe(before); // a burst in progress
      io.flush();
      expect(rung()).toBe(before + 1);
      io.flush();
      expect(rung()).toBe(before + 1); // nothing new to hand over
      for (const t of tickets) io.wait(t);
      const demand = io.read(4, 0);
      expect(rung()).toBe(before + 2); // a demand read goes at once
      io.wait(demand);
      // A wait on a request still unrung rings for it (else this consumer would never serve it).
      const late = io.read(5, pageSize, true);
      expect(rung()).toBe(before + 2);
      io.wait(late, true);
      expect(rung()).toBe(before + 3);
      // Guest threads share the guest ring: a thread waiting on a request another one left unrung
      // (that one may be asleep in farmem.wait) rings for it.
      const other = new ChannelIo(sab, pageSize, { bytes: new Uint8Array(2 * pageSize) }, bell, 2000, async () => {});
      const left = io.read(6, 0, true);
      other.wait(left, true);
      expect(rung()).toBe(before + 4);
      // Past the ring's wrap-around a new request reuses a slot whose request landed long ago:
      // reserving it rings nothing, so a burst still rings once.
      for (let i = 0; i < channelViews(sab, pageSize).slots; i++) io.wait(io.read(7, 0));
      const wrapped = rung();
      const burst = [io.read(8, 0, true), io.read(9, pageSize, true)];
      io.write(10, 0);
      expect(rung()).toBe(wrapped);
      io.flush();
      expect(rung()).toBe(wrapped + 1);
      for (const t of burst) io.wait(t);
      io.drain();
      await io.close();
    } finally {
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
      await worker.terminate();
    }
  }, 30_000);
});
