/**
 * @fileoverview The raw `ws` baseline benchmarks compare farmem against, measured in the same run:
 * a trivial echo server (child process) that answers every message with a preallocated payload of
 * the requested size, a pipelined client, and sequential round-trip sampling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';

/** The raw baseline: answers every binary message with `size` bytes (set by the first message's content). */
export const ECHO_SERVER = `
import { WebSocketServer } from 'ws';
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 << 20 });
wss.on('listening', () => console.log('raw listening on ws://127.0.0.1:' + wss.address().port));
wss.on('connection', (ws) => {
  let reply = null;
  ws.on('message', (data) => {
    const size = data.readUInt32LE(0);
    if (!reply || reply.length !== size) reply = Buffer.alloc(size, 7);
    ws.send(reply);
  });
});
process.on('SIGTERM', () => process.exit(0));
`;

export function spawnServer(cwd: string, args: string[], pattern: RegExp): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.once('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${args.join(' ')}`)));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
  });
}

/** Round-trip samples in µs, one request at a time. */
export async function roundTrips(n: number, one: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one();
    out.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return out;
}

/** A pipelined raw ws client: `request()` resolves with the next reply (replies come in order). */
export class RawClient {
  readonly ws: WebSocket;
  readonly #waiting: Array<() => void> = [];
  readonly #req: Buffer;

  constructor(url: string, replySize: number) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 << 20, generateMask: (m) => { m.fill(0); } });
    // Same size as a one-page READ frame (20 bytes); the first 4 bytes tell the server the reply size.
    this.#req = Buffer.alloc(20);
    this.#req.writeUInt32LE(replySize, 0);
    this.ws.on('message', () => this.#waiting.shift()!());
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => { this.ws.once('open', () => resolve()); this.ws.once('error', reject); });
  }

  request(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.ws.send(this.#req);
    });
  }
}

