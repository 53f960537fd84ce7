import { describe, expect, it } from 'vitest';
import binaryen from 'binaryen';
import { instantiate } from '../host/index.js';

function wat(text: string): Uint8Array {
  const m = binaryen.parseText(text);
  m.setFeatures(binaryen.Features.All);
  const bin = m.emitBinary();
  m.dispose();
  return bin;
}

describe('smoke', () => {
  it('runs a tiny module', async () => {
    const bytes = wat(`(module (memory 2)
      (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
        (loop $l (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $i))
          (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
        (local.set $i (i32.const 0))
        (loop $l2 (local.set $s (i32.add (local.get $s) (i32.load (i32.shl (local.get $i) (i32.const 2)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l2 (i32.lt_u (local.get $i) (local.get $n))))
        (local.get $s))
      (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
      (func (export "size") (result i32) (memory.size)))`);
    const fm = await instantiate(bytes, {}, { pageSize: 256, local: { bytes: 1024 } });
    const sum = (fm.exports.sum as (n: number) => number)(30000);
    expect(sum).toBe((30000 * 29999) / 2 | 0);
    const s = fm.stats();
    console.log(s);
    expect(s.majorFaults).toBeGreaterThan(100);
    expect(s.writeBacks).toBeGreaterThan(100);
    expect((fm.exports.size as () => number)()).toBe(2);
    expect((fm.exports.grow as (n: number) => number)(3)).toBe(2);
    expect((fm.exports.size as () => number)()).toBe(5);
  });
});

import { startServers } from './support/servers.js';

describe('smoke remote', () => {
  it('runs through a real server', async () => {
    const servers = await startServers(2, { capacity: '64MiB', token: 't0k' } as never);
    try {
      const bytes = wat(`(module (memory 2)
        (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
          (loop $l (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $i))
            (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
          (local.set $i (i32.const 0))
          (loop $l2 (local.set $s (i32.add (local.get $s) (i32.load (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l2 (i32.lt_u (local.get $i) (local.get $n))))
          (local.get $s)))`);
      const fm = await instantiate(bytes, {}, { pageSize: 256, local: { bytes: 1024 }, remote: { urls: servers.urls, token: 't0k' } });
      const t0 = performance.now();
      const sum = (fm.exports.sum as (n: number) => number)(30000);
      console.log('remote ms', performance.now() - t0, fm.stats());
      expect(sum).toBe((30000 * 29999) / 2 | 0);
      await fm.close();
    } finally {
      await servers.close();
    }
  });
});
