/**
 * @fileoverview WASI threads (the wasi-threads proposal, `wasm32-wasip1-threads`): the import
 * `wasi.thread-spawn(arg) → tid` starts a guest thread that calls `wasi_thread_start(tid, arg)`, with
 * a negative result when no thread can start. Each thread gets its own `Wasi` with the main
 * thread's argv, environment and preopens (host fds 0–2 for stdio).
 *
 * `wasiThreadImports(...)` is the main thread's import; this module's default export is the
 * ThreadImportsFactory that builds a spawned thread's imports (WASI, and `thread-spawn` again, so
 * threads can start threads). Limits: file descriptors a thread opens are its own, and `proc_exit`
 * in a spawned thread ends that thread, not the process.
 */
import { scanMemories } from '../instrument/sections.js';
import { Wasi } from '../wasi/index.js';
import type { WasiOptions } from '../wasi/options.js';
import type { FarmemInstance } from './instance.js';
import type { ThreadImportsContext } from './guest-spawner.js';
import { workerUrl } from './remote-io.js';

/** What a spawned thread's Wasi is built from (structured-cloneable). */
export type WasiThreadOptions = Pick<WasiOptions, 'args' | 'env' | 'preopens'>;

const ENTRY = 'wasi_thread_start';

/** A negative tid tells the guest the thread did not start (as EAGAIN in wasi-libc's pthread_create). */
const SPAWN_FAILED = -6;

/**
 * The memory a WASI command imports (wasm32-wasip1-threads programs import theirs, shared), created
 * by the host with the module's declared limits as other WASI hosts do; `{}` if it defines its own.
 */
export function hostMemoryImport(bytes: Uint8Array): WebAssembly.Imports {
  const memory = scanMemories(bytes)[0];
  if (!memory?.imported || memory.memory64 || !WebAssembly.validate(bytes as BufferSource)) return {};
  const imp = WebAssembly.Module.imports(new WebAssembly.Module(bytes as BufferSource)).find((i) => i.kind === 'memory');
  if (!imp) return {};
  const limits = { initial: memory.initial, ...(memory.maximum !== null ? { maximum: memory.maximum } : {}), shared: memory.shared };
  return { [imp.module]: { [imp.name]: new WebAssembly.Memory(limits as WebAssembly.MemoryDescriptor) } };
}

/** The `wasi.thread-spawn` import of the main thread. */
export function wasiThreadImports(instance: () => FarmemInstance, options: WasiThreadOptions): WebAssembly.Imports {
  const imports = { url: workerUrl('wasi-threads').href, data: options };
  return {
    wasi: {
      'thread-spawn': (arg: number) => {
        try {
          return instance().startThread({ entry: ENTRY, args: [arg], withThreadId: true, imports }).id;
        } catch {
          return SPAWN_FAILED;
        }
      },
    },
  };
}

/** Builds a spawned thread's imports: its own Wasi, and thread-spawn. */
export default function threadImports(context: ThreadImportsContext): WebAssembly.Imports {
  const options = context.data as WasiThreadOptions;
  const wasi = new Wasi({ ...options, stdin: 0, stdout: 1, stderr: 2 });
  return {
    ...wasi.imports(() => context.memory!),
    wasi: {
      'thread-spawn': (arg: number) => {
        try {
          return context.spawn(ENTRY, [arg], true);
        } catch {
          return SPAWN_FAILED;
        }
      },
    },
  };
}
