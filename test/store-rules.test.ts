/**
 * @fileoverview Store rules that have one owner: the timeout code (a page store that does not answer
 * in time is `FM_ERR_TIMEOUT` whether the guest waits on the I/O worker's channel or the worker waits
 * on a server link, that side being in remote-store.test.ts; here the guest side, with a channel
 * nobody serves) and the form of a memory server's URL (store/remote/url.ts).
 */

import { describe, expect, it } from 'vitest';
import { StoreError } from '../host/errors.js';
import { ChannelIo, createChannel, createDoorbell } from '../host/runtime/io-channel.js';
import { isServerUrl } from '../host/store/remote/url.js';

describe('a store that does not answer', () => {
  it('the guest gives up after timeoutMs with StoreError FM_ERR_TIMEOUT', () => {
    const pageSize = 4096;
    const io = new ChannelIo(createChannel(pageSize), pageSize, { bytes: new Uint8Array(2 * pageSize) }, new Int32Array(createDoorbell()), 30, async () => {});
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

describe('a memory server URL', () => {
  it('is ws:// or wss:// with a host, at most a trailing slash, any case of scheme', () => {
    for (const u of ['ws://127.0.0.1:7070', 'wss://mem.example:443/', 'WS://[::1]:7070', 'ws://host']) expect(isServerUrl(u), u).toBe(true);
    for (const u of ['ws://', 'ws://h:1/path', 'http://h:1', 'redis://h:6379', 'ws://h 1', ' ws://h:1', 7070]) expect(isServerUrl(u), String(u)).toBe(false);
  });
});
