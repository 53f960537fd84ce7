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

/**
 * What every bare client shares, whatever its socket: decoded replies in arrival order (`deliver`
 * from its reader, `next` for the test) and the HELLO handshake.
 */
export abstract class BareClient {
  readonly #inbox: Message[] = [];
  readonly #waiters: Array<(m: Message) => void> = [];
  pageSize = PS;

  abstract send(frame: Uint8Array): void;

  /** A whole frame from the server: the next waiter gets it decoded, or it waits in the inbox. */
  protected deliver(frame: Uint8Array): void {
    const m = decode(frame, { ...DEFAULT_LIMITS, pageSize: this.pageSize });
    const w = this.#waiters.shift();
    if (w) w(m);
    else this.#inbox.push(m);
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

  /** Sends HELLO; the reply must be HELLO_OK for `pageSize`. */
  protected async hello(namespace: string, token: string, pageSize: number): Promise<void> {
    this.pageSize = pageSize;
    const ok = await this.call(encodeHello(1, PROTOCOL_VERSION, pageSize, token, namespace));
    expect(ok).toMatchObject({ op: Op.HELLO_OK, id: 1, pageSize, version: PROTOCOL_VERSION });
  }
}

/** A bare protocol client over ws: sends frames, yields decoded replies in order, records the close. */
export class Raw extends BareClient {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  /** ws messages received (each may hold several frames). */
  messages = 0;

  constructor(url: string) {
    super();
    this.ws = new WebSocket(url, { perMessageDeflate: false });
    this.opened = new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject); });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    // A message may hold several replies (the server gathers small ones).
    const reader = new FrameReader(DEFAULT_LIMITS);
    this.ws.on('message', (data) => {
      this.messages++;
      reader.push(data as Buffer, (f) => this.deliver(f));
      expect(reader.buffered).toBe(0);
    });
  }

  static async connect(url: string, namespace = 'ns', token = TEST_TOKEN, pageSize = PS): Promise<Raw> {
    const c = new Raw(url);
    await c.opened;
    await c.hello(namespace, token, pageSize);
    return c;
  }

  send(frame: Uint8Array | string): void {
    this.ws.send(frame);
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
