/**
 * Trace format round trip and strict decoding, the replay simulator, and the `farmem trace` CLI.
 */
import { Command } from 'commander';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { registerTrace, replayTable } from '../host/cli/cmd/trace.js';
import { OptionError, TraceError } from '../host/errors.js';
import { HEADER_SIZE, TRACE_WRITE, TraceKind } from '../host/trace/format.js';
import { readTrace, TraceReader } from '../host/trace/reader.js';
import { accessesOf, replay, replayMatrix } from '../host/trace/replay.js';
import { TraceWriter } from '../host/trace/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'farmem-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (name: string) => join(dir, `${fileNo++}-${name}`);

/** Writes `pages` as major faults 1 µs apart (kinds optional). */
function writeTrace(pages: ArrayLike<number>, opts: { pageSize?: number; memoryBytes?: number; kinds?: ArrayLike<number> } = {}): string {
  const path = tmp('t.fmt');
  const w = TraceWriter.open(path, { pageSize: opts.pageSize ?? 4096, memoryBytes: opts.memoryBytes ?? 0, note: 'test' });
  for (let i = 0; i < pages.length; i++) w.record(pages[i]!, opts.kinds ? opts.kinds[i]! : TraceKind.Major, 5_000 + i * 1000);
  w.close();
  return path;
}

const seq = (from: number, count: number, step = 1) => Array.from({ length: count }, (_, i) => from + i * step);

describe('trace format', () => {
  it('round-trips pages, kinds, times and header fields', () => {
    const path = tmp('rt.fmt');
    const w = TraceWriter.open(path, { pageSize: 1024, memoryBytes: 1024 * 70_000, localFrames: 123, note: 'prefetch=none local=25% ✓' });
    const pages = [0, 1, 2, 69_999, 5, 5, 40_000, 3, 0];
    const kinds = [TraceKind.Major, TraceKind.Minor, TraceKind.PrefetchHit, TraceKind.WriteFault, TraceKind.Major | TRACE_WRITE, TraceKind.Minor | TRACE_WRITE, TraceKind.PrefetchHit | TRACE_WRITE, 0, 1];
    const times = [1e9 + 0.4, 1e9 + 1000, 1e9 + 1000, 1e9 + 2e10, 1e9 + 2e10 + 7, 1e9 + 2e10 + 3 /* backwards: clamped */, 1e9 + 5e13, 1e9 + 5e13 + 1, 1e9 + 5e13 + 2];
    for (let i = 0; i < pages.length; i++) w.record(pages[i]!, kinds[i]!, times[i]!);
    expect(w.count).toBe(pages.length);
    w.close();
    w.close(); // idempotent

    const t = readTrace(path);
    expect(t.header).toMatchObject({ version: 1, finished: true, pageSize: 1024, memoryBytes: 1024 * 70_000, localFrames: 123, recordCount: 9, note: 'prefetch=none local=25% ✓' });
    expect(t.header.durationNs).toBe(5e13 + 2);
    expect(t.truncated).toBe(false);
    expect([...t.pages]).toEqual(pages);
    expect([...t.kinds]).toEqual(kinds);
    expect([...t.times]).toEqual([0, 1000, 1000, 2e10, 2e10 + 7, 2e10 + 7, 5e13, 5e13 + 1, 5e13 + 2]);
  });

  it('is compact: a sequential scan 1 µs apart takes 3 bytes per fault', () => {
    const path = writeTrace(seq(0, 10_000));
    const bytes = readFileSync(path).length - HEADER_SIZE - 'test'.length;
    expect(bytes / 10_000).toBeLessThanOrEqual(3);
  });

  it('streams records with TraceReader without materializing them', () => {
    const path = writeTrace(seq(100, 50, -2));
    const r = TraceReader.open(path);
    const got: number[] = [];
    while (r.next()) got.push(r.page);
    expect(got).toEqual(seq(100, 50, -2));
    expect(r.index).toBe(50);
  });

  it('reads an unfinished trace up to its last complete record', () => {
    const path = tmp('unfinished.fmt');
    const w = TraceWriter.open(path, { pageSize: 4096 });
    for (let i = 0; i < 100; i++) w.record(i * 1000, 0, i * 1e6);
    w.flush(); // a crashed run: flushed, never closed
    appendFileSync(path, Buffer.from([0x80])); // half a varint
    const t = readTrace(path);
    expect(t.header.finished).toBe(false);
    expect(t.count).toBe(100);
    expect(t.truncated).toBe(true);
    expect(t.pages[99]).toBe(99_000);
    w.close();
  });

  it('writer rejects bad options and records', () => {
    expect(() => TraceWriter.open(tmp('x'), { pageSize: 1000 })).toThrow(/power of two/);
    expect(() => TraceWriter.open(tmp('x'), { pageSize: 4096, memoryBytes: 5000 })).toThrow(/multiple of the page size/);
    const w = TraceWriter.open(tmp('x'), { pageSize: 4096 });
    expect(() => w.record(-1, 0, 0)).toThrow(TraceError);
    expect(() => w.record(1, 7, 0)).toThrow(/invalid kind 7/);
    w.close();
    expect(() => w.record(1, 0, 0)).toThrow(/closed/);
  });
});

describe('malformed traces give a clear TraceError', () => {
  const good = () => readFileSync(writeTrace(seq(0, 20), { memoryBytes: 4096 * 64 }));
  const expectBad = (bytes: Uint8Array, message: RegExp) => {
    const path = tmp('bad.fmt');
    writeFileSync(path, bytes);
    expect.assertions(3);
    try {
      readTrace(path);
    } catch (err) {
      expect(err).toBeInstanceOf(TraceError);
      expect((err as TraceError).code).toBe('FM_ERR_BAD_TRACE');
      expect((err as Error).message).toMatch(message);
    }
  };

  it('not a trace', () => expectBad(Buffer.from('#!/bin/sh\necho this is not a trace, but it is long enough to hold a header\n'), /not a farmem trace \(bad magic/));
  it('empty file', () => expectBad(new Uint8Array(0), /shorter than the 64-byte header/));
  it('missing file', () => {
    expect(() => readTrace(join(dir, 'nope.fmt'))).toThrow(/cannot read trace .*nope\.fmt/);
  });
  it('unsupported version', () => {
    const b = good();
    b[8] = 9;
    expectBad(b, /version 9 is not supported \(this farmem reads version 1\)/);
  });
  it('bad page size', () => {
    const b = good();
    b.writeUInt32LE(3000, 12);
    expectBad(b, /page size must be a power of two/);
  });
  it('truncated finished trace', () => expectBad(good().subarray(0, -3), /truncated/));
  it('trailing bytes after the counted records', () => expectBad(Buffer.concat([good(), Buffer.from([0x08, 0x00])]), /more records than the header's count of 20/));
  it('invalid kind', () => {
    const b = good();
    b[HEADER_SIZE + 4] = 7; // first record: page delta 0, kind 7
    expectBad(b, /record 0 \(byte 68\): invalid kind 7/);
  });
  it('overlong varint', () => {
    const b = good();
    b[HEADER_SIZE + 4] = 0x80; // first record's page varint: 0x80 0x00 is a non-canonical zero
    b[HEADER_SIZE + 5] = 0x00;
    expectBad(b, /record 0 \(byte 68\): overlong varint/);
  });
  it('page outside the guest memory (named)', () => {
    const path = writeTrace([70], { memoryBytes: 4096 * 64 });
    expect(() => readTrace(path)).toThrow(/page 70 is outside the guest memory \(64 pages\)/);
  });
});

describe('replay', () => {
  const sequential = writeTrace(seq(0, 4000));
  const mixed = (() => {
    // Sequential, stride 3, random: a bit of everything, with some stores.
    const pages: number[] = [];
    const kinds: number[] = [];
    let x = 12345;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1000; i++) { pages.push(i); kinds.push(i % 7 === 0 ? TRACE_WRITE : 0); }
      for (let i = 0; i < 1000; i++) { pages.push(2000 + 3 * i); kinds.push(0); }
      for (let i = 0; i < 1000; i++) { x = (x * 1103515245 + 12345) % 2 ** 31; pages.push(x % 8000); kinds.push(i % 5 === 0 ? TraceKind.WriteFault : 1); }
    }
    return writeTrace(pages, { kinds, memoryBytes: 4096 * 8192 });
  })();

  it('is deterministic: same trace, same table', () => {
    const run = () => replayMatrix(accessesOf(readTrace(mixed)), ['none', 'readahead', 'stride', 'leap'], [{ fraction: 0.1 }, { fraction: 0.25 }, { fraction: 0.5 }]);
    const a = run();
    const b = run();
    expect(b).toEqual(a);
    expect(replayTable(b)).toBe(replayTable(a));
    expect(a.some((r) => r.writeBacks > 0)).toBe(true);
  });

  it('sequential trace at 25% local: leap ≪ none in major faults', () => {
    const acc = accessesOf(readTrace(sequential));
    const none = replay(acc, { policy: 'none', local: { fraction: 0.25 } });
    const leap = replay(acc, { policy: 'leap', local: { fraction: 0.25 } });
    expect(none.majorFaults).toBe(4000);
    expect(leap.majorFaults).toBeLessThanOrEqual(none.majorFaults * 0.2);
    expect(leap.accuracy).toBeGreaterThan(0.9);
    expect(leap.estTimeNs).toBeLessThan(none.estTimeNs / 1.5);
  });

  it('counts every fault of an access stream that fits: majors = footprint, no evictions', () => {
    const acc = accessesOf(readTrace(mixed));
    const r = replay(acc, { policy: 'none', local: { fraction: 1 } });
    expect(r.frames).toBe(acc.footprint);
    expect(r.majorFaults).toBe(acc.footprint);
    expect(r.evictions).toBe(0);
    expect(r.prefetchIssued).toBe(0);
  });

  it('local sizes: fraction of the footprint, bytes, frames', () => {
    const acc = accessesOf(readTrace(sequential));
    expect(acc.footprint).toBe(4000);
    expect(replay(acc, { policy: 'none', local: { fraction: 0.1 } }).frames).toBe(400);
    expect(replay(acc, { policy: 'none', local: { bytes: 1024 * 1024 } }).frames).toBe(256);
    expect(replay(acc, { policy: 'none', local: { frames: 7 } }).frames).toBe(7);
  });

  it('replays at a coarser page size, refuses a finer one', () => {
    const t = readTrace(sequential);
    const acc = accessesOf(t, 16384);
    expect(acc.footprint).toBe(1000);
    expect(replay(acc, { policy: 'none', local: { fraction: 0.5 } }).majorFaults).toBe(1000);
    expect(() => accessesOf(t, 1024)).toThrow(OptionError);
    expect(() => accessesOf(t, 1024)).toThrow(/recorded with 4096-byte pages: use a multiple of 4096/);
  });

  it('an unknown policy is an OptionError listing the valid ones', () => {
    expect(() => replay(accessesOf(readTrace(sequential)), { policy: 'leep', local: { fraction: 0.5 } })).toThrow(/valid policies: none, readahead, stride, leap/);
  });

  it('replays a million faults quickly', () => {
    const n = 1_000_000;
    const pages = new Int32Array(n);
    let x = 1;
    for (let i = 0; i < n; i++) {
      // 3/4 sequential runs, 1/4 random jumps over 64k pages.
      if ((i & 3) === 3) { x = (x * 48271) % 2147483647; pages[i] = x % 65536; } else pages[i] = (i >>> 2) % 65536;
    }
    const path = writeTrace(pages);
    const started = performance.now();
    const acc = accessesOf(readTrace(path));
    const rows = replayMatrix(acc, ['none', 'leap'], [{ fraction: 0.25 }]);
    const ms = performance.now() - started;
    console.log(`decode + 2 replays of ${n} faults: ${ms.toFixed(0)} ms`);
    expect(rows[0]!.accesses).toBe(n);
  });
});

describe('farmem trace CLI', () => {
  async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
    const program = new Command('farmem').exitOverride();
    registerTrace(program);
    let out = '';
    let err = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
    const before = process.exitCode;
    try {
      await program.parseAsync(['node', 'farmem', ...args]);
    } finally {
      o.mockRestore();
      e.mockRestore();
    }
    const code = process.exitCode ?? 0;
    process.exitCode = before;
    return { out, err, code: Number(code) };
  }

  it('info summarizes a trace', async () => {
    const path = writeTrace([1, 2, 3, 3, 9], { kinds: [0, 0, 2, TraceKind.WriteFault, 1 | TRACE_WRITE], memoryBytes: 4096 * 16 });
    const { out, code } = await cli('trace', 'info', path);
    expect(code).toBe(0);
    expect(out).toMatch(/records +5/);
    expect(out).toMatch(/pages touched +4 /);
    expect(out).toMatch(/major 2, minor 1, prefetch-hit 1, write-fault 1; 2 by stores/);
    const json = JSON.parse((await cli('trace', 'info', path, '--json')).out);
    expect(json).toMatchObject({ records: 5, pagesTouched: 4, pageRange: [1, 9], durationNs: 4000 });
  });

  it('replay prints a table with one row per (local, policy)', async () => {
    const path = writeTrace(seq(0, 2000));
    const { out, code } = await cli('trace', 'replay', path, '--prefetch', 'none,leap', '--local', '10%,50%');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[1]).toMatch(/^local +frames +policy +major +minor +issued +hits +wasted +accuracy +coverage +est\. time +vs none$/);
    expect(lines).toHaveLength(3 + 4);
    expect(lines[3]).toMatch(/^10\.0% +200 +none +2000 /);
    const json = JSON.parse((await cli('trace', 'replay', path, '--prefetch', 'leap', '--local', '25%', '--json')).out);
    expect(json.results[0]).toMatchObject({ policy: 'leap', frames: 500 });
  });

  it('reports bad input as one line and exit code 1', async () => {
    const bad = tmp('bad.fmt');
    writeFileSync(bad, 'hello');
    const r1 = await cli('trace', 'info', bad);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/^\(farmem trace info\) .*not a farmem trace/);
    const good = writeTrace(seq(0, 10));
    const r2 = await cli('trace', 'replay', good, '--prefetch', 'none,bogus');
    expect(r2.err).toMatch(/^\(farmem trace replay\) --prefetch: unknown policy "bogus"; valid policies: none, readahead, stride, leap/);
    const r3 = await cli('trace', 'replay', good, '--local', '150%');
    expect(r3.err).toMatch(/--local must be a percentage/);
  });
});
