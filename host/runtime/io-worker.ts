/**
 * @fileoverview The I/O worker: a worker thread that owns the page store (farmem servers or Redis,
 * opened by kind through store/registry.ts) and serves the request rings (io-channel.ts) of the
 * guest and of the reclaimer. Its event loop sleeps in `Atomics.waitAsync` on the shared doorbell,
 * so the same loop also runs the store's connections. Everything submitted since the last wake-up
 * is issued at once: writes and prefetch reads are batched into one store call each, and calls are
 * pipelined (a new one does not wait for earlier ones). Demand reads go out first, one page each,
 * through the store's `readPage` when it has one: a request record preallocated per ring slot
 * carries the completion callback, the page is copied from the reply straight into its frame, and
 * nothing is allocated per fault. A read of a page whose write-back is still in flight (from
 * either ring) is served from that write's staging copy. When a demand read lands and nothing else
 * is in flight, the worker spins briefly on the rings for the guest's next fault before it sleeps
 * again (`awaitNextFault`), which saves the waitAsync wake-up on back-to-back faults; while it spins
 * it sets WATCHING, and producers ring without Atomics.notify. While a demand read is in flight the
 * loop polls its sockets or sleeps, whichever measured faster in this run (`hotChooser`).
 * Write-backs go out in calls of at most 512 KiB while less than that is on the wire, the rest
 * queued in order (`sendWrites`), and the run's first store failure is the one every producer
 * reads (`recordFailure`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toErrorRecord } from '../errors.js';
import type { PageStore } from '../store/page-store.js';
import { HotWait, REPLY_HOT_WAIT_MS } from './hot-wait.js';
import { WaitChooser } from './wait-chooser.js';
import { openStore, type StoreSpec } from '../store/registry.js';
import {
  channelViews, completeRequests, DOORBELL, handoffClockOrigin, kError, kReady, kRepair, kShutdown, kSubmitted, kTiming, OP_PREFETCH, OP_READ, OP_WRITE,
  REPAIR_FIELDS, WATCHING, writeError, type ChannelBuffers,
} from './io-channel.js';

export interface IoWorkerData {
  readonly channels: readonly SharedArrayBuffer[];
  readonly doorbell: SharedArrayBuffer;
  readonly memory: WebAssembly.Memory;
  readonly store: StoreSpec;
  /** The guest's `handoffClockOrigin()`: hand-off stamps are put on its clock. */
  readonly clockOrigin: number;
}

const data = workerData as IoWorkerData;
const pageSize = data.store.pageSize;
const channels: ChannelBuffers[] = data.channels.map((sab) => channelViews(sab, pageSize));
const doorbell = new Int32Array(data.doorbell);
/** Added to this thread's performance.now() to get the guest's (see handoffClockOrigin). */
const clockShift = handoffClockOrigin() - data.clockOrigin;
let phys = new Uint8Array(data.memory.buffer);
/** Pages whose write-back is in flight → the staging bytes holding them. */
const pendingWrites = new Map<number, Uint8Array>();

/** Physical memory's bytes, re-derived when `offset`'s frame lies beyond them (memory grew). */
function physAt(offset: number): Uint8Array {
  if (offset + pageSize > phys.length) phys = new Uint8Array(data.memory.buffer);
  return phys;
}

function frame(offset: number): Uint8Array {
  return physAt(offset).subarray(offset, offset + pageSize);
}

/**
 * The run's first store failure. A failed request stops the run (its waiter throws, a failed
 * write-back stops every producer), so the first failure is the cause and later ones its
 * consequences: a write-back queued behind it goes out after it, finds no server left to place on,
 * and fails FM_ERR_SERVER_UNREACHABLE where the cause was FM_ERR_SERVER_DATA_LOST. So the message is
 * written once, for every channel, before any request completes failed: a producer reading it
 * never meets it half rewritten.
 */
let failure: unknown = null;

function recordFailure(err: unknown): void {
  if (failure !== null) return;
  failure = err;
  for (const c of channels) writeError(c, err);
}

/** Completes a batch's requests (completeRequests); a failure is recorded first (recordFailure). */
function completeAll(b: ChannelBuffers, seqs: ArrayLike<number>, error: unknown): void {
  if (error) recordFailure(error);
  completeRequests(b, seqs, !!error, clockShift);
}

/** Scratch batch of one request, for a read served from a write-back's staging copy. */
const one = new Int32Array(1);

/**
 * A demand read in flight, one per ring slot (a slot holds one request at a time): its completion
 * callback is made once, so a fault allocates no closure. It reports how long the read took to
 * `hotChooser`, in the mode it was issued in.
 */
class SlotRead {
  /** The one request: completed as a batch of one, without allocating. */
  readonly seq = new Int32Array(1);
  readonly done: (err: Error | null) => void;
  issuedAt = 0;
  constructor(b: ChannelBuffers) {
    this.done = (err) => {
      hotChooser.record(performance.now() - this.issuedAt);
      completeAll(b, this.seq, err);
      if (--demandInFlight === 0 && batchReadsInFlight === 0 && !polling) awaitNextFault();
    };
  }
}

/**
 * When a demand read completed and no other read is in flight, the worker spins this long watching the rings before it
 * goes back to sleep in Atomics.waitAsync: a faulting guest submits its next demand read ~10 µs
 * after the previous one landed (its own wake-up, mapping, running to the next miss), and waking
 * from waitAsync cost 16–17 µs p50 here (`stats().latency.handoffs['worker wake']`; 3–4 µs with
 * this spin, docs/architecture.md). The spin blocks this event loop, which then has no read in
 * flight to wait for (write-back replies wait at most this long); at most 30 µs of CPU per read.
 */
const SPIN_AFTER_READS_MS = 0.03;

/**
 * While a demand read is in flight the event loop may poll its sockets instead of sleeping in epoll
 * (hot-wait.ts), at most REPLY_HOT_WAIT_MS per read. Whether it does is measured in the run
 * (`hotChooser`, the guest's spin-or-park chooser applied to the worker's own wait), because the
 * same poll halves a read on one machine and slows it on another. On the quiet VM of 2026-12-01 a
 * ws major fault took 98–101 µs p50 with the loop asleep and 48 µs awake; on the AMD EPYC VM of
 * 2026-12-04 the poll kept the server, woken on the worker's core by the request, from running
 * until the scheduler moved one of them: hashtable at 25% through a loopback server, 4 KiB fault
 * p50 47–55 µs polling against 43–49 asleep, p99 447–611 against 302–329 µs, 23–29 s against
 * 18.6–21 s (3 runs each, docs/architecture.md, "The worker's wait, chosen per machine").
 */
const hotWait = new HotWait(REPLY_HOT_WAIT_MS, () => demandInFlight > 0);
/** `spin`: keep the loop awake through the next demand read. Starts asleep and probes. */
const hotChooser = new WaitChooser('trimmed mean');

/** Demand reads issued through `readPage`, and batched reads (prefetch, or stores without readPage), not yet completed. */
let demandInFlight = 0;
let batchReadsInFlight = 0;
/** Inside `poll` (a completion called back from within an issue must not poll again). */
let polling = false;
let openStoreRef: PageStore | null = null;

function awaitNextFault(): void {
  const until = performance.now() + SPIN_AFTER_READS_MS;
  Atomics.store(doorbell, WATCHING, 1); // producers ring without notify meanwhile
  for (let i = 1; ; i++) {
    if (submittedSince()) break;
    if ((i & 31) === 0 && performance.now() >= until) {
      Atomics.store(doorbell, WATCHING, 0);
      if (submittedSince()) break; // published before the producer could see WATCHING cleared
      return;
    }
  }
  Atomics.store(doorbell, WATCHING, 0);
  poll(openStoreRef!);
}

/** Has any ring a request not issued yet? */
function submittedSince(): boolean {
  for (let c = 0; c < channels.length; c++) if (Atomics.load(channels[c]!.control, kSubmitted) >= next[c]!) return true;
  return false;
}

const slotReads: SlotRead[][] = channels.map((b) => Array.from({ length: b.slots }, () => new SlotRead(b)));

function shutDown(): boolean {
  for (const b of channels) if (!Atomics.load(b.control, kShutdown)) return false;
  return true;
}

/** Next sequence number to issue, per channel; the submitted counts of the last snapshot. */
const next = channels.map(() => 1);
const submitted = channels.map(() => 0);

/** Issues everything submitted on every ring since the last look; false when there was nothing. */
function poll(store: PageStore): boolean {
  // Snapshot in channel order (guest first), issue in reverse (reclaimer first). A guest read of a
  // page is published only after the reclaimer published that page's write-back and released the
  // frame, so if the guest's snapshot holds the read, the later reclaimer snapshot holds the write,
  // and issuing the write first registers it in pendingWrites before the read looks.
  for (let c = 0; c < channels.length; c++) submitted[c] = Atomics.load(channels[c]!.control, kSubmitted);
  let busy = false;
  polling = true;
  try {
    for (let c = channels.length - 1; c >= 0; c--) {
      if (submitted[c]! >= next[c]!) {
        busy = true;
        next[c] = issue(store, c, next[c]!, submitted[c]!);
      }
    }
  } finally {
    polling = false;
  }
  return busy;
}

async function serve(store: PageStore): Promise<void> {
  openStoreRef = store;
  for (;;) {
    const bell = Atomics.load(doorbell, DOORBELL);
    if (poll(store)) continue;
    if (shutDown()) return;
    const waiting = Atomics.waitAsync(doorbell, DOORBELL, bell);
    if (waiting.async) await waiting.value;
  }
}

/** Requests of one kind taken from a ring together, issued as one store call. */
class Batch {
  /** The ring they came from (set for write-backs, which may wait in `writeQueue`). */
  channel: ChannelBuffers | null = null;
  readonly seqs: number[] = [];
  readonly pages: number[] = [];
  readonly bufs: Uint8Array[] = [];
  add(seq: number, page: number, bytes: Uint8Array): void {
    this.seqs.push(seq);
    this.pages.push(page);
    this.bufs.push(bytes);
  }
}

/**
 * Most pages one prefetch store call reads. The prefetches taken in one poll are cut into calls of
 * this many pages (a READ of 64 KiB at 4 KiB pages): the server sends each reply as soon as it is
 * built, and the worker completes each one as it lands, so the guest touches the first pages of a
 * window, and tops it up, while the rest is on the wire. Taken as one call, a window left as one
 * reply of up to 1 MiB: the server copied all of it before sending any, and the guest waited for
 * its last byte to touch its first page (timelines of seqscan at 25% through a loopback server,
 * 2026-12-02). leap-stream tops up by the same 16 pages (TOP_UP).
 */
const PREFETCH_CALL_PAGES = 16;

/**
 * Issues requests `from..to` of channel `c`: demand reads as they come (with `readPage`), then the
 * write-backs (queued behind those in flight, `sendWrites`), then one batch of demand reads (stores
 * without `readPage`), then the prefetch reads, PREFETCH_CALL_PAGES per call (so a demand page
 * never waits behind the prefetches issued with it; the server answers a connection's requests in
 * order). Returns to + 1.
 */
function issue(store: PageStore, c: number, from: number, to: number): number {
  const b = channels[c]!;
  const reads = slotReads[c]!;
  const mask = b.slots - 1;
  const taken = b.control[kTiming] !== 0 ? performance.now() + clockShift : 0;
  let writes: Batch | null = null;
  let demand: Batch | null = null;
  let prefetches: Batch[] | null = null;
  for (let seq = from; seq <= to; seq++) {
    const at = (seq & mask) * 4;
    while (Atomics.load(b.ring, at + 3) !== seq) { /* the producer publishes the sequence last */ }
    const op = b.ring[at]!;
    const page = b.ring[at + 1]!;
    const arg = b.ring[at + 2]!;
    if (taken !== 0) b.times[(seq & mask) * 2] = taken;
    if (op === OP_WRITE) {
      const bytes = b.staging.subarray(arg * pageSize, (arg + 1) * pageSize);
      pendingWrites.set(page, bytes);
      (writes ??= new Batch()).add(seq, page, bytes);
    } else if (op === OP_READ || op === OP_PREFETCH) {
      const staged = pendingWrites.get(page);
      if (staged !== undefined) {
        frame(arg).set(staged);
        one[0] = seq;
        completeAll(b, one, null);
      } else if (op === OP_READ && store.readPage !== undefined) {
        const r = reads[seq & mask]!;
        r.seq[0] = seq;
        r.issuedAt = performance.now();
        demandInFlight++;
        store.readPage(page, physAt(arg), arg, r.done);
        if (hotChooser.spin) hotWait.start();
      } else if (op === OP_READ) {
        (demand ??= new Batch()).add(seq, page, frame(arg));
      } else {
        prefetches ??= [];
        let last = prefetches[prefetches.length - 1];
        if (last === undefined || last.seqs.length === PREFETCH_CALL_PAGES) prefetches.push(last = new Batch());
        last.add(seq, page, frame(arg));
      }
    }
  }
  if (writes !== null) queueWrites(store, b, writes);
  if (demand !== null) read(store, b, demand);
  if (prefetches !== null) for (const p of prefetches) read(store, b, p);
  return to + 1;
}

/**
 * Write-backs leave in calls of at most this many bytes, a call only while less than this is on
 * the wire (so at most just under twice it); the rest waits in `writeQueue`, in order. A demand read
 * sent while a write-back batch is in flight waits behind that batch's bytes at the server (the
 * connection is ordered, and its turn on the server's loop comes after them): with a reclaimer
 * round of 32 pages of 64 KiB that was 2 MiB, and the 2% of reads sent then took 0.3–1.1 ms.
 * Staging slots stay taken while their write waits, so the reclaimer's `awaitRoom` is the
 * backpressure. Measured 2026-12-04 on the AMD EPYC VM through a loopback server, seqscan 64 MiB at
 * 64 KiB pages and 25%, 5 pairs alternating with the build without the cap (docs/architecture.md,
 * "Write-backs in flight, capped"): fault p99 1.14–1.39 ms against 1.61–2.34 ms, p50 and run time
 * unchanged (51–81 against 50–88 µs; 597–755 against 580–851 ms). 256 KiB cut the p99 as much but
 * cost the p50 (74–100 µs) and 8% of the run time; at 4 KiB pages neither changed the hash table.
 */
const WRITE_BYTES_IN_FLIGHT = 512 * 1024;
const writePagesPerCall = Math.max(1, Math.floor(WRITE_BYTES_IN_FLIGHT / pageSize));
const writeQueue: Batch[] = [];
let writePagesInFlight = 0;

/** Queues a poll's write-backs of ring `b` in calls of at most `writePagesPerCall` pages, and sends what the cap allows. */
function queueWrites(store: PageStore, b: ChannelBuffers, w: Batch): void {
  if (w.seqs.length <= writePagesPerCall) {
    w.channel = b;
    writeQueue.push(w);
  } else {
    for (let i = 0; i < w.seqs.length; i += writePagesPerCall) {
      const part = new Batch();
      part.channel = b;
      for (let j = i; j < Math.min(w.seqs.length, i + writePagesPerCall); j++) part.add(w.seqs[j]!, w.pages[j]!, w.bufs[j]!);
      writeQueue.push(part);
    }
  }
  sendWrites(store);
}

/** Set by the first failed write-back: a page is lost, every producer stops (kError). */
let writesFailed = false;

/**
 * Sends queued write-backs, oldest first, while fewer than `writePagesPerCall` pages are in flight.
 * After a write-back failed the rest fail unsent: each would wait out its own deadline behind the
 * one before it (a stopped server: 5 s per call), and a producer waiting for its slot meanwhile
 * gave up with its own, longer deadline instead of the store's error.
 */
function sendWrites(store: PageStore): void {
  while (writeQueue.length > 0 && (writesFailed || writePagesInFlight < writePagesPerCall)) {
    const w = writeQueue.shift()!;
    if (writesFailed) {
      completeAll(w.channel!, w.seqs, failure);
      continue;
    }
    writePagesInFlight += w.seqs.length;
    store.write(w.pages, w.bufs).then(
      () => {
        w.pages.forEach((page, i) => { if (pendingWrites.get(page) === w.bufs[i]) pendingWrites.delete(page); });
        writePagesInFlight -= w.seqs.length;
        completeAll(w.channel!, w.seqs, null);
        sendWrites(store);
      },
      (err: unknown) => {
        recordFailure(err);
        writesFailed = true;
        for (const c of channels) Atomics.store(c.control, kError, 1);
        writePagesInFlight -= w.seqs.length;
        completeAll(w.channel!, w.seqs, err);
        sendWrites(store);
      },
    );
  }
}

function read(store: PageStore, b: ChannelBuffers, r: Batch): void {
  batchReadsInFlight++;
  store.read(r.pages, r.bufs).then(
    () => {
      completeAll(b, r.seqs, null);
      batchReadsInFlight--;
    },
    (err: unknown) => {
      completeAll(b, r.seqs, err);
      batchReadsInFlight--;
    },
  );
}

/** Copies a remote store's re-replication counters into the guest channel's control block. */
function publishRepair(store: PageStore): void {
  const repair = (store as { stats?: { repair?: Record<string, number> } }).stats?.repair;
  if (!repair) return;
  REPAIR_FIELDS.forEach((f, i) => Atomics.store(channels[0]!.control, kRepair + i, repair[f] ?? 0));
}

async function main(): Promise<void> {
  let store: PageStore;
  try {
    store = await openStore(data.store);
  } catch (err) {
    const r = toErrorRecord(err);
    parentPort!.postMessage({ type: 'error', message: r.message, code: r.code, name: r.name, wireStatus: r.wireStatus });
    return;
  }
  for (const b of channels) Atomics.store(b.control, kReady, 1);
  parentPort!.postMessage({ type: 'ready' });
  // Atomics.waitAsync does not keep a worker's event loop alive: while every server link is down
  // (its reconnect timer is unref'd) nothing else would, and the worker would exit mid-run.
  // The same timer publishes re-replication counters for the guest's stats().
  const keepAlive = setInterval(() => publishRepair(store), 100);
  await serve(store);
  clearInterval(keepAlive);
  await store.close();
  publishRepair(store);
  parentPort!.postMessage({ type: 'closed' });
}

void main();
