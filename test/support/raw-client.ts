/**
 * @fileoverview Test helper: a bare farmem protocol client over ws (frames in, decoded replies out
 * in order, the close recorded), plus page and refusal helpers shared by the server tests.
 */
import { expect } from 'vitest';
import WebSocket from 'ws';
import { decode, encodeHello, FrameReader, DEFAULT_LIMITS, Op, PROTOCOL_VERSION, Status, type Message } from '../../host/protocol/index.js';

/** The token the server tests start their servers with. */
export const TEST_TOKEN = 'server-test-token';
export const PS = 4096;

/** A bare protocol client: sends frames, yields decoded replies in order, records the close. */
export class Raw {
  readonly ws: WebSocket;
  readonly #inbox: Message[] = [];
  readonly #waiters: Array<(m: Message) => void> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  pageSize = PS;
  /** ws messages received (each may hold several frames). */
  messages = 0;

  constructor(url: string) {
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject); });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // A message may hold several replies (the server gathers small ones).
    const reader = new FrameReader(DEFAULT_LIMITS);
    this.ws.on('message', (data) => {
      this.messages++;
      reader.push(data as Buffer, (f) => {
        const m = decode(f, { ...DEFAULT_LIMITS, pageSize: this.pageSize });
        const w = this.#waiters.shift();
        if (w) w(m);
        else this.#inbox.push(m);
      });
      expect(reader.buffered).toBe(0);
    });
  }

  static async connect(url: string, namespace = 'ns', token = TEST_TOKEN, pageSize = PS): Promise<Raw> {
    const c = new Raw(url);
    c.pageSize = pageSize;
    await c.opened;
    c.send(encodeHello(1, PROTOCOL_VERSION, pageSize, token, namespace));
    const ok = await c.next();
    expect(ok).toMatchObject({ op: Op.HELLO_OK, id: 1, pageSize, version: PROTOCOL_VERSION });
    return c;
  }

  send(frame: Uint8Array | string): void {
    this.ws.send(frame);
  }

  next(): Promise<Message> {
    const m = this.#inbox.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async call(frame: Uint8Array): Promise<Message> {
    this.send(frame);
    return this.next();
  }

  close(): void {
    this.ws.close();
  }
}


/** A page of one byte value (a Buffer, like the views decoded from ws messages). */
export function page(fill: number, size = PS): Buffer {
  return Buffer.alloc(size, fill);
}

/** The next reply is ERROR `status` matching `message`, then the server closes with `closeCode` and the status name. */
export async function expectRefused(c: Raw, status: Status, message: RegExp, closeCode: number): Promise<void> {
  const m = await c.next();
  expect(m).toMatchObject({ op: Op.ERROR, status });
  expect((m as { message: string }).message).toMatch(message);
  const closed = await c.closed;
  expect(closed.code).toBe(closeCode);
  expect(closed.reason).toMatch(new RegExp(`^${Status[status]}: `));
}
