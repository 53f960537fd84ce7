/**
 * @fileoverview Test helper: a bare farmem protocol client over a plain TCP socket (a server's
 * `tcp://` port): bytes go out exactly as given (so tests can split frames anywhere or send
 * garbage), decoded replies come back in order, and the close is recorded.
 */
import net from 'node:net';
import { FrameReader, DEFAULT_LIMITS } from '../../host/protocol/index.js';
import { PS, BareClient, TEST_TOKEN } from './raw-client.js';

export class RawTcp extends BareClient {
  readonly sock: net.Socket;
  readonly opened: Promise<void>;
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;
  /** A reply the reader could not cut or decode (the test fails on it). */
  error: Error | null = null;

  constructor(url: string) {
    super();
    const { hostname, port } = new URL(url);
    this.sock = net.connect({ host: hostname, port: Number(port), noDelay: true });
    this.opened = new Promise((resolve, reject) => { this.sock.once('connect', () => resolve()); this.sock.once('error', reject); });
    this.closed = new Promise((resolve) => this.sock.once('close', () => resolve()));
    this.sock.on('error', () => {}); // a reset after the server closed is expected in these tests
    const reader = new FrameReader(DEFAULT_LIMITS);
    this.sock.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (f) => this.deliver(f));
      } catch (err) {
        this.error = err as Error;
      }
    });
  }

  /** Connects and completes HELLO (the reply must be HELLO_OK). */
  static async connect(url: string, namespace = 'ns', token = TEST_TOKEN, pageSize = PS): Promise<RawTcp> {
    const c = new RawTcp(url);
    await c.opened;
    await c.hello(namespace, token, pageSize);
    return c;
  }

  send(bytes: Uint8Array): void {
    this.sock.write(bytes);
  }

  destroy(): void {
    this.sock.destroy();
  }
}
