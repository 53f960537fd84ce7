/**
 * @fileoverview One timeout code: a page store that does not answer in time is `FM_ERR_TIMEOUT`
 * whether the guest waits on the I/O worker's channel or the worker waits on a server link (that
 * side is in remote-store.test.ts). Here the guest side, with a channel nobody serves.
 */

import { describe, expect, it } from 'vitest';
import { StoreError } from '../host/errors.js';
import { ChannelIo, createChannel } from '../host/runtime/io-channel.js';

describe('a store that does not answer', () => {
  it('the guest gives up after timeoutMs with StoreError FM_ERR_TIMEOUT', () => {
    const pageSize = 4096;
    const io = new ChannelIo(createChannel(pageSize), pageSize, { bytes: new Uint8Array(2 * pageSize) }, new Int32Array(new SharedArrayBuffer(4)), 30, async () => {});
    const t0 = performance.now();
    let error: unknown;
    try {
      io.wait(io.read(0, pageSize));
    } catch (e) {
      error = e;
    }
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('FM_ERR_TIMEOUT');
    expect((error as StoreError).message).toBe('the page store did not answer within 30 ms; is the memory server running?');
  });
});
