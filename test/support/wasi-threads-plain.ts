/**
 * @fileoverview Test helper: runs a wasm32-wasi-threads command uninstrumented on V8 under farmem's
 * own WASI layer (the reference, as for single-threaded WASI programs), with `wasi.thread-spawn`
 * starting a worker per thread over the same shared memory (threads started by threads are refused:
 * the main thread is blocked in the program). Uses dist/ (workers run JavaScript).
 * Returns the command's exit code and stdout.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { PlainMemory, Wasi } from '../../host/index.js';
import { hostMemoryImport } from '../../host/runtime/wasi-threads.js';

const WASI_JS = fileURLToPath(new URL('../../dist/host/wasi/index.js', import.meta.url));

/** A spawned thread: its own Wasi over the shared memory; stdout goes back to the main thread. */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { Wasi, PlainMemory } = await import(workerData.wasiJs).then(async (w) => ({ ...w, PlainMemory: (await import(workerData.memoryJs)).PlainMemory }));
  const memory = new PlainMemory(workerData.memory);
  const wasi = new Wasi({ args: workerData.args, env: {}, stdout: (chunk) => parentPort.postMessage({ out: chunk }) });
  const instance = new WebAssembly.Instance(workerData.module, { ...wasi.imports(() => memory), [workerData.memoryModule]: { [workerData.memoryName]: workerData.memory }, wasi: { 'thread-spawn': () => -1 } });
  instance.exports.wasi_thread_start(workerData.tid, workerData.arg);
  parentPort.postMessage({ done: true });
})();
`;

export async function runPlainWasiThreads(bytes: Uint8Array, args: string[]): Promise<{ exitCode: number; stdout: string }> {
  const module = new WebAssembly.Module(bytes as BufferSource);
  const imp = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory')!;
  const memoryImport = hostMemoryImport(bytes);
  const memory = (memoryImport[imp.module] as Record<string, WebAssembly.Memory>)[imp.name]!;
  let stdout = '';
  const decoder = new TextDecoder();
  const workers: Promise<void>[] = [];
  let nextTid = 1;
  const spawn = (arg: number): number => {
    const tid = nextTid++;
    const worker = new Worker(THREAD, {
      eval: true,
      workerData: { module, memory, memoryModule: imp.module, memoryName: imp.name, tid, arg, args, wasiJs: WASI_JS, memoryJs: WASI_JS.replace(/wasi\/index\.js$/, 'runtime/virtual-memory.js') },
    });
    workers.push(new Promise((resolve, reject) => {
      worker.on('message', (m: { out?: Uint8Array; done?: boolean }) => { if (m.out) stdout += decoder.decode(m.out); if (m.done) resolve(); });
      worker.once('error', reject);
    }));
    return tid;
  };
  const wasi = new Wasi({ args, env: {}, stdout: (chunk: Uint8Array) => { stdout += decoder.decode(chunk); } });
  const plain = new PlainMemory(memory);
  const instance = new WebAssembly.Instance(module, { ...wasi.imports(() => plain), ...memoryImport, wasi: { 'thread-spawn': spawn } });
  const exitCode = wasi.start(instance.exports);
  await Promise.all(workers);
  return { exitCode, stdout };
}
