/**
 * @fileoverview The raw Redis baseline the redis bench compares farmem's major faults against: a
 * bare RESP client on one `net.Socket` (no client library, no parsing beyond the reply's length),
 * sending one preencoded `GET key` at a time and resolving when the whole bulk reply has arrived.
 *
 *   request  *2\r\n$3\r\nGET\r\n$<n>\r\n<key>\r\n
 *   reply    $<len>\r\n<len bytes>\r\n        ($-1\r\n for a missing key, -ERR …\r\n for an error)
 */
import { connect, type Socket } from 'node:net';

function command(...parts: (string | Buffer)[]): Buffer {
  const chunks: Buffer[] = [Buffer.from(`*${parts.length}\r\n`)];
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    chunks.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(chunks);
}

export class RawRedis {
  private readonly socket: Socket;
  private pending: { resolve: (bytes: number) => void; reject: (err: Error) => void } | null = null;
  /** Bytes of the current reply seen so far, and the total it will have once its header is read. */
  private seen = 0;
  private total = -1;
  private header = '';

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.pending?.reject(err));
  }

  static connect(host: string, port: number): Promise<RawRedis> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(new RawRedis(s)));
      s.once('error', reject);
    });
  }

  /** Sends one command and resolves with the reply's size in bytes (header included). */
  send(request: Buffer): Promise<number> {
    if (this.pending) throw new Error('RawRedis sends one command at a time');
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.seen = 0;
      this.total = -1;
      this.header = '';
      this.socket.write(request);
    });
  }

  /** `SET key value`, then a preencoded `GET key` ready for `send`. */
  async prepareGet(key: string, value: Buffer, password?: string): Promise<Buffer> {
    if (password !== undefined) await this.send(command('AUTH', password));
    await this.send(command('SET', key, value));
    return command('GET', key);
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.seen += d.length;
    if (this.total < 0) {
      this.header += d.subarray(0, 32).toString('latin1');
      const nl = this.header.indexOf('\r\n');
      if (nl < 0) return;
      const line = this.header.slice(0, nl);
      if (line[0] === '$') {
        const n = Number(line.slice(1));
        this.total = nl + 2 + (n < 0 ? 0 : n + 2);
      } else if (line[0] === '-') {
        return this.finish(new Error(`Redis answered ${line}`));
      } else {
        this.total = nl + 2; // +OK and other one-line replies
      }
    }
    if (this.seen >= this.total) this.finish(null);
  }

  private finish(err: Error | null): void {
    const p = this.pending!;
    this.pending = null;
    if (err) p.reject(err);
    else p.resolve(this.seen);
  }
}
