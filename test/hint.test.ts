/**
 * The optional hint API (`farmem.hint(addr, len, advice)`): it never changes results, WillNeed
 * prefetches (hits counted), DontNeed pages out (dirty data written back, not lost), Sequential
 * reaches the policy; and the AssemblyScript bindings compile and run under farmem.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import binaryen from 'binaryen';
import { describe, expect, it } from 'vitest';
import { instantiate } from '../host/index.js';

const WAT = `(module
  (import "farmem" "hint" (func $hint (param i32 i32 i32)))
  (memory 16)
  (func (export "fill") (param $n i32) (local $i i32)
    (loop $l (i32.store (local.get $i) (i32.add (local.get $i) (i32.const 7)))
      (local.set $i (i32.add (local.get $i) (i32.const 4))) (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
  (func (export "advise") (param i32 i32 i32) (call $hint (local.get 0) (local.get 1) (local.get 2)))
  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l (local.set $s (i32.add (local.get $s) (i32.load (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 4))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $s)))`;

function module(): Uint8Array {
  const m = binaryen.parseText(WAT);
  const bytes = m.emitBinary();
  m.dispose();
  return bytes;
}

type Exports = { fill(n: number): void; advise(a: number, l: number, adv: number): void; sum(n: number): number };
const N = 256 * 1024;

async function expectedSum(): Promise<number> {
  const { instance } = await WebAssembly.instantiate(module(), { farmem: { hint: () => {} } });
  const e = instance.exports as unknown as Exports;
  e.fill(N);
  return e.sum(N);
}

describe('hint API', () => {
  it('WillNeed prefetches pages whose first touch counts as a prefetch hit', async () => {
    const fm = await instantiate(module(), {}, { pageSize: 4096, local: { bytes: 32 * 4096 } }); // after fill(N) the first half of N is paged out
    const e = fm.exports as unknown as Exports;
    e.fill(N);
    const before = fm.stats();
    e.advise(0, 16 * 4096, 1);
    expect(e.sum(16 * 4096)).toBeTypeOf('number');
    const after = fm.stats();
    expect(after.prefetch.issued - before.prefetch.issued).toBeGreaterThan(0);
    expect(after.prefetch.hits - before.prefetch.hits).toBeGreaterThan(0);
    await fm.close();
  });

  it('DontNeed pages data out without losing it', async () => {
    const want = await expectedSum();
    const fm = await instantiate(module(), {}, { pageSize: 4096, local: { fraction: 1 } });
    const e = fm.exports as unknown as Exports;
    e.fill(N);
    const resident = fm.stats().residentPages;
    e.advise(0, N, 2);
    const s = fm.stats();
    expect(s.residentPages).toBeLessThan(resident);
    expect(s.writeBacks).toBeGreaterThan(0);
    expect(e.sum(N)).toBe(want);
    await fm.close();
  });

  it('never changes results, whatever the advice, range or policy', async () => {
    const want = await expectedSum();
    for (const prefetch of ['none', 'readahead', 'leap']) {
      const fm = await instantiate(module(), {}, { pageSize: 256, local: { bytes: 8 * 256 }, prefetch });
      const e = fm.exports as unknown as Exports;
      e.fill(N);
      for (const advice of [0, 1, 2, 3, 4, 99]) e.advise(0, N, advice);
      e.advise(-4096, 100000, 1); // past the end: ignored
      e.advise(0, N, 3);
      expect(e.sum(N)).toBe(want);
      await fm.close();
    }
  });

  it('the AssemblyScript bindings compile and run the example under farmem', async () => {
    const asc = (await import('assemblyscript/asc')).default;
    const out = join(mkdtempSync(join(tmpdir(), 'farmem-hint-')), 'scan.wasm');
    const { error, stderr } = await asc.main(['examples/hint/scan.ts', '--runtime', 'stub', '--use', 'abort=', '-O3', '-o', out]);
    expect(error, String(stderr)).toBeFalsy();
    const bytes = new Uint8Array(readFileSync(out));
    const { instance } = await WebAssembly.instantiate(bytes, { farmem: { hint: () => {} } });
    const want = (instance.exports.run as (b: number, s: number) => bigint)(1 << 20, 3);
    const fm = await instantiate(bytes, {}, { pageSize: 4096, local: { fraction: 0.25 }, prefetch: 'leap' });
    expect((fm.exports.run as (b: number, s: number) => bigint)(1 << 20, 3)).toBe(want);
    expect(fm.stats().prefetch.hits).toBeGreaterThan(0);
    await fm.close();
  });
});
