/**
 * @fileoverview Test helper: runs a threaded module (one shared memory imported as `env.memory`)
 * uninstrumented on V8, one worker per thread, as the reference for farmem's guest threads.
 *
 *   const ref = await runPlainThreads(bytes, (e) => e.setup(4096), 'work', [[0, 4, 100, 7], ...], (e) => e.checksum());
 *   ref.results;  // each thread's return value
 *   ref.final;    // what `after` returned on the main instance
 */
import { Worker } from 'node:worker_threads';

/** Each worker instantiates the module over the memory and calls one export. */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const instance = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } });
parentPort.postMessage(instance.exports[workerData.entry](...workerData.args));
`;

export async function runPlainThreads(
  bytes: Uint8Array,
  limits: { initial: number; maximum: number },
  before: (exports: WebAssembly.Exports) => void,
  entry: string,
  args: readonly (readonly (number | bigint)[])[],
  after: (exports: WebAssembly.Exports) => unknown,
): Promise<{ results: unknown[]; final: unknown }> {
  const module = new WebAssembly.Module(bytes as BufferSource);
  const memory = new WebAssembly.Memory({ ...limits, shared: true });
  const main = new WebAssembly.Instance(module, { env: { memory } });
  before(main.exports);
  const results = await Promise.all(args.map((a) => new Promise<unknown>((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { module, memory, entry, args: a } });
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  return { results, final: after(main.exports) };
}
